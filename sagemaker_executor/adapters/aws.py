"""boto3 sessions and the one place that maps botocore errors to the executor's error kinds.

Used by the SageMaker and S3 wrappers. Retries of throttling, 5xx and connection errors are botocore's
"standard" retry mode (capped exponential backoff with jitter), sized by ``AWS_RETRY_ATTEMPTS``; what
is still failing after that surfaces as one of ``domain.errors``' kinds, decided by :func:`classify`:

* the executor's own identity or set-up fails -- credentials missing, expired or refused, AWS
  unreachable, and access denied or a missing bucket *on the executor's own resources* (its output
  bucket, the SageMaker API itself, its role) -- :class:`OutageError`: never the user's ERROR;
* throttling and 5xx -- :class:`TransientError`; a quota that is used up -- :class:`CapacityError`;
* a quota whose limit is below what the job asks for (it can never clear), and everything else --
  :class:`PermanentError`, shown to the user.

Every client is built by :func:`client` (and every session by :func:`make_session`), so this is also
where the test suite listens to the AWS actions the service performs: with ``SM_EXECUTOR_RECORD_AWS_CALLS``
naming a file, each call appends one line to it, which ``tests/iam_policy.py`` compares with
``deploy/iam-policy.json``. Unset (always, outside the tests), nothing is registered.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any, Literal, overload

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoAuthTokenError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
    SSOError,
    TokenRetrievalError,
    UnknownCredentialError,
)

from sagemaker_executor.domain.errors import CapacityError, OutageError, PermanentError, TransientError

if TYPE_CHECKING:
    # The boto3-stubs service packages (the ``test`` extra): types only, never imported at run time.
    from botocore.client import BaseClient
    from botocore.hooks import BaseEventHooks
    from botocore.model import OperationModel
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sts import STSClient

# The AWS services this package talks to: :func:`client` builds only these, each typed by its stubs.
AwsService = Literal["sagemaker", "s3", "cloudwatch", "logs", "iam", "sts"]

# Error codes after which a later attempt may succeed (AWS's own lists, plus quota waits).
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalFailure",
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)


# Codes by which AWS refuses the caller's credentials themselves (STS, IAM, S3 and the JSON APIs).
CREDENTIAL_CODES = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "InvalidToken",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
        "RequestExpired",
        "TokenRefreshRequired",
    }
)
# Codes that deny a permission or name a missing bucket: an outage on the executor's own resources.
ACCESS_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"})
MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})

_CREDENTIAL_ERRORS = (
    NoCredentialsError,
    PartialCredentialsError,
    CredentialRetrievalError,
    UnknownCredentialError,
    NoAuthTokenError,
    TokenRetrievalError,
    SSOError,
)
_UNREACHABLE_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, ReadTimeoutError)

FIX_CREDENTIALS = (
    "give the executor an AWS identity: the pod's service account (IRSA) or kube2iam role, or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); the service resumes on its own"
)
FIX_UNREACHABLE = "check the pod's network path to AWS (VPC endpoints, proxy, DNS) and AWS_ENDPOINT_URL"

# SageMaker's ResourceLimitExceeded text: "... is 0 Instances, with current utilization of 0 Instances
# and a request delta of 1 Instances. ..."
_QUOTA = re.compile(
    r"is (?P<limit>\d+) \w+, with current utilization of (?P<used>\d+) \w+ "
    r"and a request delta of (?P<delta>\d+)"
)


# Names a file to append "<service>:<Operation> <calling module>" to for every AWS call (test-only).
RECORD_CALLS_ENV = "SM_EXECUTOR_RECORD_AWS_CALLS"
# botocore event names' service part → IAM prefix, where they differ ("CloudWatch Logs" → logs:...).
_IAM_PREFIXES = {"cloudwatch-logs": "logs"}
_RECORDER_ID = "sm-executor-record-aws-calls"


def make_session(region: str) -> boto3.Session:
    """A boto3 session for ``region``; credentials and ``AWS_ENDPOINT_URL`` come from the environment."""
    session = boto3.Session(region_name=region)
    # On the session too, so that clients the SageMaker SDK builds from it are heard as well.
    _record_calls(session.events)
    return session


def client_config(retry_attempts: int, call_timeout_s: float = 60.0) -> Config:
    """Standard retries (capped exponential backoff with jitter) and a bound on each call's wait."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": retry_attempts},
        connect_timeout=min(10.0, call_timeout_s),
        read_timeout=call_timeout_s,
        max_pool_connections=64,
    )


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Message", "")) or str(error)


def is_transient(error: BaseException) -> bool:
    if isinstance(error, ClientError):
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        return error_code(error) in TRANSIENT_CODES or status >= 500
    return isinstance(error, _UNREACHABLE_ERRORS)


def quota_can_never_fit(message: str) -> bool:
    """True when a ``ResourceLimitExceeded`` message says the limit itself is below the request.

    Waiting cannot help then: capacity frees up to the limit, never past it.
    """
    match = _QUOTA.search(message)
    return match is not None and int(match["limit"]) < int(match["delta"])


def classify(error: BaseException, what: str, *, own: str | None = None) -> Exception:
    """The executor error for a botocore failure; ``what`` names the operation for the user.

    ``own``: the call is on the executor's own resources (its output bucket, the SageMaker API with its
    role); access denied or a missing bucket is then an :class:`OutageError` whose fix is ``own``.
    Without it (a benchmark's own script URI) they are the benchmark's :class:`PermanentError`.
    """
    described = f"{what}: {_describe(error)}"
    if isinstance(error, _CREDENTIAL_ERRORS):
        return OutageError("aws", f"AWS credentials: {described}", FIX_CREDENTIALS)
    if isinstance(error, _UNREACHABLE_ERRORS):
        return OutageError("aws", f"AWS unreachable: {described}", FIX_UNREACHABLE)
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in CREDENTIAL_CODES:
            return OutageError("aws", f"AWS credentials refused: {described}", FIX_CREDENTIALS)
        if own is not None and code in ACCESS_CODES | MISSING_BUCKET_CODES:
            return OutageError("aws", f"the executor's own AWS set-up: {described}", own)
        if code == "ResourceLimitExceeded":
            if quota_can_never_fit(error_message(error)):
                return PermanentError(
                    f"Benchmark creation failed. {described} The account's quota is below what the job "
                    "asks for, so waiting cannot help: ask for a quota increase or a smaller job."
                )
            return CapacityError(described)
    if is_transient(error):
        return TransientError(described)
    return PermanentError(described)


def _describe(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return f"{error_code(error)}: {error_message(error)}"
    if isinstance(error, BotoCoreError):
        return str(error)
    return f"{type(error).__name__}: {error}"


@overload
def client(
    session: boto3.Session, service: Literal["sagemaker"], retry_attempts: int, call_timeout_s: float = ...
) -> SageMakerClient: ...
@overload
def client(
    session: boto3.Session, service: Literal["s3"], retry_attempts: int, call_timeout_s: float = ...
) -> S3Client: ...
@overload
def client(
    session: boto3.Session, service: Literal["cloudwatch"], retry_attempts: int, call_timeout_s: float = ...
) -> CloudWatchClient: ...
@overload
def client(
    session: boto3.Session, service: Literal["logs"], retry_attempts: int, call_timeout_s: float = ...
) -> CloudWatchLogsClient: ...
@overload
def client(
    session: boto3.Session, service: Literal["iam"], retry_attempts: int, call_timeout_s: float = ...
) -> IAMClient: ...
@overload
def client(
    session: boto3.Session, service: Literal["sts"], retry_attempts: int, call_timeout_s: float = ...
) -> STSClient: ...
def client(
    session: boto3.Session, service: AwsService, retry_attempts: int, call_timeout_s: float = 60.0
) -> BaseClient:
    """A client for ``service``; raises :class:`OutageError` when the credential chain itself fails
    (botocore resolves credentials here: a broken container or web-identity provider raises).
    ``call_timeout_s`` bounds each attempt's wait for an answer (:func:`client_config`)."""
    try:
        config = client_config(retry_attempts, call_timeout_s)
        built = session.client(service, config=config)
    except BotoCoreError as error:
        raise classify(error, f"creating the {service} client") from error
    _record_calls(built.meta.events)
    return built


def _record_calls(events: BaseEventHooks) -> None:
    """With ``SM_EXECUTOR_RECORD_AWS_CALLS`` set, append every call made through ``events`` to that file.

    The line names the IAM-style action (the event's service part is the hyphenated, lower-cased
    service id, which is the IAM prefix for the services used here but CloudWatch Logs: see
    :data:`_IAM_PREFIXES`) and the first module of this package on the
    stack, so the tests can tell the service's calls from the ``submit`` client's. Registered once per
    emitter (a client's emitter is copied from its session's, handlers included).
    """
    path = os.environ.get(RECORD_CALLS_ENV)
    if not path:
        return

    def record(event_name: str, model: OperationModel, **_: Any) -> None:
        service = event_name.split(".")[1]
        service = _IAM_PREFIXES.get(service, service)
        line = f"{service}:{model.name} {_calling_module()}\n".encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)  # one write on an O_APPEND file: lines from threads and processes never mix
        finally:
            os.close(fd)

    events.register("before-call", record, unique_id=_RECORDER_ID)


def _calling_module() -> str:
    """The innermost module of this package, other than this one, that led to the current call."""
    frame = sys._getframe(1)
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if name.startswith("sagemaker_executor.") and name != __name__:
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return "-"
