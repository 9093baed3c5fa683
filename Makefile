# Two commands matter: `make demo` and `make test`. Both install what they need into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: install test lint unit integration demo bench faults mutate clean

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check sagemaker_executor tests bench
	$(BIN)/ruff format --check sagemaker_executor tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest tests/unit tests/component tests/deploy -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

# The whole suite: lint, types, layer contract, unit, component (moto), integration (real broker),
# the demo, the fault scenarios at small size, and deploy/ (manifests rendered with kubectl kustomize
# and validated; deploy/iam-policy.json compared with every AWS call the run made: tests/conftest.py).
test: lint
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/python -m sagemaker_executor.local.demo

$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

# Submissions/s, produce→executor-event latency, CPU, RSS and start-up of the executor process against
# the embedded broker and the local SageMaker with 0, 50 and 200 ms per AWS call; MAX_IN_FLIGHT 1 and 16.
# BENCH_ARGS=--quick for a smoke run. Writes bench/results/throughput.{json,png} (throughput-quick.* with --quick).
bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python -m bench.throughput $(BENCH_ARGS)

# SageMaker API calls per minute of job tracking with 1, 100 and 1,000 running jobs (moto, simulated clock).
.PHONY: bench-tracking
bench-tracking: $(STAMP)
	$(BIN)/python -m bench.tracking_api_calls

# The fault suite at full size (kill -9 during 200 submissions, 10 % failing AWS calls, a 20 s broker
# pause, 1,000 hostile messages); `make test` runs the same scenarios small. Counts: bench/results/faults-*.json.
faults: $(STAMP)
	FAULTS_SCALE=full $(BIN)/pytest tests/faults -m faults -s -q

MUTATE_STAMP := $(VENV)/.mutate-installed

$(MUTATE_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,mutate]'
	touch $(MUTATE_STAMP)

# Mutation testing (mutmut 3) of domain/ and service/, with tests/unit as the kill suite; not part of
# `make test`: a full run took 1 h 48 min on two cores (README, "Mutation testing"). MUTANTS narrows it to a
# glob of mutant names, e.g. MUTANTS='sagemaker_executor.domain.cron.*'; a stopped run resumes where it
# left off. The score and the survivors: `$(BIN)/mutmut results`, `$(BIN)/mutmut show NAME`.
MUTANTS ?=
MUTATE_JOBS ?= 2
mutate: $(STAMP) $(MUTATE_STAMP)
	$(BIN)/mutmut run --max-children $(MUTATE_JOBS) $(MUTANTS)
	$(BIN)/mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json

clean:
	rm -rf $(VENV) mutants .pytest_cache .mypy_cache .ruff_cache *.egg-info
