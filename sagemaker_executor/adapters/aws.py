"""boto3 sessions and the one place that maps botocore errors to the executor's error kinds.

Used by the SageMaker and S3 wrappers. Retries of throttling, 5xx and connection errors are botocore's
"standard" retry mode (capped exponential backoff with jitter), sized by ``AWS_RETRY_ATTEMPTS``; what
is still failing after that surfaces as :class:`TransientError`.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from sagemaker_executor.domain.errors import CapacityError, PermanentError, TransientError

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


def make_session(region: str) -> boto3.Session:
    """A boto3 session for ``region``; credentials and ``AWS_ENDPOINT_URL`` come from the environment."""
    return boto3.Session(region_name=region)


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
    return isinstance(error, EndpointConnectionError | ConnectionClosedError | ReadTimeoutError)


def classify(error: BaseException, what: str) -> Exception:
    """The executor error for a botocore failure; ``what`` names the operation for the user."""
    if isinstance(error, ClientError) and error_code(error) == "ResourceLimitExceeded":
        return CapacityError(f"{what}: {_describe(error)}")
    if is_transient(error):
        return TransientError(f"{what}: {_describe(error)}")
    return PermanentError(f"{what}: {_describe(error)}")


def _describe(error: BaseException) -> str:
    if isinstance(error, ClientError):
        return f"{error_code(error)}: {error_message(error)}"
    if isinstance(error, BotoCoreError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def client(session: boto3.Session, service: str, retry_attempts: int) -> Any:
    return session.client(service, config=client_config(retry_attempts))  # type: ignore[call-overload]
