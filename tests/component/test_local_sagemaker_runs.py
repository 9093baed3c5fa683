"""Component tests of the local SageMaker's run mode (``local.runner``), in-process inside ``mock_aws()``.

Each job is a POSIX ``sh`` bootstrap put in moto's S3 under the job's code prefix and run as command
mode's request runs it (``ContainerEntrypoint = ["sh", "/opt/ml/input/data/anubis_code/bootstrap.sh"]``);
what it saw comes back through its CloudWatch log, its model.tar.gz and DescribeTrainingJob. Jobs that
must be stopped wait on a ``sleep`` with a duration no other process has, so the test can look for
that process afterwards. Running needs root and ``unshare`` (a private /opt/ml per host); without them
those tests are skipped with that reason, never silently.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sys
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from sagemaker_executor.domain.joblog import LOG_GROUP
from sagemaker_executor.local.runner import MAX_EVENT_BYTES, JobRunner
from sagemaker_executor.local.sagemaker import LocalSageMaker, ManualClock, Timeline

if TYPE_CHECKING:
    from mypy_boto3_logs.type_defs import OutputLogEventTypeDef
    from mypy_boto3_sagemaker.type_defs import DescribeTrainingJobResponseTypeDef, FilterTypeDef

pytestmark = pytest.mark.timeout(60)

needs_namespaces = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="run mode needs root and unshare (util-linux) for a private /opt/ml per host",
)

REGION = "us-east-1"
BUCKET = "run-bucket"
ROLE = "arn:aws:iam::123456789012:role/sagemaker"
BOOTSTRAP = ["sh", "/opt/ml/input/data/anubis_code/bootstrap.sh"]
SCRIPTS_PATH = "/opt/ml/input/data/anubis_code/scripts"


class Site:
    """The local AWS of one test: moto in-process, the local SageMaker in run mode, boto3 clients."""

    def __init__(self, local: LocalSageMaker, jobs_dir: Path) -> None:
        self.local = local
        self.jobs_dir = jobs_dir
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sm = boto3.client("sagemaker", region_name=REGION)
        self.logs = boto3.client("logs", region_name=REGION)
        self.s3.create_bucket(Bucket=BUCKET)

    def put(self, key: str, body: str | bytes) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def create(self, name: str, script: str, *, code: dict[str, str] | None = None, **changes: Any) -> None:
        """A command-mode job whose bootstrap is ``script``; ``changes`` replace request fields."""
        prefix = f"{name}/source/anubis_code/"
        self.put(prefix + "bootstrap.sh", script)
        for relative, text in (code or {}).items():
            self.put(prefix + relative, text)
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "AlgorithmSpecification": {
                "TrainingImage": "python:3-alpine",
                "TrainingInputMode": "File",
                "ContainerEntrypoint": BOOTSTRAP,
            },
            "RoleArn": ROLE,
            "InputDataConfig": [channel("anubis_code", f"s3://{BUCKET}/{prefix}")],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
            "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        }
        self.sm.create_training_job(**(request | changes))

    def describe(self, name: str) -> DescribeTrainingJobResponseTypeDef:
        return self.sm.describe_training_job(TrainingJobName=name)

    def ended(self, name: str) -> DescribeTrainingJobResponseTypeDef:
        assert self.local.wait(name, timeout=30), f"{name} did not end"
        return self.describe(name)

    def streams(self, name: str) -> list[str]:
        try:
            found = self.logs.describe_log_streams(logGroupName=LOG_GROUP, logStreamNamePrefix=f"{name}/")
        except self.logs.exceptions.ResourceNotFoundException:
            return []  # no job has logged yet: no log group
        return sorted(stream["logStreamName"] for stream in found["logStreams"])

    def events(self, stream: str) -> list[OutputLogEventTypeDef]:
        answer = self.logs.get_log_events(logGroupName=LOG_GROUP, logStreamName=stream, startFromHead=True)
        return answer["events"]

    def lines(self, stream: str) -> list[str]:
        return [event["message"] for event in self.events(stream)]

    def log_shows(self, name: str, text: str, timeout: float = 20) -> None:
        """Waits until ``text`` is a line of the job's first stream, as ``--follow`` would see it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            streams = self.streams(name)
            if streams and text in self.lines(streams[0]):
                return
            threading.Event().wait(0.05)
        raise AssertionError(f"{text!r} never appeared in the log of {name}")

    def model_files(self, name: str) -> dict[str, str]:
        body = self.s3.get_object(Bucket=BUCKET, Key=f"{name}/output/model.tar.gz")["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as archive:
            return {
                member.name: archive.extractfile(member).read().decode()  # type: ignore[union-attr]
                for member in archive.getmembers()
                if member.isfile()
            }

    def leftovers(self) -> list[str]:
        return sorted(os.listdir(self.jobs_dir)) if self.jobs_dir.exists() else []


def channel(name: str, uri: str, distribution: str = "FullyReplicated") -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": distribution}
        },
    }


def processes_running(marker: str) -> list[int]:
    """Processes of this machine whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def transitions(job: Mapping[str, Any]) -> list[str]:
    return [t["Status"] for t in job["SecondaryStatusTransitions"]]


@pytest.fixture
def site_factory(tmp_path: Path) -> Iterator[Callable[..., Site]]:
    with mock_aws():
        sites: list[LocalSageMaker] = []

        def make(stop_grace_seconds: float = 0.5, unshare: str = "unshare") -> Site:
            jobs_dir = tmp_path / "jobs"
            jobs_dir.mkdir()
            runner = JobRunner(stop_grace_seconds=stop_grace_seconds, jobs_dir=jobs_dir, unshare=unshare)
            local = LocalSageMaker(runner=runner)
            local.install()
            sites.append(local)
            return Site(local, jobs_dir)

        yield make
        for local in sites:
            local.uninstall()


@pytest.fixture
def site(site_factory: Callable[..., Site]) -> Site:
    return site_factory()


COMPLETING = """echo "starting on $(cat /opt/ml/input/config/resourceconfig.json)"
echo "hyperparameters: $(cat /opt/ml/input/config/hyperparameters.json)"
echo "inputdataconfig: $(cat /opt/ml/input/config/inputdataconfig.json)"
echo "working directory holds $(ls -A | wc -l) entries"
echo "loss=0.75"
echo "throughput: 120.5 img/s" >&2
read -r data < /opt/ml/input/data/src0/input.txt
echo "read: $data"
sh "$BAI_SCRIPTS_PATH/helper.sh"
printf '%s|%s\\n' "$data" "$SOME_ENV" > /opt/ml/model/model.txt
mkdir -p /opt/ml/model/sub && echo nested > /opt/ml/model/sub/deep.txt
echo "loss=0.25"
echo
echo "report" > /opt/ml/output/data/report.txt
echo done
"""


@needs_namespaces
def test_a_job_runs_its_entrypoint_and_completes_with_logs_metrics_and_model(site: Site) -> None:
    site.put("data/x/input.txt", "the dataset\n")
    site.put("data/xyz/other.txt", "a prefix match is a plain string match\n")
    site.create(
        "job-ok",
        COMPLETING,
        code={"scripts/helper.sh": "echo helper ran\n"},
        AlgorithmSpecification={
            "TrainingImage": "python:3-alpine",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": BOOTSTRAP,
            "MetricDefinitions": [
                {"Name": "train:loss", "Regex": r"loss=([0-9.]+)"},
                {"Name": "train:throughput", "Regex": r"throughput: ([0-9.]+) img/s"},
                {"Name": "never:seen", "Regex": r"accuracy=([0-9.]+)"},
                {"Name": "java:only", "Regex": r"(?<n>[0-9]+) items"},
            ],
        },
        InputDataConfig=[
            channel("anubis_code", f"s3://{BUCKET}/job-ok/source/anubis_code/"),
            channel("src0", f"s3://{BUCKET}/data/x"),
        ],
        Environment={"SOME_ENV": "from the request", "BAI_SCRIPTS_PATH": SCRIPTS_PATH},
        HyperParameters={"epochs": "3"},
    )

    job = site.ended("job-ok")

    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Completed", "Completed")
    assert transitions(job) == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert "FailureReason" not in job
    assert job["TrainingStartTime"] <= job["TrainingEndTime"] == job["LastModifiedTime"]
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/job-ok/output/model.tar.gz"
    assert job["Environment"]["SOME_ENV"] == "from the request"
    assert job["AlgorithmSpecification"]["MetricDefinitions"][0]["Name"] == "train:loss", "as sent"

    [stream] = site.streams("job-ok")
    assert re.fullmatch(r"job-ok/algo-1-\d{10}", stream)
    events = site.events(stream)
    lines = [event["message"] for event in events]
    assert lines[0].startswith("local SageMaker: image python:3-alpine was not pulled")
    assert lines[1].startswith("local SageMaker: metric java:only is not collected: Python's re cannot read")
    del lines[1]
    resource_config = json.loads(lines[1].removeprefix("starting on "))
    assert resource_config == {
        "current_host": "algo-1",
        "current_instance_type": "ml.m5.large",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1"],
        "instance_groups": [
            {"instance_group_name": "homogeneousCluster", "instance_type": "ml.m5.large", "hosts": ["algo-1"]}
        ],
        "network_interface_name": "eth0",
    }
    assert lines[2] == 'hyperparameters: {"epochs": "3"}'
    file_mode = {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated"}
    file_mode["RecordWrapperType"] = "None"
    input_config = json.loads(lines[3].removeprefix("inputdataconfig: "))
    assert input_config == {"anubis_code": file_mode, "src0": file_mode}
    assert lines[4:] == [
        "working directory holds 0 entries",
        "loss=0.75",
        "throughput: 120.5 img/s",
        "read: the dataset",
        "helper ran",
        "loss=0.25",
        "done",
    ], "every line, stdout and stderr, in order; the empty one left out (CloudWatch takes none)"
    stamps = [event["timestamp"] for event in events]
    assert stamps == sorted(stamps) and all(stamp > 1_600_000_000_000 for stamp in stamps)

    metrics = {m["MetricName"]: m for m in job["FinalMetricDataList"]}
    assert [m["MetricName"] for m in job["FinalMetricDataList"]] == ["train:loss", "train:throughput"]
    assert (metrics["train:loss"]["Value"], metrics["train:throughput"]["Value"]) == (0.25, 120.5)
    assert all(job["TrainingStartTime"] <= m["Timestamp"] <= job["TrainingEndTime"] for m in metrics.values())

    assert site.model_files("job-ok") == {
        "model.txt": "the dataset|from the request\n",
        "sub/deep.txt": "nested\n",
    }
    output = site.s3.get_object(Bucket=BUCKET, Key="job-ok/output/output.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(output)) as archive:
        assert archive.getnames() == ["report.txt"]
    assert site.leftovers() == [], "the job's directories are removed once it ended"


@needs_namespaces
def test_a_channel_holds_every_object_under_its_prefix_relative_to_it(site: Site) -> None:
    site.put("data/x", "an object named like the prefix\n")
    site.put("data/x/part-0", "zero\n")
    site.put("data/x/deeper/part-1", "one\n")
    site.put("data/xy/part-2", "a sibling whose key starts with the prefix\n")
    site.put("data/x/folder/", "")
    site.put("data/other/part-9", "not under the prefix\n")
    script = "cd /opt/ml/input/data/src0 && find . -type f | sort && cat ./y/part-2\n"
    site.create(
        "job-prefix",
        script,
        InputDataConfig=[
            channel("anubis_code", f"s3://{BUCKET}/job-prefix/source/anubis_code/"),
            channel("src0", f"s3://{BUCKET}/data/x") | {"InputMode": "FastFile"},
        ],
    )

    job = site.ended("job-prefix")

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    [stream] = site.streams("job-prefix")
    assert site.lines(stream)[1:] == [
        "./deeper/part-1",
        "./part-0",
        "./x",
        "./y/part-2",
        "a sibling whose key starts with the prefix",
    ]


@needs_namespaces
def test_the_job_sees_the_requests_environment_and_nothing_of_the_hosts(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "host-secret-must-not-leak")
    monkeypatch.setenv("HOST_ONLY_SETTING", "1")
    site.create("job-env", "env | sort\n", Environment={"SOME_ENV": "x", "PATH": "/usr/bin:/bin"})

    job = site.ended("job-env")

    assert job["TrainingJobStatus"] == "Completed"
    [stream] = site.streams("job-env")
    variables = dict(line.split("=", 1) for line in site.lines(stream)[1:])
    assert "host-secret-must-not-leak" not in site.lines(stream)[1:]
    assert set(variables) - {"PWD", "SHLVL", "OLDPWD"} == {
        "PATH",
        "HOME",
        "SOME_ENV",
        "TRAINING_JOB_NAME",
        "TRAINING_JOB_ARN",
    }
    assert variables["PATH"] == "/usr/bin:/bin", "the request's Environment wins over the default PATH"
    assert (variables["TRAINING_JOB_NAME"], variables["SOME_ENV"]) == ("job-env", "x")
    assert variables["TRAINING_JOB_ARN"].endswith(":training-job/job-env")


@needs_namespaces
@pytest.mark.parametrize(
    ("script", "entrypoint", "reason"),
    [
        ("echo about to fail\nexit 3\n", BOOTSTRAP, "AlgorithmError: , exit code: 3"),
        (
            "printf 'bad input: %s\\n' \"$(cat /opt/ml/input/config/hyperparameters.json)\" "
            "> /opt/ml/output/failure\nexit 2\n",
            BOOTSTRAP,
            'AlgorithmError: bad input: {"epochs": "x"}, exit code: 2',
        ),
        ("", ["/opt/ml/input/data/anubis_code/missing.sh"], "AlgorithmError: , exit code: 127"),
        (  # the first process dies of SIGSEGV: 128 + 11, as Docker reports it
            "",
            [sys.executable, "-c", "import ctypes; ctypes.string_at(0)"],
            "AlgorithmError: , exit code: 139",
        ),
    ],
    ids=["exit 3", "failure file", "no such entrypoint", "killed by a signal"],
)
def test_a_job_that_exits_non_zero_fails_with_sagemakers_reason(
    site: Site, script: str, entrypoint: list[str], reason: str
) -> None:
    site.create(
        "job-fail",
        script,
        HyperParameters={"epochs": "x"},
        AlgorithmSpecification={
            "TrainingImage": "busybox",
            "TrainingInputMode": "File",
            "ContainerEntrypoint": entrypoint,
        },
    )

    job = site.ended("job-fail")

    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert job["FailureReason"] == reason
    assert transitions(job) == ["Starting", "Downloading", "Training", "Failed"]
    assert "ModelArtifacts" not in job
    assert "Contents" not in site.s3.list_objects_v2(Bucket=BUCKET, Prefix="job-fail/output/")
    assert site.leftovers() == []


@needs_namespaces
def test_a_line_longer_than_a_cloudwatch_event_is_split(site: Site) -> None:
    site.create("job-long", "printf '%0300000d\\n' 0\n")

    job = site.ended("job-long")

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    [stream] = site.streams("job-long")
    assert [len(line) for line in site.lines(stream)[1:]] == [MAX_EVENT_BYTES, 300_000 - MAX_EVENT_BYTES]


STUBBORN = "echo started\nsleep 987.654\necho not reached\n"


@needs_namespaces
def test_stop_kills_a_job_that_ignores_sigterm_after_the_grace_period(site: Site) -> None:
    site.create("job-stop", STUBBORN)
    site.log_shows("job-stop", "started")
    assert site.describe("job-stop")["TrainingJobStatus"] == "InProgress", "the line arrived while it ran"
    assert processes_running("987.654")

    site.sm.stop_training_job(TrainingJobName="job-stop")
    stopping = site.describe("job-stop")
    job = site.ended("job-stop")

    assert stopping["TrainingJobStatus"] in ("Stopping", "Stopped")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert transitions(job) == ["Starting", "Downloading", "Training", "Stopping", "Stopped"]
    assert "FailureReason" not in job
    [stream] = site.streams("job-stop")
    assert "not reached" not in site.lines(stream)
    assert processes_running("987.654") == []
    assert site.leftovers() == []
    with pytest.raises(ClientError) as excinfo:
        site.sm.stop_training_job(TrainingJobName="job-stop")
    assert excinfo.value.response["Error"]["Message"] == (
        "The request was rejected because the training job is in status Stopped."
    )


@needs_namespaces
def test_stop_sends_sigterm_so_the_job_can_save_its_model(site_factory: Callable[..., Site]) -> None:
    site = site_factory(stop_grace_seconds=30)
    script = (
        "trap 'echo caught TERM; echo saved > /opt/ml/model/saved.txt; exit 143' TERM\n"
        "echo started\nwhile :; do sleep 0.1; done\n"
    )
    site.create("job-term", script)
    site.log_shows("job-term", "started")
    began = time.monotonic()

    site.sm.stop_training_job(TrainingJobName="job-term")
    job = site.ended("job-term")

    assert time.monotonic() - began < 10, "the job ended on SIGTERM, not after the 30 s grace period"
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert "caught TERM" in site.lines(site.streams("job-term")[0])
    assert site.model_files("job-term") == {"saved.txt": "saved\n"}
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("job-term/output/model.tar.gz")


@needs_namespaces
def test_max_runtime_stops_the_job_as_sagemaker_does(site: Site) -> None:
    site.create("job-slow", "echo started\nsleep 986.5\n", StoppingCondition={"MaxRuntimeInSeconds": 1})

    job = site.ended("job-slow")

    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")
    assert transitions(job) == ["Starting", "Downloading", "Training", "Stopping", "MaxRuntimeExceeded"]
    stopping = job["SecondaryStatusTransitions"][3]["StartTime"]
    assert (stopping - job["CreationTime"]).total_seconds() >= 1
    assert processes_running("986.5") == []


@needs_namespaces
def test_two_jobs_at_once_each_see_their_own_opt_ml(site: Site, tmp_path: Path) -> None:
    meet = tmp_path / "meet"  # outside /opt/ml: both jobs see it, so each knows the other is running
    meet.mkdir()
    script = """echo "$TRAINING_JOB_NAME" > /opt/ml/model/who
: > "$MEET/$TRAINING_JOB_NAME"
i=0
while [ ! -e "$MEET/$OTHER" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
[ -e "$MEET/$OTHER" ] || { echo never met; exit 9; }
echo "who: $(cat /opt/ml/model/who)"
echo "model files: $(ls /opt/ml/model)"
echo "code: $(cat /opt/ml/input/data/anubis_code/mine.txt)"
"""
    for name, other in (("job-a", "job-b"), ("job-b", "job-a")):
        environment = {"MEET": str(meet), "OTHER": other}
        site.create(name, script, code={"mine.txt": f"code of {name}"}, Environment=environment)

    for name in ("job-a", "job-b"):
        job = site.ended(name)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        [stream] = site.streams(name)
        assert site.lines(stream)[1:] == [f"who: {name}", "model files: who", f"code: code of {name}"]
        assert site.model_files(name) == {"who": f"{name}\n"}


@needs_namespaces
def test_each_host_of_a_two_instance_job_has_its_own_stream_and_resource_config(site: Site) -> None:
    site.put("shards/part-0", "first shard\n")
    site.put("shards/part-1", "second shard\n")
    site.put("data/x/all.txt", "everyone's\n")
    script = """cat /opt/ml/input/config/resourceconfig.json; echo
echo "hostname: $(cat /proc/sys/kernel/hostname)"
echo "shards: $(ls /opt/ml/input/data/shards)"
echo "all: $(cat /opt/ml/input/data/src0/all.txt)"
echo "hosts file: $(grep -c 'algo-[12]' /etc/hosts)"
echo "$(cat /proc/sys/kernel/hostname)" > "/opt/ml/model/$(cat /proc/sys/kernel/hostname).txt"
"""
    site.create(
        "job-two",
        script,
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 10},
        InputDataConfig=[
            channel("anubis_code", f"s3://{BUCKET}/job-two/source/anubis_code/"),
            channel("shards", f"s3://{BUCKET}/shards/", "ShardedByS3Key"),
            channel("src0", f"s3://{BUCKET}/data/x/"),
        ],
    )

    job = site.ended("job-two")

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    streams = site.streams("job-two")
    assert [re.sub(r"-\d{10}$", "", stream) for stream in streams] == ["job-two/algo-1", "job-two/algo-2"]
    seen = {}
    for index, stream in enumerate(streams, start=1):
        lines = site.lines(stream)
        config = json.loads(lines[1])
        seen[config["current_host"]] = config
        assert lines[2:] == [
            f"hostname: algo-{index}",
            f"shards: part-{index - 1}",
            "all: everyone's",
            "hosts file: 2",
        ]
    assert set(seen) == {"algo-1", "algo-2"}
    assert all(config["hosts"] == ["algo-1", "algo-2"] for config in seen.values())
    assert site.model_files("job-two") == {"algo-1.txt": "algo-1\n", "algo-2.txt": "algo-2\n"}


@needs_namespaces
def test_one_failing_host_fails_the_job_and_ends_the_others(site: Site) -> None:
    script = '[ "$(cat /proc/sys/kernel/hostname)" = algo-2 ] && exit 4\nsleep 985.5\n'
    two_hosts = {"InstanceType": "ml.m5.large", "InstanceCount": 2, "VolumeSizeInGB": 1}
    site.create("job-half", script, ResourceConfig=two_hosts)

    job = site.ended("job-half")

    assert (job["TrainingJobStatus"], job["FailureReason"]) == ("Failed", "AlgorithmError: , exit code: 4")
    assert processes_running("985.5") == []


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {
                "AlgorithmSpecification": {
                    "TrainingImage": "i",
                    "TrainingInputMode": "Pipe",
                    "ContainerEntrypoint": BOOTSTRAP,
                }
            },
            "ClientError: local SageMaker: channel anubis_code: input mode Pipe is not supported "
            "(File and FastFile are)",
        ),
        (
            {"ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 17, "VolumeSizeInGB": 1}},
            "ClientError: local SageMaker: InstanceCount 17: at most 16 hosts run on this machine",
        ),
    ],
    ids=["pipe mode", "too many hosts"],
)
def test_what_the_runner_cannot_do_fails_the_job_with_the_reason(
    site: Site, changes: dict[str, Any], reason: str
) -> None:
    site.create("job-refused", "echo never\n", **changes)

    job = site.ended("job-refused")

    assert (job["TrainingJobStatus"], job["FailureReason"]) == ("Failed", reason)
    assert transitions(job) == ["Starting", "Failed"]
    assert site.streams("job-refused") == []


def test_a_job_without_an_entrypoint_follows_the_default_timeline_instead(site: Site) -> None:
    # Script mode or an image's own program: nothing here can run it (the image is not pulled).
    site.local.default_timeline = Timeline.uniform(0.05, 0.05)
    site.create(
        "job-own-entrypoint",
        "echo never\n",
        AlgorithmSpecification={"TrainingImage": "python:3-alpine", "TrainingInputMode": "File"},
    )
    deadline = time.monotonic() + 10
    while site.describe("job-own-entrypoint")["TrainingJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        threading.Event().wait(0.05)
    assert site.describe("job-own-entrypoint")["TrainingJobStatus"] == "Completed"
    assert site.streams("job-own-entrypoint") == []  # nothing ran
    assert site.local.runner is not None and site.local.runner.running() == 0


def test_a_channel_without_objects_is_refused_at_creation_as_sagemaker_does(site: Site) -> None:
    with pytest.raises(ClientError) as excinfo:
        site.create(
            "job-nodata",
            "echo never\n",
            InputDataConfig=[
                channel("anubis_code", f"s3://{BUCKET}/job-nodata/source/anubis_code/"),
                channel("src0", f"s3://{BUCKET}/no/such/prefix"),
            ],
        )
    error = excinfo.value.response["Error"]
    assert (error["Code"], error["Message"]) == (
        "ValidationException",
        f'No S3 objects found under S3 URL "s3://{BUCKET}/no/such/prefix" given in input data source. Please '
        f"ensure that the bucket exists in the selected region ({REGION}), that objects exist under that S3 "
        f'prefix, and that the role "{ROLE}" has "s3:ListBucket" permissions on bucket "{BUCKET}".',
    )
    assert site.sm.list_training_jobs()["TrainingJobSummaries"] == []


def test_without_a_private_opt_ml_the_job_fails_saying_so(site_factory: Callable[..., Site]) -> None:
    site = site_factory(unshare=shutil.which("false") or "/bin/false")  # an unshare that always fails
    site.create("job-noisolation", "echo never\n")

    job = site.ended("job-noisolation")

    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith(
        "InternalServerError: local SageMaker: could not give host algo-1 a private /opt/ml (unshare and "
        "mount --bind, as root)"
    )
    assert site.leftovers() == []


@needs_namespaces
def test_timeline_rules_still_apply_in_run_mode(site: Site) -> None:
    site.local.set_outcome("timeline-*", Timeline.uniform(0).failing("AlgorithmError: from a rule"))
    site.create("timeline-1", "echo never\n")
    site.create("run-1", "echo ran\n")

    assert site.describe("timeline-1")["FailureReason"] == "AlgorithmError: from a rule"
    assert site.streams("timeline-1") == []
    assert site.ended("run-1")["TrainingJobStatus"] == "Completed"
    summaries = site.sm.list_training_jobs(StatusEquals="Completed")["TrainingJobSummaries"]
    assert [s["TrainingJobName"] for s in summaries] == ["run-1"]
    completed: FilterTypeDef = {"Name": "TrainingJobStatus", "Operator": "Equals", "Value": "Completed"}
    found = site.sm.search(Resource="TrainingJob", SearchExpression={"Filters": [completed]})["Results"]
    assert [r["TrainingJob"]["TrainingJobName"] for r in found] == ["run-1"]


@needs_namespaces
def test_shutting_the_local_sagemaker_down_ends_running_jobs(site: Site) -> None:
    site.create("job-left", "echo started\nsleep 984.5\n")
    site.log_shows("job-left", "started")

    site.local.uninstall()

    assert processes_running("984.5") == []
    assert not site.jobs_dir.exists() or site.leftovers() == []
    assert site.local.runner is not None and site.local.runner.running() == 0


def test_run_mode_refuses_a_manual_clock() -> None:
    with pytest.raises(ValueError, match="ManualClock"):
        LocalSageMaker(ManualClock(), run_jobs=True)
