"""Command mode end to end, executing the benchmark: Anubis's two hello-world samples and a failing one.

Each case submits a descriptor of ``examples/`` with ``sagemaker-executor submit`` -- the client a user
runs -- through the real broker to an executor process, against the local SageMaker that *runs* the
job (``--run-jobs``, ``local.runner``): the bootstrap the executor generated, from the code channel
it uploaded, under ``sh`` in a private ``/opt/ml``. Nothing of the job is simulated: its log lines are
what the benchmark printed (read back with ``sagemaker-executor logs``), its metrics what the
descriptor's patterns found in them (on the metrics topic), its exit status the job's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sagemaker_executor.client.view import parse_line
from tests.integration.conftest import REPO, Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

HELLO = REPO / "examples" / "anubis-hello-world"


def client(p: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sagemaker_executor.cli", *args],
        env=p.env(SCRIPTS_EXCHANGE_S3_BUCKET_NAME="scripts-exchange"),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def submit(
    p: Pipeline, descriptor: Path, *extra: str
) -> tuple[str, list[str], subprocess.CompletedProcess[str]]:
    """``submit --follow``: (action id, the events the client printed, the process)."""
    done = client(p, "submit", str(descriptor), *extra, "--follow", "--timeout", "150")
    print(done.stdout, done.stderr)
    action_id = done.stdout.splitlines()[0] if done.stdout else ""
    seen = [line.event for line in map(parse_line, done.stdout.splitlines()) if line is not None]
    return action_id, seen, done


def metrics_of(p: Pipeline, action_id: str) -> dict[str, float]:
    """The last value of each metric published for the action on the metrics topic."""
    p.wait_for(
        lambda: any(m["labels"]["action-id"] == action_id for m in p.on(p.topics.metrics)),
        what="metrics on the metrics topic",
    )
    return {m["name"]: m["value"] for m in p.on(p.topics.metrics) if m["labels"]["action-id"] == action_id}


def job_log(p: Pipeline, action_id: str) -> list[str]:
    """``sagemaker-executor logs ACTION_ID``: the job's log, from CloudWatch Logs."""
    done = client(p, "logs", action_id)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def test_anubis_hello_world_runs_python3_in_the_images_working_directory(running_pipeline: Pipeline) -> None:
    # sample-benchmarks/hello-world/descriptor.toml: benchmarkai/hello-world:latest, "python3
    # hello-world.py", a file of the image's own WORKDIR (here examples/anubis-hello-world/image).
    p = running_pipeline
    p.start_executor()

    action_id, seen, done = submit(p, HELLO / "descriptor.toml")

    assert done.returncode == 0, done.stdout + done.stderr
    assert seen[-2:] == ["job finished", "metrics"], seen
    log = job_log(p, action_id)
    greeting = [line for line in log if line.startswith("Hello world from algo-1, in ")]
    assert greeting, log  # the image's working directory: the copy of its WORKDIR the runner made
    assert any(line.startswith("sum of squares: 2666646666700000") for line in log), log
    elapsed = metrics_of(p, action_id)["elapsed"]
    printed = [float(line.split()[1]) for line in log if line.startswith("elapsed: ")]
    assert printed == [pytest.approx(elapsed)]  # the descriptor's pattern, applied to what it printed


def test_anubis_script_mode_sample_runs_its_script_from_bai_scripts_path(running_pipeline: Pipeline) -> None:
    # sample-benchmarks/hello-world/descriptor-script-mode.toml: python:3-alpine (no toolkit),
    # benchmark_code = "$(BAI_SCRIPTS_PATH)/src/entrypoint.sh", shipped with --script src.
    p = running_pipeline
    p.start_executor()

    action_id, seen, done = submit(p, HELLO / "descriptor-script-mode.toml", "--script", str(HELLO / "src"))

    assert done.returncode == 0, done.stdout + done.stderr
    assert seen[-2:] == ["job finished", "metrics"], seen
    log = job_log(p, action_id)
    scripts = "/opt/ml/input/data/anubis_code/scripts"
    assert any(
        line.startswith(f"Hello from algo-1, scripts in {scripts}, working directory ") for line in log
    )
    assert metrics_of(p, action_id) == {"epoch": 3.0, "train_loss": 0.2178, "accuracy": 0.88}


def test_a_failing_benchmark_is_failed_with_its_exit_status_and_last_log_lines(
    running_pipeline: Pipeline,
) -> None:
    p = running_pipeline
    p.start_executor()

    action_id, seen, done = submit(p, REPO / "examples" / "failing.toml")

    assert done.returncode == 1, done.stdout + done.stderr
    assert seen[-1] == "job failed", seen
    p.wait_for(lambda: "FAILED" in p.statuses_only(action_id), what="FAILED on the status topic")
    (message,) = [m for s, m in p.statuses(action_id) if s == "FAILED"]
    headline, *tail = message.splitlines()
    assert "AlgorithmError" in headline and "exit code: 3" in headline, message
    assert tail[-3:] == ["Epoch 1: loss 0.93", "Epoch 2: loss 41.7", "loss became NaN at step 12"], message
    assert "loss became NaN at step 12" in done.stdout  # the client shows the lines under the status
    assert "loss became NaN at step 12" in job_log(p, action_id)
