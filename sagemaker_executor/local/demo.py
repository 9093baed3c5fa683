"""``make demo``: the whole SageMaker path on one machine, with nothing to set up.

Starts the embedded broker and the local SageMaker, runs the executor exactly as deployed (its own
process, configured by environment variables), then uses ``sagemaker-executor submit`` / ``cancel`` /
``logs`` -- the same client anyone can point at a real cluster -- to submit the descriptors in
``examples/``: Anubis's two hello-world samples and a failing benchmark, which the local SageMaker
*runs* (command mode: ``--run-jobs``, ``local.runner``; the benchmark's own output is the job's log,
its metrics come from the descriptor's patterns, the failing one's FAILED status shows its last log
lines); the two samples the contract calls valid for SageMaker and a script-mode hello world, framework
images that cannot run here and follow a timeline instead; a broken descriptor (refused by the client,
then by the executor); and a Horovod job that is then cancelled. The client prints each change as it
arrives. The demo checks the events the client printed (read back with ``client.view.parse_line``),
the text it expects in them and in the logs, and the exit codes. Exits 0 when each benchmark ended the
way it should, 1 otherwise (with the executor's log), 2 when this machine cannot run jobs (root and
``unshare`` are needed for each job's private ``/opt/ml``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sagemaker_executor.client.view import parse_line
from sagemaker_executor.local.broker import LocalBroker
from sagemaker_executor.local.executor import ExecutorProcess
from sagemaker_executor.local.runner import JobRunner
from sagemaker_executor.local.server import LocalSageMakerControl, server_process

REGION = "us-east-1"
PHASE_SECONDS = 2.0  # each SageMaker phase (Starting, Downloading, Training, Uploading) of a demo job
REPO = Path(__file__).resolve().parents[2]
HELLO_WORLD_IMAGE = "benchmarkai/hello-world:latest"  # Anubis's hello-world sample's image
HELLO_WORKDIR = Path("anubis-hello-world") / "image"  # under examples/: stands in for its WORKDIR


@dataclass(frozen=True)
class Step:
    title: str
    args: list[str]
    expect: str  # an event the client prints (client.view.parse_line), or, exit code 11, what stderr says
    code: int = 0  # the exit code expected
    shows: str = ""  # text the followed output must contain
    logged: str = ""  # text the job's log must contain (``sagemaker-executor logs``, printed)


CREATED = ["--until", "created"]  # follow a submission until its job exists


def _steps(examples: Path) -> list[Step]:
    return [*_succeeding_steps(examples), *_failing_steps(examples)]


def _succeeding_steps(examples: Path) -> list[Step]:
    """Benchmarks that run: Anubis's samples for real, then examples on the local SageMaker's timeline."""
    hello = examples / "anubis-hello-world"
    return [
        Step(
            "Anubis's hello-world sample, run for real: python3 hello-world.py in the image's directory",
            ["submit", str(hello / "descriptor.toml")],
            "metrics",
            shows="elapsed=",
            logged="Hello world from algo-1",
        ),
        Step(
            "Anubis's script-mode sample: python:3-alpine runs $(BAI_SCRIPTS_PATH)/src/entrypoint.sh",
            ["submit", str(hello / "descriptor-script-mode.toml"), "--script", str(hello / "src")],
            "metrics",
            shows="accuracy=0.88",
            logged="train loss 0.2178",
        ),
        Step(
            "The executor README's SageMaker example (valid for SageMaker), followed to its end",
            ["submit", str(examples / "sagemaker-training-job.toml")],
            "metrics",
        ),
        Step(
            "The descriptor-parser fixture with custom params, followed until its job is created",
            ["submit", str(examples / "sagemaker-custom-params.toml"), *CREATED],
            "job created",
        ),
        Step(
            "Script mode (a PyTorch image; on a timeline here): --script ships a directory",
            [
                "submit",
                str(examples / "hello-world" / "descriptor.toml"),
                "--script",
                str(examples / "hello-world" / "scripts" / "hello"),
            ],
            "metrics",
        ),
    ]


def _failing_steps(examples: Path) -> list[Step]:
    """What goes wrong and how it shows, then a long run that the demo cancels."""
    return [
        Step(
            "A benchmark that fails while training: its FAILED status shows the log's last lines",
            ["submit", str(examples / "failing.toml")],
            "job failed",
            1,
            shows="loss became NaN at step 12",
        ),
        Step(
            "A broken descriptor: the client refuses it before sending anything",
            ["submit", str(examples / "broken.toml")],
            "descriptor field 'hardware.distributed.num_instances'",
            11,
        ),
        Step(
            "The same, sent anyway with --no-check: the executor refuses it too",
            ["submit", str(examples / "broken.toml"), "--no-check"],
            "refused",
            1,
        ),
        Step(
            "Horovod on GPUs: a long training run, to be cancelled",
            ["submit", str(examples / "long-running.toml"), *CREATED],
            "job created",
        ),
    ]


def _cli(
    env: dict[str, str], args: list[str], timeout: float = 120, follow: bool = True
) -> tuple[int, list[str], str]:
    """Run ``sagemaker-executor ARGS [--follow]``, echoing its output; returns (exit code, lines, stderr)."""
    following = ["--follow", "--timeout", "90"] if follow else []
    process = subprocess.run(
        [sys.executable, "-m", "sagemaker_executor.cli", *args, *following],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = process.stdout.splitlines()
    for line in lines:
        print("    " + line, flush=True)
    for line in process.stderr.splitlines():
        print("    ! " + line, flush=True)
    return process.returncode, lines, process.stderr


def _events(lines: list[str]) -> list[str]:
    return [parsed.event for parsed in map(parse_line, lines) if parsed is not None]


def _last_event(lines: list[str]) -> str:
    return (_events(lines) or ["?"])[-1]


def _environment(bootstrap: str, endpoint: str, workdir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            # The original's variables (CONTRACT §6) ...
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "CONSUMER_GROUP_ID": "sm-executor",
            "CONSUMER_TOPIC": "BAI_APP_FETCHER",
            "PRODUCER_TOPIC": "BAI_APP_EXECUTOR",
            "STATUS_TOPIC": "BAI_APP_STATUS",
            "NUM_PARTITIONS": "1",
            "REPLICATION_FACTOR": "1",
            "SAGEMAKER_OUTPUT_BUCKET": "sm-output",
            "SAGEMAKER_NODATASET": "s3://data-pull/no-data",
            "SAGEMAKER_ROLE": "bai-sagemaker",
            "TMP_SOURCES_DIR": str(workdir / "sources"),
            # ... the standard AWS ones, pointed at the local SageMaker ...
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            # ... and, for the client, where --script tarballs go.
            "SCRIPTS_EXCHANGE_S3_BUCKET_NAME": "scripts-exchange",
            # A new broker: reading from the start loses nothing published before the group joined.
            "CONSUMER_AUTO_OFFSET_RESET": "earliest",
            "KAFKA_SESSION_TIMEOUT_MS": "6000",
            "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "WATCH_INTERVAL_SECONDS": "1",
            "HEALTH_PORT": "0",
            # No pacing: the local SageMaker does not throttle, and 1 create/s would only slow this.
            "SAGEMAKER_CREATE_RATE": "off",
        }
    )
    return env


def run(examples: Path) -> int:
    why = JobRunner().cannot_isolate()
    if why is not None:
        print(f"The demo runs benchmarks for real, each in a private /opt/ml, and cannot here: {why}")
        return 2
    # The local SageMaker runs command-mode jobs; a directory stands in for the hello-world image.
    run_jobs = [
        # A cancelled timeline job stays Stopping for 3 s: longer than the tracker's 1 s poll, so the
        # client always shows that step (with 1 s, a poll could fall either side of it).
        "--stop-seconds",
        "3",
        "--run-jobs",
        "--stop-grace-seconds",
        "5",
        "--image",
        f"{HELLO_WORLD_IMAGE}={examples / HELLO_WORKDIR}",
    ]
    with tempfile.TemporaryDirectory(prefix="sm-executor-demo-") as tmp:
        workdir = Path(tmp)
        print("Starting the embedded Kafka broker and the local SageMaker ...", flush=True)
        with (
            LocalBroker() as broker,
            server_process(
                phase_seconds=PHASE_SECONDS, log_path=workdir / "aws.log", extra_args=run_jobs
            ) as control,
        ):
            control.prepare_site(["sm-output", "scripts-exchange", "data-pull"], "bai-sagemaker", REGION)
            env = _environment(broker.bootstrap_servers, control.base_url, workdir)
            log = workdir / "executor.log"
            executor = ExecutorProcess.start(env, log)
            try:
                executor.wait_for_log("consuming")
                print(f"Executor running (pid {executor.pid}) on {broker.bootstrap_servers}\n", flush=True)
                failures = _play(env, examples, control)
            finally:
                code = executor.stop(timeout=60)
            print(f"\nExecutor stopped on SIGTERM with exit code {code}.")
            jobs = control.jobs()
            print(f"Local SageMaker holds {len(jobs)} training jobs:")
            for job in jobs:
                print(f"    {job['name']:<40} {job['status']:<11} {job['secondary_status']}")
            if failures or code != 0:
                print("\nDEMO FAILED: " + "; ".join(failures or ["executor exit code"]))
                print(log.read_text(errors="replace")[-6000:])
                return 1
            print("\nDemo finished: every benchmark ended as expected.")
            return 0


def _play(env: dict[str, str], examples: Path, control: LocalSageMakerControl) -> list[str]:
    failures: list[str] = []
    cancel_target = None
    steps = _steps(examples)
    for number, step in enumerate(steps, start=1):
        long_running = step.args[1].endswith("long-running.toml")
        if long_running:  # keep this one training until it is cancelled
            control.set_default_timeline(training=600)
        command = " ".join(_short(a) for a in step.args)
        print(f"[{number}] {step.title}\n    $ sagemaker-executor {command} --follow")
        code, lines, stderr = _cli(env, step.args)
        if long_running:
            control.set_default_timeline(training=PHASE_SECONDS)
            cancel_target = lines[0].strip() if lines else None
        ended = _last_event(lines) if step.code in (0, 1) else stderr
        if code != step.code or step.expect not in ended:
            failures.append(
                f"{step.title}: exit {code} after {ended.strip()!r}, expected {step.code}, {step.expect!r}"
            )
        if step.shows and step.shows not in "\n".join(lines):
            failures.append(f"{step.title}: the client's output does not show {step.shows!r}")
        if step.logged and lines:
            print(f"    $ sagemaker-executor logs {lines[0].strip()}")
            _, log_lines, _ = _cli(env, ["logs", lines[0].strip()], follow=False)
            if not any(step.logged in line for line in log_lines):
                failures.append(f"{step.title}: the job's log does not show {step.logged!r}")
        print()
    if cancel_target is None:
        return [*failures, "nothing to cancel"]
    number = len(steps) + 1
    print(f"[{number}] Cancel the Horovod benchmark, and follow it until it has stopped")
    print(f"    $ sagemaker-executor cancel {cancel_target} --follow")
    code, lines, _ = _cli(env, ["cancel", cancel_target])
    if code != 0 or _last_event(lines) != "job cancelled":
        failures.append(f"cancel: exit {code} after {_last_event(lines)!r}, expected 0 after 'job cancelled'")
    return failures


def _short(arg: str) -> str:
    path = Path(arg)
    return str(path.relative_to(REPO)) if path.is_absolute() and REPO in path.parents else arg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--examples", type=Path, default=REPO / "examples")
    return run(parser.parse_args(argv).examples)


if __name__ == "__main__":
    sys.exit(main())
