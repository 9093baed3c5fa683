"""Builders for test events, starting from the contract's real samples."""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from typing import TYPE_CHECKING, Any

from sagemaker_executor.domain.translation import ExecutorSite
from tests.conftest import SAMPLES

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import InputLogEventTypeDef
    from mypy_boto3_sagemaker import SageMakerClient

# The executor's topics by role, named "<prefix>_<ROLE>" by the integration tests and the benchmark.
TOPIC_ROLES = (
    "fetcher",
    "executor",
    "status",
    "cmd_submit",
    "cmd_return",
    "dead_letter",
    "tracking",
    "metrics",
)


def topic_names(prefix: str) -> dict[str, str]:
    """``{role: "<prefix>_<ROLE>"}`` for every role in :data:`TOPIC_ROLES`."""
    return {role: f"{prefix}_{role.upper()}" for role in TOPIC_ROLES}


SITE = ExecutorSite(
    output_bucket="sm-output",
    nodata_uri="s3://data-pull/no-data",
    role_arn="arn:aws:iam::123456789012:role/bai-sagemaker",
    region="us-east-1",
)


def sample(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((SAMPLES / "events" / name).read_text())
    return event


def minimal_contents(**sections: Any) -> dict[str, Any]:
    """A small valid SageMaker descriptor; keyword sections replace or add whole tables."""
    contents: dict[str, Any] = {
        "spec_version": "0.1.0",
        "info": {"description": "a test benchmark", "execution_engine": "aws.sagemaker"},
        "hardware": {"instance_type": "ml.c5.xlarge", "strategy": "single_node"},
        "env": {"docker_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/bench:1"},
        "ml": {"benchmark_code": "python bench.py"},
    }
    for key, value in sections.items():
        if value is None:
            contents.pop(key, None)
        else:
            contents[key] = value
    return contents


def fetcher_event(
    contents: dict[str, Any] | None = None,
    *,
    action_id: str | None = None,
    client_id: str = "ca2f097889997d8200b9abc2f8d2ec822246845e",
    datasets: list[dict[str, Any]] | None = None,
    scripts: list[str] | None = None,
) -> dict[str, Any]:
    event = copy.deepcopy(sample("generated/04.fetcher.BAI_APP_FETCHER.json"))
    event["action_id"] = action_id or str(uuid.uuid4())
    event["client_id"] = client_id
    event["payload"]["toml"]["contents"] = contents if contents is not None else minimal_contents()
    event["payload"]["datasets"] = datasets if datasets is not None else []
    event["payload"]["scripts"] = [{"dst": uri} for uri in (scripts or [])]
    return event


def cancel_command(
    target: str, *, client_id: str = "ca2f097889997d8200b9abc2f8d2ec822246845e", args: Any = None
) -> dict[str, Any]:
    event = copy.deepcopy(sample("generated/10.bff.CMD_SUBMIT.cancel.json"))
    event["action_id"] = str(uuid.uuid4())
    event["client_id"] = client_id
    event["payload"]["args"] = {"target_action_id": target} if args is None else args
    return event


def create_training_job(sm: SageMakerClient, name: str, **extra: Any) -> str:
    """A minimal CreateTrainingJob straight to a (local) SageMaker client; returns the job's ARN."""
    request = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": "123.dkr.ecr/img:1", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker",
        "OutputDataConfig": {"S3OutputPath": "s3://local-bucket/output"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    arn: str = sm.create_training_job(**{**request, **extra})["TrainingJobArn"]
    return arn


def write_job_log(
    logs: CloudWatchLogsClient,
    job_name: str,
    host: int,
    messages: list[str],
    *,
    start_ms: int | None = None,
    step_ms: int = 1000,
    epoch: int = 1_700_000_000,
) -> str:
    """Put ``messages`` in the CloudWatch stream SageMaker writes for host ``algo-<host>`` of a job
    (``/aws/sagemaker/TrainingJobs``, ``<job>/algo-<host>-<epoch>``), ``step_ms`` apart; returns the
    stream's name. The group and the stream are created when missing."""
    import time

    group = "/aws/sagemaker/TrainingJobs"
    stream = f"{job_name}/algo-{host}-{epoch}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    start = int(time.time() * 1000) - 3_600_000 if start_ms is None else start_ms
    if messages:
        events: list[InputLogEventTypeDef] = [
            {"timestamp": start + i * step_ms, "message": m} for i, m in enumerate(messages)
        ]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
    return stream
