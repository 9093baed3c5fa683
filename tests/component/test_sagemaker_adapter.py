"""Component tests of ``adapters.sagemaker`` (``SageMakerJobs``, ``resolve_role_arn``) over HTTP.

The local SageMaker server (moto plus the local behaviour layer) runs in a child process for the whole
module, with a manual clock so that a job stays ``InProgress`` until it is stopped. boto3 finds it
through ``AWS_ENDPOINT_URL``; the dummy credentials come from ``tests/conftest.py``. Every test starts
from a ``reset`` server with the output bucket created.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest

from sagemaker_executor.adapters.pacing import TokenBucket
from sagemaker_executor.adapters.sagemaker import SageMakerJobs, resolve_role_arn
from sagemaker_executor.adapters.sourcedir import build_source_dir
from sagemaker_executor.domain.descriptor import parse_descriptor
from sagemaker_executor.domain.errors import (
    ExecutorError,
    JobAlreadyExists,
    JobNotFound,
    OutageError,
    PermanentError,
    TransientError,
)
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.translation import (
    TAG_ACTION_ID,
    TAG_CLIENT_ID,
    TrainingJobSpec,
    translate,
)
from sagemaker_executor.local.server import LocalSageMakerControl, server_process
from tests.builders import SITE, fetcher_event, minimal_contents

REGION = "us-east-1"
LOOPBACK = frozenset({"127.0.0.1", "::1"})
MOTO_ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def server() -> Iterator[LocalSageMakerControl]:
    with server_process(extra_args=["--manual-clock"]) as control:
        yield control


@pytest.fixture
def control(
    server: LocalSageMakerControl, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LocalSageMakerControl]:
    server.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.base_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    yield server
    server.reset()


@pytest.fixture
def session(control: LocalSageMakerControl) -> boto3.Session:
    session = boto3.Session(region_name=REGION)
    session.client("s3").create_bucket(Bucket=SITE.output_bucket)
    return session


def make_spec(action_id: str | None = None) -> TrainingJobSpec:
    event = fetcher_event(minimal_contents(), action_id=action_id or str(uuid.uuid4()))
    descriptor = parse_descriptor(event["payload"]["toml"]["contents"])
    return translate(descriptor, FetcherBenchmarkEvent.model_validate(event), SITE)


def make_source_dir(spec: TrainingJobSpec, where: Path) -> Path:
    source = where / f"src-{spec.job_name}"
    build_source_dir(source, [], spec.entry_files, spec.requirements, 10**6)
    return source


def make_jobs(session: boto3.Session, retry_attempts: int = 2) -> SageMakerJobs:
    return SageMakerJobs(session, default_bucket=SITE.output_bucket, retry_attempts=retry_attempts)


def record_operations(session: boto3.Session) -> list[str]:
    """``service.Operation`` of every AWS call made by clients created from ``session`` from now on."""
    calls: list[str] = []

    def before_call(event_name: str, model: Any, **_: Any) -> None:
        service = event_name.split(".")[1]
        calls.append(f"{service}.{model.name}")

    session.events.register("before-call", before_call)
    return calls


# ---------------------------------------------------------------------------- network guard


@contextmanager
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Refuse (and record) every connection or name lookup for anything but 127.0.0.1 and ::1."""
    refused: list[Any] = []
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_create_connection = socket.create_connection
    real_getaddrinfo = socket.getaddrinfo

    def allowed(address: Any) -> bool:
        if isinstance(address, tuple) and address:
            return address[0] in LOOPBACK
        return isinstance(address, str | bytes)  # AF_UNIX paths are local by definition

    def guarded(real: Callable[..., Any]) -> Callable[..., Any]:
        def connect(self: socket.socket, address: Any) -> Any:
            if not allowed(address):
                refused.append(("connect", address))
                raise ConnectionRefusedError(f"test guard: no traffic to {address!r}")
            return real(self, address)

        return connect

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> Any:
        if not allowed(address):
            refused.append(("create_connection", address))
            raise ConnectionRefusedError(f"test guard: no traffic to {address!r}")
        return real_create_connection(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and name not in LOOPBACK:
            refused.append(("getaddrinfo", name))
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: no lookup of {name!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guarded(real_connect_ex))
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        yield refused
    finally:
        monkeypatch.setattr(socket.socket, "connect", real_connect)
        monkeypatch.setattr(socket.socket, "connect_ex", real_connect_ex)
        monkeypatch.setattr(socket, "create_connection", real_create_connection)
        monkeypatch.setattr(socket, "getaddrinfo", real_getaddrinfo)


def test_the_guard_refuses_a_non_loopback_destination(monkeypatch: pytest.MonkeyPatch) -> None:
    with loopback_only(monkeypatch) as refused:
        with pytest.raises(OSError):
            socket.create_connection(("192.0.2.1", 443), timeout=1)
        with pytest.raises(OSError):
            socket.getaddrinfo("sts.amazonaws.com", 443)
    assert [kind for kind, _ in refused] == ["create_connection", "getaddrinfo"]


def test_create_talks_only_to_the_endpoint_and_makes_exactly_two_aws_calls(
    session: boto3.Session, control: LocalSageMakerControl, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    operations = record_operations(session)
    specs = [make_spec(), make_spec()]

    with loopback_only(monkeypatch) as refused:
        jobs = make_jobs(session)
        for spec in specs:
            jobs.create(spec, make_source_dir(spec, tmp_path))

    print("AWS operations:", operations)
    print("refused destinations:", refused)
    assert refused == []  # no SDK telemetry, no STS, no other AWS host
    assert operations == ["s3.PutObject", "sagemaker.CreateTrainingJob"] * len(specs)
    job = control.job(specs[0].job_name)
    assert job["status"] == "InProgress"
    uploaded = session.client("s3").list_objects_v2(Bucket=SITE.output_bucket)["Contents"]
    assert {o["Key"] for o in uploaded} == {f"{s.job_name}/source/anubis_code/bootstrap.sh" for s in specs}


# ---------------------------------------------------------------------------- pacing and the SDK


@pytest.mark.parametrize("builder", ["boto3", "sdk"])
def test_every_create_training_job_attempt_waits_for_a_token_and_nothing_else_does(
    session: boto3.Session, control: LocalSageMakerControl, tmp_path: Path, builder: Any
) -> None:
    slept: list[float] = []
    pacer = TokenBucket(2, 1, clock=lambda: 0.0, sleep=slept.append)  # time stands still
    jobs = SageMakerJobs(
        session,
        default_bucket=SITE.output_bucket,
        retry_attempts=2,
        request_builder=builder,
        create_pacer=pacer,
    )
    specs = [make_spec() for _ in range(3)]

    for spec in specs:
        jobs.create(spec, make_source_dir(spec, tmp_path))  # a PutObject and a CreateTrainingJob each
    jobs.describe(specs[0].job_name)
    assert slept == [0.5, 1.0]  # the first token was there; then one every 1/rate seconds

    byoc = parse_descriptor(minimal_contents(ml=None))  # no source to upload: CreateTrainingJob only
    spec = translate(
        byoc, FetcherBenchmarkEvent.model_validate(fetcher_event(minimal_contents(ml=None))), SITE
    )
    with faults(control, error_rate=1.0, error_kind="throttling"), pytest.raises(TransientError):
        jobs.create(spec, None)
    assert slept == [0.5, 1.0, 1.5, 2.0]  # the throttled attempt and its retry took one each


def test_a_create_rate_builds_a_bucket_of_that_rate_and_none_paces_nothing(session: boto3.Session) -> None:
    assert make_jobs(session).create_pacer is None
    paced = SageMakerJobs(session, default_bucket=SITE.output_bucket, retry_attempts=2, create_rate=0.5)
    assert paced.create_pacer is not None
    assert (paced.create_pacer.rate, paced.create_pacer.burst) == (0.5, 1.0)


# Run in a child process where ``import sagemaker`` fails, as in the default install (no ``sdk`` extra).
WITHOUT_SDK = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys
    sys.modules["sagemaker"] = None  # any import of the SDK now raises ImportError
    import boto3
    import sagemaker_executor
    from sagemaker_executor.adapters.sagemaker import SageMakerJobs
    from sagemaker_executor.domain.errors import PermanentError
    from tests.component.test_sagemaker_adapter import make_source_dir, make_spec
    from pathlib import Path

    skip = ("sagemaker_executor.local", "sagemaker_executor.adapters.sagemaker_sdk")  # test-only, SDK path
    for module in pkgutil.walk_packages(sagemaker_executor.__path__, "sagemaker_executor."):
        if not module.name.startswith(skip):
            importlib.import_module(module.name)
    session = boto3.Session(region_name="us-east-1")
    spec = make_spec()
    SageMakerJobs(session, default_bucket="sm-output", retry_attempts=2).create(
        spec, make_source_dir(spec, Path(sys.argv[1]))
    )
    try:
        SageMakerJobs(session, default_bucket="sm-output", retry_attempts=2, request_builder="sdk")
        refused = None
    except PermanentError as error:
        refused = str(error)
    loaded = [m for m, v in sys.modules.items() if m.split(".")[0] == "sagemaker" and v is not None]
    print(json.dumps({"job": spec.job_name, "sdk_modules": loaded, "refused": refused}))
    """
)


def test_the_default_path_runs_where_the_sdk_cannot_be_imported(
    session: boto3.Session, control: LocalSageMakerControl, tmp_path: Path
) -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SDK, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        check=False,
    )

    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["sdk_modules"] == []
    assert control.job(outcome["job"])["status"] == "InProgress"
    assert "pip install 'sagemaker-executor[sdk]'" in outcome["refused"]


# ---------------------------------------------------------------------------- lookups and stop


def test_creating_the_same_job_twice_raises_job_already_exists(
    session: boto3.Session, tmp_path: Path
) -> None:
    jobs = make_jobs(session)
    spec = make_spec()
    jobs.create(spec, make_source_dir(spec, tmp_path))

    with pytest.raises(JobAlreadyExists) as caught:
        jobs.create(spec, make_source_dir(spec, tmp_path / "again"))
    assert caught.value.job_name == spec.job_name


def test_describe_of_an_unknown_job_raises_job_not_found(session: boto3.Session) -> None:
    with pytest.raises(JobNotFound):
        make_jobs(session).describe("no-such-job")


def test_tags_and_find_by_tag(session: boto3.Session, tmp_path: Path) -> None:
    jobs = make_jobs(session)
    spec, other = make_spec(), make_spec()
    for s in (spec, other):
        jobs.create(s, make_source_dir(s, tmp_path))

    described = jobs.describe(spec.job_name)
    tags = jobs.tags(described["TrainingJobArn"])

    assert described["TrainingJobName"] == spec.job_name
    assert tags[TAG_ACTION_ID] == spec.action_id
    assert tags[TAG_CLIENT_ID] == spec.client_id
    assert jobs.find_by_tag(TAG_ACTION_ID, spec.action_id) == [spec.job_name]
    assert jobs.find_by_tag(TAG_ACTION_ID, "nobody") == []


def test_stop_moves_the_job_to_stopping(session: boto3.Session, tmp_path: Path) -> None:
    jobs = make_jobs(session)
    spec = make_spec()
    jobs.create(spec, make_source_dir(spec, tmp_path))

    jobs.stop(spec.job_name)

    assert jobs.describe(spec.job_name)["TrainingJobStatus"] == "Stopping"


def test_stop_of_an_unknown_job_raises_job_not_found(session: boto3.Session) -> None:
    with pytest.raises(JobNotFound):
        make_jobs(session).stop("no-such-job")


# ---------------------------------------------------------------------------- error kinds


@contextmanager
def faults(control: LocalSageMakerControl, **settings: Any) -> Iterator[None]:
    control.set_faults(**settings)
    try:
        yield
    finally:
        control.set_faults(error_rate=0.0, latency_ms=0.0)


@pytest.mark.parametrize("kind", ["throttling", "internal"])
def test_create_under_persistent_faults_raises_transient_error(
    session: boto3.Session, control: LocalSageMakerControl, tmp_path: Path, kind: str
) -> None:
    jobs = make_jobs(session, retry_attempts=2)
    spec = make_spec()
    source = make_source_dir(spec, tmp_path)

    with faults(control, error_rate=1.0, error_kind=kind), pytest.raises(TransientError) as caught:
        jobs.create(spec, source)
    print(f"{kind}: {caught.value}")
    assert control.jobs() == []


@pytest.mark.parametrize("kind", ["throttling", "internal"])
def test_lookups_under_persistent_faults_raise_transient_error(
    session: boto3.Session, control: LocalSageMakerControl, kind: str
) -> None:
    jobs = make_jobs(session, retry_attempts=2)

    with faults(control, error_rate=1.0, error_kind=kind):
        before = control.faults()["stats"]["errors"]
        for call in (
            lambda: jobs.describe("any-job"),
            lambda: jobs.stop("any-job"),
            lambda: jobs.tags(f"arn:aws:sagemaker:{REGION}:{MOTO_ACCOUNT}:training-job/any-job"),
            lambda: jobs.find_by_tag(TAG_ACTION_ID, "x"),
        ):
            with pytest.raises(TransientError):
                call()
        errors = control.faults()["stats"]["errors"] - before
    assert errors == 4 * 2  # retry_attempts=2: each call tried twice, then given up


def test_a_request_sagemaker_rejects_raises_permanent_error(session: boto3.Session, tmp_path: Path) -> None:
    jobs = make_jobs(session)
    spec = make_spec()
    bad = dataclasses.replace(spec, job_name="not_a_valid_job_name")

    with pytest.raises(PermanentError) as caught:
        jobs.create(bad, make_source_dir(spec, tmp_path))
    print("permanent:", caught.value)
    assert "ValidationException" in str(caught.value)


def test_a_missing_output_bucket_is_an_outage_naming_the_fix(session: boto3.Session, tmp_path: Path) -> None:
    # The output bucket is the executor's own: its absence is the operators' to fix, not the user's.
    jobs = SageMakerJobs(session, default_bucket="no-such-bucket", retry_attempts=2)
    spec = dataclasses.replace(make_spec(), output_path="s3://no-such-bucket")

    with pytest.raises(OutageError) as caught:
        jobs.create(spec, make_source_dir(spec, tmp_path))
    assert caught.value.dependency == "aws" and "NoSuchBucket" in str(caught.value)
    assert "SAGEMAKER_OUTPUT_BUCKET" in caught.value.fix


def test_command_mode_uploads_every_file_of_the_code_channel_under_its_prefix(
    session: boto3.Session, tmp_path: Path
) -> None:
    spec = make_spec()
    source = make_source_dir(spec, tmp_path)
    for index in range(40):  # more files than upload threads
        path = source / "scripts" / f"d{index % 3}" / f"f{index}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"print({index})\n")

    make_jobs(session).create(spec, source)

    prefix = f"{spec.job_name}/source/anubis_code/"
    s3 = session.client("s3")
    listed = s3.list_objects_v2(Bucket=SITE.output_bucket, Prefix=prefix)["Contents"]
    keys = {item["Key"][len(prefix) :] for item in listed}
    assert keys == {"bootstrap.sh"} | {f"scripts/d{i % 3}/f{i}.py" for i in range(40)}
    body = s3.get_object(Bucket=SITE.output_bucket, Key=prefix + "scripts/d1/f7.py")["Body"].read()
    assert body == b"print(7)\n"


# ---------------------------------------------------------------------------- resolve_role_arn


def test_an_arn_passes_through_without_any_call(session: boto3.Session) -> None:
    operations = record_operations(session)
    arn = "arn:aws:iam::999999999999:role/bai-sagemaker"

    assert resolve_role_arn(session, arn, 2) == arn
    assert operations == []


def test_an_existing_role_name_resolves_through_iam(session: boto3.Session) -> None:
    created = session.client("iam").create_role(
        RoleName="bai-sagemaker",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        Path="/service/",
    )["Role"]["Arn"]
    operations = record_operations(session)

    assert resolve_role_arn(session, "bai-sagemaker", 2) == created
    assert created == f"arn:aws:iam::{MOTO_ACCOUNT}:role/service/bai-sagemaker"
    assert operations == ["iam.GetRole"]


def test_an_unknown_role_name_falls_back_to_the_callers_account(session: boto3.Session) -> None:
    operations = record_operations(session)

    assert resolve_role_arn(session, "not-in-iam", 2) == f"arn:aws:iam::{MOTO_ACCOUNT}:role/not-in-iam"
    assert operations == ["iam.GetRole", "sts.GetCallerIdentity"]


def test_a_role_that_cannot_be_resolved_stops_with_an_error_naming_the_setting(
    session: boto3.Session, control: LocalSageMakerControl
) -> None:
    with faults(control, error_rate=1.0, error_kind="throttling"), pytest.raises(ExecutorError) as caught:
        resolve_role_arn(session, "bai-sagemaker", 1)
    print(f"{type(caught.value).__name__}: {caught.value}")
    assert "SAGEMAKER_ROLE" in str(caught.value)
