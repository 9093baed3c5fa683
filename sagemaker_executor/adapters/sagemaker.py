"""The SageMaker wrapper: starts a training job for a :class:`TrainingJobSpec` (the source upload and one
``CreateTrainingJob``), plus the lookups cancel and redelivery need (describe, tags, search by tag, stop).

Called by ``service.submission`` and ``service.commands``; ``app`` builds it. No business decisions are
made here; every botocore error leaves as one of ``domain.errors``' kinds (see ``adapters.aws.classify``).

The request is built by ``domain.request.create_training_job_request`` and sent with boto3 (the default,
``REQUEST_BUILDER=boto3``), or by an SDK 2.x Estimator (``REQUEST_BUILDER=sdk``, the ``sdk`` extra,
``adapters.sagemaker_sdk``, imported only then); both send the same request. Either way each
``CreateTrainingJob`` attempt first takes a token from ``adapters.pacing`` when a rate is set
(``SAGEMAKER_CREATE_RATE``).
"""

from __future__ import annotations

import gzip
import logging
import tarfile
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sagemaker_executor.adapters.aws import classify, client, error_code, error_message
from sagemaker_executor.adapters.pacing import TokenBucket
from sagemaker_executor.adapters.tempspace import temp_space_outage
from sagemaker_executor.domain.errors import JobAlreadyExists, JobNotFound, OutageError, PermanentError
from sagemaker_executor.domain.request import create_training_job_request, source_location
from sagemaker_executor.domain.translation import TrainingJobSpec

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import SearchExpressionTypeDef

RequestBuilderName = Literal["boto3", "sdk"]
REQUEST_BUILDERS: tuple[RequestBuilderName, ...] = ("boto3", "sdk")
UPLOAD_THREADS = 8  # concurrent PutObject calls for one job's code channel (boto3 clients are thread-safe)
# botocore's event for each HTTP attempt of CreateTrainingJob (so retries are paced too).
CREATE_ATTEMPT_EVENT = "before-send.sagemaker.CreateTrainingJob"

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
    """Creates, finds and stops training jobs. Safe to call from several threads at once.

    ``request_builder``: ``"boto3"`` (:func:`create_training_job_request`) or ``"sdk"`` (an SDK
    Estimator; :class:`PermanentError` if the SDK is not installed). ``create_rate``: the most
    ``CreateTrainingJob`` attempts per second, ``None`` for no pacing; ``create_pacer`` replaces the
    bucket it would build (tests inject a clock that way).
    """

    def __init__(
        self,
        session: boto3.Session,
        *,
        default_bucket: str,
        retry_attempts: int,
        request_builder: RequestBuilderName = "boto3",
        create_rate: float | None = None,
        create_pacer: TokenBucket | None = None,
    ) -> None:
        if request_builder not in REQUEST_BUILDERS:
            raise ValueError(f"request_builder must be one of {REQUEST_BUILDERS}, got {request_builder!r}")
        self._client = client(session, "sagemaker", retry_attempts)  # boto3 clients are thread-safe
        self._s3 = client(session, "s3", retry_attempts)
        self._region: str = self._client.meta.region_name
        self._start: Callable[[TrainingJobSpec, str | None], None] = self._start_with_boto3
        if request_builder == "sdk":
            from sagemaker_executor.adapters.sagemaker_sdk import SdkEstimatorPath

            self._start = SdkEstimatorPath(session, self._client, default_bucket=default_bucket).start
        self.create_pacer = create_pacer if create_pacer is not None else _bucket(create_rate)
        if self.create_pacer is not None:
            self._client.meta.events.register(CREATE_ATTEMPT_EVENT, self._pace)

    @property
    def boto_client(self) -> SageMakerClient:
        return self._client

    def create(self, spec: TrainingJobSpec, source_dir: Path | None) -> None:
        """Start the job; :class:`JobAlreadyExists` if the name is taken (maybe by our earlier attempt).

        The source dir is uploaded here (``domain.request.source_location``) on a shared client (a
        fraction of the SDK's upload path: a boto3 resource class and an s3transfer pool per call). In
        script mode it is packed to ``<output>/<job>/source/sourcedir.tar.gz`` -- the key the SDK would
        use -- in one ``PutObject``; the archive is byte-for-byte reproducible. In command mode each
        file is one ``PutObject`` under ``<output>/<job>/source/<code channel>/``. Either way a
        redelivered submission rewrites the same objects. What the SDK would refuse to build is a
        :class:`PermanentError` (``domain.request.RequestRefused``).
        """
        code_uri = None
        if spec.has_source:
            if source_dir is None:
                raise PermanentError("Cannot create estimator: the job needs a source dir but none was built")
            if spec.code_channel is not None:
                code_uri = self._upload_files(spec, source_dir)
            else:
                code_uri = self._upload_source(spec, source_dir)
        try:
            self._start(spec, code_uri)
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

    def _pace(self, **_: Any) -> None:
        """botocore ``before-send`` handler: waits for a token; returns None so the request goes out."""
        if self.create_pacer is not None:
            self.create_pacer.acquire()

    def _start_with_boto3(self, spec: TrainingJobSpec, code_uri: str | None) -> None:
        self._client.create_training_job(**create_training_job_request(spec, code_uri, self._region))

    def _upload_source(self, spec: TrainingJobSpec, source_dir: Path) -> str:
        bucket, key = source_location(spec)
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024 * 1024) as archive:
            try:
                pack_source_dir(source_dir, archive)
            except OSError as error:  # past 16 MiB the archive spills to the executor's temp space
                raise temp_space_outage(error, "packing the benchmark's source") from error
            archive.seek(0)
            self._put_source(bucket, key, archive)
        return f"s3://{bucket}/{key}"

    def _upload_files(self, spec: TrainingJobSpec, source_dir: Path) -> str:
        """Each regular file under ``source_dir`` as ``<prefix><relative path>``, :data:`UPLOAD_THREADS`
        at a time (a tarball may hold thousands of files); S3 keeps no modes or empty directories (the
        bootstrap sets the modes the Kubernetes executor leaves). The first failure is raised."""
        bucket, prefix = source_location(spec)
        files = [
            (path, prefix + path.relative_to(source_dir).as_posix())
            for path in sorted(source_dir.rglob("*"))
            if not path.is_symlink() and path.is_file()  # build_source_dir writes no links; dirs are implied
        ]

        def put(item: tuple[Path, str]) -> None:
            path, key = item
            try:
                with path.open("rb") as body:
                    self._put_source(bucket, key, body)
            except OSError as error:
                raise temp_space_outage(error, "reading the benchmark's source") from error

        with ThreadPoolExecutor(max_workers=max(1, min(UPLOAD_THREADS, len(files)))) as pool:
            list(pool.map(put, files))
        return f"s3://{bucket}/{prefix}"

    def _put_source(self, bucket: str, key: str, body: IO[bytes]) -> None:
        """One ``PutObject`` of the job's sources into the executor's own output bucket."""
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body)
        except (ClientError, BotoCoreError) as error:
            raise classify(
                error, "uploading the benchmark's source to S3 failed", own=FIX_OUTPUT_BUCKET
            ) from error

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
            # The stubs type the answer as a TypedDict, which mypy never takes for the plain
            # ``dict[str, Any]`` the service's protocols read: hand on a (shallow) dict of it.
            return dict(self._client.describe_training_job(TrainingJobName=job_name))
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
        expression: SearchExpressionTypeDef = {
            "Filters": [{"Name": f"Tags.{key}", "Operator": "Equals", "Value": value}]
        }
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
        """Summaries of every training job modified after ``since``, in pages of 100 (boto3's paginator)."""
        pages = self._client.get_paginator("list_training_jobs").paginate(
            LastModifiedTimeAfter=since, PaginationConfig={"PageSize": 100}
        )
        try:
            return [dict(summary) for page in pages for summary in page.get("TrainingJobSummaries", [])]
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


def _bucket(rate: float | None) -> TokenBucket | None:
    return TokenBucket(rate) if rate else None


def _role_refused(message: str) -> bool:
    """SageMaker's ValidationException when it cannot assume the job's role (the executor's set-up)."""
    lowered = message.lower()
    return "assume role" in lowered or "not authorized to assume" in lowered


def _is_not_found(error: ClientError) -> bool:
    message = error_message(error).lower()
    return error_code(error) in ("ResourceNotFound", "ValidationException") and (
        "not found" in message or "could not find" in message
    )


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
