"""The client commands against the embedded broker and the local SageMaker, as a user runs them.

Each case runs ``python -m sagemaker_executor.cli submit|cancel|status`` as a subprocess with the
pipeline's environment (the same variables as the executor), output piped, and reads its plain lines
with ``client.view.parse_line``: events, not column positions.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from sagemaker_executor.client.view import Line, parse_line

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HELLO = REPO / "examples" / "hello-world"


def client(pipeline, *args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sagemaker_executor.cli", *args],
        env=pipeline.env(SCRIPTS_EXCHANGE_S3_BUCKET_NAME="scripts-exchange", **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def events(stdout: str) -> list[Line]:
    return [line for line in map(parse_line, stdout.splitlines()) if line is not None]


def names(stdout: str) -> list[str]:
    return [line.event for line in events(stdout)]


def descriptor(tmp_path: Path, job_name: str, *, metric: bool = True) -> Path:
    text = (HELLO / "descriptor.toml").read_text()
    text = text.replace("[custom_params]\n", f'[custom_params]\nsagemaker_job_name = "{job_name}"\n')
    path = tmp_path / f"{job_name}.toml"
    path.write_text(text if metric else text.split("[output]")[0])
    return path


@pytest.mark.timeout(180)
def test_submit_follow_runs_to_the_final_status_and_metrics_and_status_reattaches(pipeline, tmp_path) -> None:
    pipeline.start_executor()
    path = descriptor(tmp_path, f"follow-{uuid.uuid4().hex[:8]}")

    followed = client(pipeline, "submit", str(path), "--script", str(HELLO / "scripts" / "hello"), "--follow")

    print(followed.stdout, followed.stderr)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    action_id = followed.stdout.splitlines()[0]
    uuid.UUID(action_id)  # the first line is the action id alone, for scripts
    seen = names(followed.stdout)
    assert seen[0] == "received"
    assert seen[-2:] == ["job finished", "metrics"]
    for step in ("job created", "starting", "training", "uploading output"):
        assert step in seen
    assert seen.index("job created") < seen.index("training") < seen.index("job finished")
    assert [line.status for line in events(followed.stdout)].count("SUCCEEDED") == 2  # each named apart
    assert events(followed.stdout)[-1].detail == "train:progress=100"  # the local SageMaker's metrics
    assert "\x1b[" not in followed.stdout  # piped: no colour, no redraw

    history = client(pipeline, "status", action_id)

    assert history.returncode == 0, history.stderr
    assert names(history.stdout) == seen  # the same lifecycle, read back from the status topic
    assert f"state: job finished; training job {path.stem}" in history.stdout
    assert "SageMaker: Completed/Completed; final metrics: train:progress=100" in history.stdout

    attached = client(pipeline, "status", action_id, "--follow")

    assert attached.returncode == 0, attached.stderr
    assert names(attached.stdout)[-1] == "metrics"


@pytest.mark.timeout(180)
def test_follow_until_created_then_status_follow_reattaches_to_the_end(pipeline, tmp_path) -> None:
    pipeline.start_executor()
    path = descriptor(tmp_path, f"reattach-{uuid.uuid4().hex[:8]}")

    created = client(pipeline, "submit", str(path), "--follow", "--until", "created")

    assert created.returncode == 0, created.stderr
    assert names(created.stdout) == ["received", "job created"]
    action_id = created.stdout.splitlines()[0]

    attached = client(pipeline, "status", action_id, "--follow")

    assert attached.returncode == 0, attached.stderr
    assert names(attached.stdout)[:2] == ["received", "job created"]  # the history first
    assert names(attached.stdout)[-2:] == ["job finished", "metrics"]


@pytest.mark.timeout(180)
def test_a_cancelled_job_reads_cancel_requested_stopping_cancelled(pipeline, tmp_path) -> None:
    pipeline.start_executor()
    job = f"cancel-{uuid.uuid4().hex[:8]}"
    pipeline.control.set_outcome(job, training=600)
    submitted = client(pipeline, "submit", str(descriptor(tmp_path, job)), "--follow", "--until", "created")
    assert submitted.returncode == 0, submitted.stderr
    action_id = submitted.stdout.splitlines()[0]

    cancelled = client(pipeline, "cancel", action_id, "--follow")

    print(cancelled.stdout, cancelled.stderr)
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    seen = names(cancelled.stdout)
    assert "cancel requested" in seen
    assert "cancel answered" in seen
    assert seen[-1] == "job cancelled"
    assert "job finished" not in seen and "job created" not in seen

    lifecycle = names(client(pipeline, "status", action_id).stdout)
    assert (
        lifecycle.index("job created")
        < lifecycle.index("cancel requested")
        < lifecycle.index("job cancelled")
    )
    assert "stopping" in lifecycle


@pytest.mark.timeout(120)
def test_refusals_and_unknown_actions_exit_non_zero(pipeline, tmp_path) -> None:
    pipeline.start_executor()

    refused = client(pipeline, "submit", str(REPO / "examples" / "broken.toml"), "--no-check", "--follow")

    assert refused.returncode == 1, refused.stderr
    assert names(refused.stdout) == ["received", "refused"]
    assert "hardware.distributed.num_instances" in events(refused.stdout)[-1].detail

    unknown = str(uuid.uuid4())
    cancel = client(pipeline, "cancel", unknown)

    assert cancel.returncode == 13, cancel.stdout + cancel.stderr
    assert f"no training job to cancel for action {unknown}" in cancel.stderr
    assert "Traceback" not in cancel.stderr

    status = client(pipeline, "status", unknown)

    assert status.returncode == 13
    assert f"no status event for action {unknown} on {pipeline.topics.status}" in status.stderr


def test_a_status_topic_that_does_not_exist_is_named(pipeline) -> None:
    missing = f"NO_SUCH_TOPIC_{uuid.uuid4().hex[:6]}"

    result = client(pipeline, "submit", str(HELLO / "descriptor.toml"), "--follow", "--status-topic", missing)

    assert result.returncode == 5, result.stderr
    assert f"topic '{missing}' does not exist" in result.stderr
    assert "STATUS_TOPIC (--status-topic)" in result.stderr
    assert result.stdout == ""  # nothing was published
    assert "Traceback" not in result.stderr


def test_ctrl_c_while_following_exits_130_and_says_how_to_reattach(pipeline) -> None:
    # No executor: the benchmark waits on the topic, and the client follows until interrupted.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sagemaker_executor.cli",
            "submit",
            str(HELLO / "descriptor.toml"),
            "--follow",
        ],
        env=pipeline.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    action_id = process.stdout.readline().strip()  # printed once published
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert f"sagemaker-executor status {action_id} --follow" in stderr
    assert "Traceback" not in stderr
