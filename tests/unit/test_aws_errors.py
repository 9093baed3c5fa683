"""Which botocore failures are the executor's outage, which wait, and which are the user's ERROR."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from sagemaker_executor.adapters.aws import classify, quota_can_never_fit
from sagemaker_executor.domain.errors import CapacityError, OutageError, PermanentError, TransientError

# SageMaker's own wording of ResourceLimitExceeded.
QUOTA = (
    "The account-level service limit 'ml.p3.2xlarge for training job usage' is {limit} Instances, with "
    "current utilization of {used} Instances and a request delta of {delta} Instances. Please use AWS "
    "Service Quotas to request an increase for this quota."
)


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            # Every key botocore fills in (its stubs require them all); only the status is read.
            "ResponseMetadata": {
                "HTTPStatusCode": status,
                "RequestId": "",
                "HostId": "",
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        },
        "CreateTrainingJob",
    )


@pytest.mark.parametrize(
    "error",
    [
        NoCredentialsError(),
        client_error("ExpiredTokenException", "The security token included in the request is expired"),
        client_error("InvalidClientTokenId", "The security token included in the request is invalid."),
        client_error("UnrecognizedClientException", "The security token included in the request is invalid"),
        EndpointConnectionError(endpoint_url="https://api.sagemaker.us-east-1.amazonaws.com/"),
    ],
    ids=["no-credentials", "expired", "invalid-token", "unrecognized-client", "unreachable"],
)
def test_credentials_and_reachability_are_outages_wherever_they_happen(error: Exception) -> None:
    for own in (None, "grant it"):
        kind = classify(error, "creating the job", own=own)
        assert isinstance(kind, OutageError) and kind.dependency == "aws" and kind.fix


@pytest.mark.parametrize("code", ["AccessDenied", "AccessDeniedException", "NoSuchBucket"])
def test_access_denied_is_an_outage_on_own_resources_and_the_users_error_elsewhere(code: str) -> None:
    own = classify(client_error(code, "denied"), "uploading the source", own="grant s3:PutObject")
    assert isinstance(own, OutageError) and own.fix == "grant s3:PutObject"
    theirs = classify(client_error(code, "denied"), "reading s3://their-bucket/x.tar")
    assert isinstance(theirs, PermanentError) and not isinstance(theirs, TransientError)


def test_a_quota_below_the_request_can_never_clear_and_is_an_error_quoting_sagemaker() -> None:
    message = QUOTA.format(limit=0, used=0, delta=1)
    kind = classify(client_error("ResourceLimitExceeded", message), "SageMaker returned error")
    assert isinstance(kind, PermanentError) and not isinstance(kind, TransientError)
    assert "is 0 Instances" in str(kind) and "quota increase" in str(kind)


@pytest.mark.parametrize(("limit", "used", "delta"), [(4, 4, 1), (8, 7, 2), (1, 1, 1)])
def test_a_quota_that_is_only_used_up_waits_for_capacity(limit: int, used: int, delta: int) -> None:
    message = QUOTA.format(limit=limit, used=used, delta=delta)
    assert not quota_can_never_fit(message)
    assert isinstance(classify(client_error("ResourceLimitExceeded", message), "x"), CapacityError)


def test_a_quota_message_in_another_shape_waits_rather_than_guessing() -> None:
    kind = classify(client_error("ResourceLimitExceeded", "limit reached"), "x")
    assert isinstance(kind, CapacityError)


@pytest.mark.parametrize(("code", "status"), [("ThrottlingException", 400), ("InternalFailure", 500)])
def test_throttling_and_5xx_are_transient_not_outages(code: str, status: int) -> None:
    kind = classify(client_error(code, "slow down", status), "x", own="grant it")
    assert isinstance(kind, TransientError) and not isinstance(kind, OutageError | CapacityError)


def test_other_client_errors_are_the_users() -> None:
    kind = classify(client_error("ValidationException", "1 validation error detected"), "x", own="grant")
    assert isinstance(kind, PermanentError)
