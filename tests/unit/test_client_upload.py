"""The client's script upload names the fix for each AWS failure, with the service's one classification."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError as BotoClientError
from botocore.exceptions import NoCredentialsError

from sagemaker_executor.client import upload
from sagemaker_executor.client.errors import ClientError, ExitCode
from sagemaker_executor.client.upload import FIX_CREDENTIALS, upload_scripts


def failing_s3(error: Exception) -> Any:
    def put_object(**_: Any) -> None:
        raise error

    return SimpleNamespace(put_object=put_object)


def refused(code: str) -> BotoClientError:
    return BotoClientError({"Error": {"Code": code, "Message": code}}, "PutObject")


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (refused("NoSuchBucket"), "SCRIPTS_EXCHANGE_S3_BUCKET_NAME"),
        (refused("AccessDenied"), "s3:PutObject on arn:aws:s3:::bucket-x/anubis0/*"),
        (refused("ExpiredToken"), FIX_CREDENTIALS),
        (NoCredentialsError(), FIX_CREDENTIALS),
    ],
    ids=["no-bucket", "denied", "expired", "no-credentials"],
)
def test_each_upload_failure_is_one_aws_error_naming_the_fix(
    monkeypatch: pytest.MonkeyPatch, error: Exception, says: str
) -> None:
    monkeypatch.setattr(upload, "client", lambda session, service, attempts: failing_s3(error))
    settings = SimpleNamespace(scripts_exchange_s3_bucket_name="bucket-x")
    with pytest.raises(ClientError) as caught:
        upload_scripts(object(), settings, "abc.tar", b"data")  # type: ignore[arg-type]
    assert caught.value.code == ExitCode.AWS
    assert "s3://bucket-x/anubis0/abc.tar" in str(caught.value) and says in str(caught.value)
