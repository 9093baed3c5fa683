"""The SageMaker wrapper: a :class:`TrainingJobSpec` becomes an SDK 2.x Estimator and ``fit(wait=False)``;
plus the lookups cancel and redelivery need (describe, tags, search by tag, stop).

Called by ``service.submission`` and ``service.commands``. No business decisions are made here; every
botocore error leaves as one of ``domain.errors``' kinds (see ``adapters.aws.classify``).

The SDK is configured so that it makes only the calls the job needs (FACTS.md): the session has a
default bucket (no STS, no bucket creation), telemetry is opted out through the session's config,
and the role is resolved to an ARN once at start-up instead of on every ``fit``.
"""

from __future__ import annotations

import gzip
import logging
import os
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sagemaker_executor.adapters.aws import classify, client, error_code, error_message
from sagemaker_executor.adapters.sourcedir import temp_space_outage
from sagemaker_executor.domain.descriptor import Framework
from sagemaker_executor.domain.errors import JobAlreadyExists, JobNotFound, OutageError, PermanentError
from sagemaker_executor.domain.translation import TrainingJobSpec

log = logging.getLogger(__name__)

# What an operator grants or creates when the executor's own calls are refused (``classify(own=...)``).
FIX_CREATE = (
    "grant the executor's identity sagemaker:CreateTrainingJob and sagemaker:AddTags, and iam:PassRole "
    "on SAGEMAKER_ROLE; SAGEMAKER_ROLE must exist and trust sagemaker.amazonaws.com"
)
FIX_OUTPUT_BUCKET = "SAGEMAKER_OUTPUT_BUCKET must exist and the executor's identity needs s3:PutObject on it"
FIX_LOOKUPS = (
    "grant the executor's identity sagemaker:DescribeTrainingJob, ListTrainingJobs, ListTags, Search "
    "and StopTrainingJob"
)

# Passed to the SDK session directly (so no config file is read): opts out of the SDK's telemetry,
# which otherwise calls STS and GETs an AWS-hosted URL after every fit (FACTS.md).
SDK_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


def configure_sdk_environment() -> None:
    """Quiet the SDK: no v2 deprecation banner, no config-file log lines. Runs before it is imported."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    logging.getLogger("sagemaker.telemetry").setLevel(logging.WARNING)


def _skip_tensorboard_client() -> None:
    """Stop every SDK estimator from building a boto3 client for TensorBoard that we never use.

    ``EstimatorBase.__init__`` creates a ``TensorBoardApp``, whose constructor builds a fresh SageMaker
    client from boto3's *default* session: about 22 ms of CPU per estimator (a new botocore client
    class each time), half of a submission's CPU. Only ``estimator.tensorboard_app`` users need it,
    and this service never touches it.
    """
    import sagemaker.estimator as sdk_estimator

    setattr(sdk_estimator, "TensorBoardApp", _no_tensorboard_app)  # noqa: B010


def _no_tensorboard_app(region: str | None = None) -> None:
    return None


def _validate_sdk_config_once() -> None:
    """Make the SDK validate :data:`SDK_CONFIG` once instead of on every config lookup.

    With any config present, SDK 2.x re-runs a JSON-schema validation of the whole config on each of
    the ~20 lookups a ``fit`` makes: about 1.7 s of CPU per submission, against ~30 ms without it
    (measured with the local SageMaker). The session validates :data:`SDK_CONFIG` when it is created;
    later lookups of that same, never-modified object skip the repeat. Any other config is still
    validated by the SDK as usual.
    """
    import sagemaker.utils as sdk_utils

    original = getattr(sdk_utils, "validate_sagemaker_config")  # noqa: B009 -- not in its __all__
    if getattr(original, "__wrapped_by_sm_executor__", False):
        return

    def validate(sagemaker_config: dict[str, Any] | None = None) -> Any:
        if sagemaker_config is SDK_CONFIG:
            return None
        return original(sagemaker_config)

    validate.__wrapped_by_sm_executor__ = True  # type: ignore[attr-defined]
    setattr(sdk_utils, "validate_sagemaker_config", validate)  # noqa: B010


def resolve_role_arn(session: boto3.Session, role: str, retry_attempts: int) -> str:
    """The role's ARN: as given if it is one, else looked up once (IAM, then the caller's account).

    Raises :class:`OutageError` when AWS cannot be asked (no credentials, unreachable): start-up waits
    for that to be fixed; :class:`PermanentError` when the name cannot be resolved at all.
    """
    if role.startswith("arn:"):
        return role
    try:
        arn: str = client(session, "iam", retry_attempts).get_role(RoleName=role)["Role"]["Arn"]
        return arn
    except (ClientError, BotoCoreError) as iam_error:
        log.info("iam:GetRole(%s) failed (%s); building the ARN from the caller's account", role, iam_error)
    try:
        account = client(session, "sts", retry_attempts).get_caller_identity()["Account"]
    except (ClientError, BotoCoreError) as error:
        kind = classify(error, f"cannot resolve SAGEMAKER_ROLE {role!r} to an ARN")
        if isinstance(kind, OutageError):
            raise kind from error
        raise PermanentError(f"cannot resolve SAGEMAKER_ROLE {role!r} to an ARN: {error}") from error
    return f"arn:aws:iam::{account}:role/{role}"


class SageMakerJobs:
    """Creates, finds and stops training jobs. Safe to call from several threads at once."""

    def __init__(self, session: boto3.Session, *, default_bucket: str, retry_attempts: int) -> None:
        configure_sdk_environment()
        from sagemaker.session import Session  # deferred: slow, and reads the environment set above

        _validate_sdk_config_once()
        _skip_tensorboard_client()
        self._client = client(session, "sagemaker", retry_attempts)  # boto3 clients are thread-safe
        self._s3 = client(session, "s3", retry_attempts)
        # The SDK session only serves estimator construction and CreateTrainingJob on the shared
        # client (the source upload is ours), so one session serves every thread.
        self._sdk_session = Session(
            boto_session=session,
            sagemaker_client=self._client,
            default_bucket=default_bucket,
            sagemaker_config=SDK_CONFIG,
        )

    @property
    def boto_client(self) -> Any:
        return self._client

    def create(self, spec: TrainingJobSpec, source_dir: Path | None) -> None:
        """Start the job; :class:`JobAlreadyExists` if the name is taken (maybe by our earlier attempt).

        The source dir is packed and uploaded here, to ``<output>/<job>/source/sourcedir.tar.gz`` -- the
        key the SDK would use -- and handed to the SDK as that S3 URI, which it then uses as it is. One
        ``PutObject`` on a shared client costs a fraction of the SDK's upload path (a boto3 resource
        class and an s3transfer pool per call), and the archive is byte-for-byte reproducible, so a
        redelivered submission rewrites the same object.
        """
        code_uri = None
        if spec.entry_point is not None:
            if source_dir is None:
                raise PermanentError("Cannot create estimator: the job has an entry point but no source dir")
            code_uri = self._upload_source(spec, source_dir)
        try:
            estimator = self._estimator(spec, code_uri)
        except (ValueError, TypeError, KeyError) as error:
            raise PermanentError(f"Cannot create estimator: {error}") from error
        try:
            estimator.fit(spec.inputs, wait=False, logs=False, job_name=spec.job_name)
        except ClientError as error:
            if error_code(error) == "ResourceInUse":
                raise JobAlreadyExists(spec.job_name, error_message(error)) from error
            if error_code(error) == "ValidationException" and _role_refused(error_message(error)):
                raise OutageError(
                    "aws", f"SageMaker cannot use SAGEMAKER_ROLE: {error_message(error)}", FIX_CREATE
                ) from error
            raise classify(error, "SageMaker returned error", own=FIX_CREATE) from error
        except BotoCoreError as error:
            raise classify(error, "SageMaker could not be reached", own=FIX_CREATE) from error
        except ValueError as error:
            raise PermanentError(f"Cannot create estimator: {error}") from error

    def _upload_source(self, spec: TrainingJobSpec, source_dir: Path) -> str:
        bucket, prefix = _split_output(spec.output_path)
        key = "/".join(part for part in (prefix, spec.job_name, "source", "sourcedir.tar.gz") if part)
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as archive:
            try:
                pack_source_dir(source_dir, archive)
            except OSError as error:  # past 16 MiB the archive spills to the executor's temp space
                raise temp_space_outage(error, "packing the benchmark's source") from error
            archive.seek(0)
            try:
                self._s3.put_object(Bucket=bucket, Key=key, Body=archive)
            except (ClientError, BotoCoreError) as error:
                raise classify(
                    error, "uploading the benchmark's source to S3 failed", own=FIX_OUTPUT_BUCKET
                ) from error
        return f"s3://{bucket}/{key}"

    def _estimator(self, spec: TrainingJobSpec, code_uri: str | None) -> Any:
        from sagemaker.estimator import Estimator

        kwargs: dict[str, Any] = {
            "image_uri": spec.image_uri,
            "role": spec.role_arn,
            "instance_count": spec.instance_count,
            "instance_type": spec.instance_type,
            "volume_size": spec.volume_size_gb,
            "output_path": spec.output_path,
            "code_location": spec.output_path,
            "sagemaker_session": self._sdk_session,
            "hyperparameters": spec.sdk_hyperparameters,
            "metric_definitions": spec.metric_definitions or None,
            "tags": [{"Key": key, "Value": value} for key, value in spec.tags.items()],
            "subnets": list(spec.subnets) or None,
            "security_group_ids": list(spec.security_group_ids) or None,
            "environment": spec.environment or None,
            # The debugger hook and profiler perturb what a benchmark measures; keep them out.
            "debugger_hook_config": False,
            "disable_profiler": True,
        }
        if spec.max_run_seconds is not None:
            kwargs["max_run"] = spec.max_run_seconds
        if spec.use_spot_instances:
            kwargs["use_spot_instances"] = True
            if spec.max_wait_seconds is not None:
                kwargs["max_wait"] = spec.max_wait_seconds
        if spec.checkpoint_s3_uri:
            kwargs["checkpoint_s3_uri"] = spec.checkpoint_s3_uri
        if spec.entry_point is not None:
            kwargs["entry_point"] = spec.entry_point
            kwargs["source_dir"] = code_uri

        if spec.framework is Framework.NONE:
            return Estimator(**kwargs)
        framework_kwargs: dict[str, Any] = {
            "framework_version": spec.framework_version,
            "py_version": spec.py_version,
        }
        if spec.distribution is not None:
            framework_kwargs["distribution"] = spec.distribution.as_sdk_distribution()
        if spec.framework is Framework.TENSORFLOW:
            from sagemaker.tensorflow.estimator import TensorFlow

            return TensorFlow(**kwargs, **framework_kwargs)
        if spec.framework is Framework.MXNET:
            from sagemaker.mxnet.estimator import MXNet

            return MXNet(**kwargs, **framework_kwargs)
        from sagemaker.pytorch.estimator import PyTorch

        return PyTorch(**kwargs, **framework_kwargs)

    def ping(self) -> None:
        """One cheap call (``ListTrainingJobs``, one result) for the readiness probe; raises the
        ``domain.errors`` kind of what failed (an ``OutageError`` carries the fix)."""
        try:
            self._client.list_training_jobs(MaxResults=1)
        except (ClientError, BotoCoreError) as error:
            raise classify(error, "listing training jobs", own=FIX_LOOKUPS) from error

    def describe(self, job_name: str) -> dict[str, Any]:
        """``DescribeTrainingJob``; :class:`JobNotFound` if SageMaker has no such job."""
        try:
            result: dict[str, Any] = self._client.describe_training_job(TrainingJobName=job_name)
            return result
        except ClientError as error:
            if _is_not_found(error):
                raise JobNotFound(job_name) from error
            raise classify(error, f"describing training job {job_name}", own=FIX_LOOKUPS) from error
        except BotoCoreError as error:
            raise classify(error, f"describing training job {job_name}", own=FIX_LOOKUPS) from error

    def tags(self, job_arn: str) -> dict[str, str]:
        try:
            pages = self._client.get_paginator("list_tags").paginate(ResourceArn=job_arn)
            return {tag["Key"]: tag["Value"] for page in pages for tag in page.get("Tags", [])}
        except (ClientError, BotoCoreError) as error:
            raise classify(error, f"listing tags of {job_arn}", own=FIX_LOOKUPS) from error

    def find_by_tag(self, key: str, value: str) -> list[str]:
        """Names of training jobs carrying tag ``key=value`` (SageMaker ``Search``), newest first."""
        expression = {"Filters": [{"Name": f"Tags.{key}", "Operator": "Equals", "Value": value}]}
        try:
            result = self._client.search(
                Resource="TrainingJob",
                SearchExpression=expression,
                SortBy="CreationTime",
                SortOrder="Descending",
                MaxResults=10,
            )
        except (ClientError, BotoCoreError) as error:
            raise classify(error, f"searching training jobs tagged {key}={value}", own=FIX_LOOKUPS) from error
        return [item["TrainingJob"]["TrainingJobName"] for item in result.get("Results", [])]

    def list_changed(self, since: datetime) -> list[dict[str, Any]]:
        """Summaries of every training job modified after ``since``, in pages of 100."""
        summaries: list[dict[str, Any]] = []
        token: str | None = None
        try:
            while True:
                kwargs: dict[str, Any] = {"LastModifiedTimeAfter": since, "MaxResults": 100}
                if token:
                    kwargs["NextToken"] = token
                page = self._client.list_training_jobs(**kwargs)
                summaries.extend(page.get("TrainingJobSummaries", []))
                token = page.get("NextToken")
                if not token:
                    return summaries
        except (ClientError, BotoCoreError) as error:
            raise classify(error, "listing training jobs", own=FIX_LOOKUPS) from error

    def stop(self, job_name: str) -> None:
        try:
            self._client.stop_training_job(TrainingJobName=job_name)
        except ClientError as error:
            if _is_not_found(error):
                raise JobNotFound(job_name) from error
            raise classify(error, f"stopping training job {job_name}", own=FIX_LOOKUPS) from error
        except BotoCoreError as error:
            raise classify(error, f"stopping training job {job_name}", own=FIX_LOOKUPS) from error


def _role_refused(message: str) -> bool:
    """SageMaker's ValidationException when it cannot assume the job's role (the executor's set-up)."""
    lowered = message.lower()
    return "assume role" in lowered or "not authorized to assume" in lowered


def _is_not_found(error: ClientError) -> bool:
    message = error_message(error).lower()
    return error_code(error) in ("ResourceNotFound", "ValidationException") and (
        "not found" in message or "could not find" in message
    )


def _split_output(output_path: str) -> tuple[str, str]:
    bucket, _, prefix = output_path.removeprefix("s3://").partition("/")
    return bucket, prefix.strip("/")


def pack_source_dir(source_dir: Path, out: IO[bytes]) -> None:
    """``source_dir`` as a gzip'd tar, entries relative to it, sorted, with fixed times and owners."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.mtime = 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for path in sorted(source_dir.rglob("*")):
            archive.add(
                str(path), arcname=str(path.relative_to(source_dir)), recursive=False, filter=normalise
            )
