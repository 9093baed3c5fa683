# Two commands matter: `make demo` and `make test`. Both install what they need into .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test lint unit integration demo bench faults clean

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
	$(BIN)/pytest tests/unit tests/component -q

integration: $(STAMP)
	$(BIN)/pytest tests/integration -q

# The whole suite: lint, types, layer contract, unit, component (moto) and integration (real broker).
test: lint
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/python -m sagemaker_executor.local.demo

# SageMaker API calls per minute of job tracking with 1, 100 and 1,000 running jobs (moto, simulated clock).
.PHONY: bench-tracking
bench-tracking: $(STAMP)
	$(BIN)/python -m bench.tracking_api_calls

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
