"""Component tests of the local SageMaker HTTP endpoint, run as ``python -m ...local.server``.

A module fixture starts the server on a free loopback port with ``--manual-clock``, waits for its
``READY`` line and stops it with SIGTERM; every test starts from a ``reset``. boto3 talks to it via
``endpoint_url`` with dummy credentials; ``LocalSageMakerControl`` steers it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sagemaker_executor.domain.joblog import LOG_GROUP
from sagemaker_executor.local.server import ControlError, LocalSageMakerControl
from tests.builders import create_training_job
from tests.component.test_local_sagemaker_runs import BOOTSTRAP, channel, needs_namespaces, processes_running

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[str]


def start_server(log_dir: Path, *args: str) -> RunningServer:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    # stderr goes to a file: an unread pipe would fill up and block the server.
    stderr = (log_dir / "server.stderr").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "sagemaker_executor.local.server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # bounded by the test timeout; '' if the server died
    assert line.startswith("READY http://127.0.0.1:"), (line, (log_dir / "server.stderr").read_text())
    return RunningServer(url=line.split()[1], process=process)


def stop_server(server: RunningServer) -> int:
    server.process.send_signal(signal.SIGTERM)
    return server.process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("server"), "--manual-clock")
    yield running
    assert stop_server(running) == 0


@pytest.fixture
def control(server: RunningServer) -> Iterator[LocalSageMakerControl]:
    control = LocalSageMakerControl(server.url)
    control.reset()
    yield control
    control.reset()


@overload
def client(
    server: RunningServer, service: Literal["sagemaker"], config: Config | None = None
) -> SageMakerClient: ...
@overload
def client(server: RunningServer, service: Literal["s3"], config: Config | None = None) -> S3Client: ...
@overload
def client(
    server: RunningServer, service: Literal["logs"], config: Config | None = None
) -> CloudWatchLogsClient: ...
def client(
    server: RunningServer, service: Literal["sagemaker", "s3", "logs"], config: Config | None = None
) -> SageMakerClient | S3Client | CloudWatchLogsClient:
    return boto3.client(
        service,
        endpoint_url=server.url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=config,
    )


@pytest.fixture
def sm(server: RunningServer, control: LocalSageMakerControl) -> SageMakerClient:
    return client(server, "sagemaker")


def statuses(sm: SageMakerClient, name: str) -> tuple[str, str]:
    job = sm.describe_training_job(TrainingJobName=name)
    return job["TrainingJobStatus"], job["SecondaryStatus"]


def test_health_reports_the_manual_clock(control: LocalSageMakerControl) -> None:
    assert control.health() == {"status": "ok", "manual_clock": True, "run_jobs": False}


def test_lifecycle_is_driven_by_the_control_clock(
    sm: SageMakerClient, control: LocalSageMakerControl
) -> None:
    control.set_default_timeline(starting=1, downloading=2, training=3, uploading=4)
    create_training_job(sm, "job-1")
    seen = [statuses(sm, "job-1")]
    for seconds in (1, 2, 3, 4):
        control.advance(seconds)
        seen.append(statuses(sm, "job-1"))

    assert seen == [
        ("InProgress", "Starting"),
        ("InProgress", "Downloading"),
        ("InProgress", "Training"),
        ("InProgress", "Uploading"),
        ("Completed", "Completed"),
    ]
    [job] = control.jobs()
    assert (job["name"], job["status"], job["secondary_status"]) == ("job-1", "Completed", "Completed")
    assert control.job("job-1")["arn"].endswith(":training-job/job-1")


def test_outcome_rule_fails_the_job_with_its_reason(
    sm: SageMakerClient, control: LocalSageMakerControl
) -> None:
    control.set_outcome("bench-*", outcome="Failed", failure_reason="AlgorithmError: boom, exit code 1")
    create_training_job(sm, "bench-1")
    create_training_job(sm, "other-1")
    control.advance(60)

    failed = sm.describe_training_job(TrainingJobName="bench-1")
    assert (failed["TrainingJobStatus"], failed["FailureReason"]) == (
        "Failed",
        "AlgorithmError: boom, exit code 1",
    )
    assert statuses(sm, "other-1") == ("Completed", "Completed")

    control.clear_outcomes()
    create_training_job(sm, "bench-2")
    control.advance(60)
    assert statuses(sm, "bench-2") == ("Completed", "Completed")


def test_stop_duplicate_and_search_over_http(sm: SageMakerClient, control: LocalSageMakerControl) -> None:
    arn = create_training_job(sm, "job-1", Tags=[{"Key": "anubis-action-id", "Value": "action-1"}])
    create_training_job(sm, "job-2", Tags=[{"Key": "anubis-action-id", "Value": "action-2"}])

    with pytest.raises(ClientError) as excinfo:
        create_training_job(sm, "job-1")
    assert excinfo.value.response["Error"]["Code"] == "ResourceInUse"
    assert arn in excinfo.value.response["Error"]["Message"]

    sm.stop_training_job(TrainingJobName="job-1")
    assert statuses(sm, "job-1") == ("Stopping", "Stopping")
    control.advance(control.default_timeline()["stopping"])
    assert statuses(sm, "job-1") == ("Stopped", "Stopped")
    with pytest.raises(ClientError) as excinfo:
        sm.stop_training_job(TrainingJobName="job-1")
    assert excinfo.value.response["Error"]["Message"] == (
        "The request was rejected because the training job is in status Stopped."
    )

    results = sm.search(
        Resource="TrainingJob",
        SearchExpression={
            "Filters": [{"Name": "Tags.anubis-action-id", "Operator": "Equals", "Value": "action-2"}]
        },
    )["Results"]
    assert [r["TrainingJob"]["TrainingJobName"] for r in results] == ["job-2"]
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "anubis-action-id", "Value": "action-1"}]
    names = [
        s["TrainingJobName"] for s in sm.list_training_jobs(StatusEquals="Stopped")["TrainingJobSummaries"]
    ]
    assert names == ["job-1"]


def test_reset_empties_moto_and_restores_defaults(
    server: RunningServer, sm: SageMakerClient, control: LocalSageMakerControl
) -> None:
    s3 = client(server, "s3")
    s3.create_bucket(Bucket="local-bucket")
    create_training_job(sm, "job-1")
    control.set_default_timeline(training=99)
    control.set_faults(latency_ms=1)

    control.reset()

    assert control.jobs() == []
    assert s3.list_buckets()["Buckets"] == []
    assert control.default_timeline()["training"] == 2.0
    assert control.faults()["latency_ms"] == 0


def test_control_errors(control: LocalSageMakerControl) -> None:
    with pytest.raises(ControlError) as excinfo:
        control._call("GET", "nope")
    assert excinfo.value.status == 404
    with pytest.raises(ControlError) as excinfo:
        control._call("DELETE", "timeline")
    assert excinfo.value.status == 405
    with pytest.raises(ControlError) as excinfo:
        control.set_default_timeline(nope=1)
    assert (excinfo.value.status, str(excinfo.value)) == (400, "unknown timeline fields: ['nope']")
    with pytest.raises(ControlError) as excinfo:
        control.set_faults(error_rate=2)
    assert excinfo.value.status == 400
    with pytest.raises(ControlError) as excinfo:
        control.advance(-1)
    assert excinfo.value.status == 400


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [("throttling", 400, "ThrottlingException"), ("internal", 500, "InternalFailure")],
)
def test_injected_errors_answer_sagemaker_and_s3_calls(
    server: RunningServer, control: LocalSageMakerControl, kind: str, status: int, code: str
) -> None:
    sm = client(server, "sagemaker", NO_RETRIES)
    s3 = client(server, "s3", NO_RETRIES)
    control.set_faults(error_rate=1.0, error_kind=kind)

    for call in (
        sm.list_training_jobs,
        s3.list_buckets,
        lambda: s3.put_object(Bucket="b-1", Key="k", Body=b"x"),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == code
        assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == status

    assert control.health()["status"] == "ok", "control calls are never faulted"
    assert control.faults()["stats"] == {"calls": 3, "delayed": 0, "errors": 3}


def test_retriable_errors_are_retried_by_botocore(
    server: RunningServer, control: LocalSageMakerControl
) -> None:
    # Seed 3 draws error, success, error, success: each call fails once, then its retry succeeds.
    control.set_faults(error_rate=0.5, seed=3)
    sm = client(server, "sagemaker", Config(retries={"mode": "standard", "total_max_attempts": 3}))
    create_training_job(sm, "job-1")
    create_training_job(sm, "job-2")
    assert control.faults()["stats"] == {"calls": 4, "delayed": 0, "errors": 2}
    assert [job["name"] for job in control.jobs()] == ["job-1", "job-2"]


def test_injected_latency_delays_aws_calls(server: RunningServer, control: LocalSageMakerControl) -> None:
    sm = client(server, "sagemaker")
    sm.list_training_jobs()  # connect before measuring
    control.set_faults(latency_ms=300)
    started = time.monotonic()
    sm.list_training_jobs()
    assert time.monotonic() - started >= 0.3
    assert control.faults()["stats"]["delayed"] == 1


def test_real_clock_server_refuses_to_advance(tmp_path: Path) -> None:
    # With zero-length phases a real clock completes a job at once, so nothing has to be waited for.
    running = start_server(tmp_path, "--phase-seconds", "0", "--stop-seconds", "0")
    try:
        control = LocalSageMakerControl(running.url)
        assert control.health()["manual_clock"] is False
        with pytest.raises(ControlError) as excinfo:
            control.advance(1)
        assert excinfo.value.status == 409
        sm = client(running, "sagemaker")
        create_training_job(sm, "job-1")
        assert statuses(sm, "job-1") == ("Completed", "Completed")
    finally:
        assert stop_server(running) == 0


def test_a_request_over_an_instance_quota_is_refused_as_sagemaker_words_it(
    server: RunningServer, control: LocalSageMakerControl
) -> None:
    sm = client(server, "sagemaker", NO_RETRIES)
    control.set_quotas(**{"ml.p3.16xlarge": 0, "ml.m5.large": 2})
    with pytest.raises(ClientError) as excinfo:
        create_training_job(sm, "over-quota", ResourceConfig=_resources("ml.p3.16xlarge", 1))
    error = excinfo.value.response["Error"]
    assert error["Code"] == "ResourceLimitExceeded"
    assert "is 0 Instances" in error["Message"] and "request delta of 1 Instances" in error["Message"]
    create_training_job(sm, "within-quota", ResourceConfig=_resources("ml.m5.large", 2))
    assert [job["name"] for job in control.jobs()] == ["within-quota"]
    control.reset()
    assert control._call("GET", "quotas") == {}


def test_requests_are_validated_over_http_before_quotas(
    server: RunningServer, control: LocalSageMakerControl
) -> None:
    sm = client(server, "sagemaker", NO_RETRIES)
    control.set_quotas(**{"ml.p3.16xlarge": 0})
    with pytest.raises(ClientError) as excinfo:
        create_training_job(sm, "a" + "-" * 70 + "b", ResourceConfig=_resources("ml.p3.16xlarge", 1))
    error = excinfo.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"].endswith(
        "at 'trainingJobName' failed to satisfy constraint: Member must have length less than or equal to 63"
    )
    assert control.jobs() == []


def _resources(instance_type: str, count: int) -> dict[str, Any]:
    return {"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 1}


# --- run mode (--run-jobs): jobs run as processes of the server's machine ---------------------------

RUN_BUCKET = "run-bucket"


def _run_job(server: RunningServer, name: str, script: str) -> Any:
    """Puts ``script`` as the job's bootstrap in the server's S3 and creates a command-mode job."""
    s3 = client(server, "s3")
    if RUN_BUCKET not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=RUN_BUCKET)
    prefix = f"{name}/source/anubis_code/"
    s3.put_object(Bucket=RUN_BUCKET, Key=prefix + "bootstrap.sh", Body=script.encode())
    sm = client(server, "sagemaker")
    create_training_job(
        sm,
        name,
        AlgorithmSpecification={
            "TrainingImage": "python:3-alpine",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": BOOTSTRAP,
            "MetricDefinitions": [{"Name": "score", "Regex": "score=([0-9.]+)"}],
        },
        InputDataConfig=[channel("anubis_code", f"s3://{RUN_BUCKET}/{prefix}")],
        OutputDataConfig={"S3OutputPath": f"s3://{RUN_BUCKET}"},
    )
    return sm


def _until(condition: Any, what: str, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


def _log_lines(server: RunningServer, name: str) -> list[str]:
    logs = client(server, "logs")
    try:
        streams = logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/")
    except logs.exceptions.ResourceNotFoundException:
        return []
    lines: list[str] = []
    for stream in streams["logStreams"]:
        answer = logs.get_log_events(
            logGroupName=LOG_GROUP, logStreamName=stream["logStreamName"], startFromHead=True
        )
        lines += [event["message"] for event in answer["events"]]
    return lines


@needs_namespaces
def test_a_run_jobs_server_runs_jobs_and_ends_them_on_reset_and_on_sigterm(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    running = start_server(tmp_path, "--run-jobs", "--stop-grace-seconds", "0.5", "--jobs-dir", str(jobs))
    try:
        control = LocalSageMakerControl(running.url)
        assert control.health() == {"status": "ok", "manual_clock": False, "run_jobs": True}

        sm = _run_job(running, "served-1", "echo hello over http\necho score=0.5\n")
        job = _until(
            lambda: (
                (d := sm.describe_training_job(TrainingJobName="served-1"))["TrainingJobStatus"]
                == "Completed"
                and d
            ),
            "served-1 completed",
        )
        assert job["FinalMetricDataList"][0]["Value"] == 0.5
        assert _log_lines(running, "served-1")[1:] == ["hello over http", "score=0.5"]

        _run_job(running, "served-2", "echo started\nsleep 983.25\n")
        _until(lambda: "started" in _log_lines(running, "served-2"), "served-2 started")
        control.reset()
        assert processes_running("983.25") == [], "reset ends running jobs"

        _run_job(running, "served-3", "echo started\nsleep 982.25\n")
        _until(lambda: "started" in _log_lines(running, "served-3"), "served-3 started")
    finally:
        assert stop_server(running) == 0
    assert processes_running("982.25") == [], "SIGTERM to the server ends running jobs"
    assert list(jobs.iterdir()) == [], "and removes their directories"


@needs_namespaces
def test_a_killed_run_jobs_server_leaves_no_job_process_behind(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs"  # a killed server cannot remove its jobs' directories: keep them here
    jobs.mkdir()
    running = start_server(tmp_path, "--run-jobs", "--jobs-dir", str(jobs))
    try:
        _run_job(running, "orphan-1", "echo started\nsleep 981.25\n")
        _until(lambda: "started" in _log_lines(running, "orphan-1"), "orphan-1 started")
    finally:
        running.process.kill()  # no chance to clean up: the parent-death signal must do it
        running.process.wait(timeout=10)
    _until(lambda: processes_running("981.25") == [], "the job's processes gone after the server died")


def test_run_jobs_refuses_a_manual_clock() -> None:
    server = [sys.executable, "-m", "sagemaker_executor.local.server"]
    result = subprocess.run(
        [*server, "--port", "0", "--run-jobs", "--manual-clock"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--run-jobs runs processes in real time: it cannot take --manual-clock" in result.stderr
