"""``submit --script``: the tarball to ``s3://<scripts bucket>/anubis0/<sha1>.tar``, as the BFF stores it.

Credentials are looked up before anything is sent (:func:`scripts_session`), so a machine with no AWS
identity hears so at once. Every AWS failure is a ``ClientError`` with exit code ``AWS`` that says
what to fix; the user's own identity uploads, not the executor's.
"""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError

from sagemaker_executor.adapters.aws import classify, client
from sagemaker_executor.client.aws import FIX_CREDENTIALS, aws_failure, user_session
from sagemaker_executor.client.errors import ClientError, ExitCode
from sagemaker_executor.config import Settings
from sagemaker_executor.domain.errors import ExecutorError

__all__ = ["FIX_CREDENTIALS", "PREFIX", "scripts_session", "upload_scripts"]

PREFIX = "anubis0"
UPLOAD_RETRY_ATTEMPTS = 3


def scripts_session(settings: Settings) -> boto3.Session:
    """A boto3 session with credentials for the scripts bucket.

    Raises ``USAGE`` without a region or a bucket, ``AWS`` without credentials.
    """
    bucket = settings.scripts_exchange_s3_bucket_name
    if not bucket:
        raise ClientError(
            ExitCode.USAGE,
            "submit --script needs the bucket the executor reads scripts from: set "
            "SCRIPTS_EXCHANGE_S3_BUCKET_NAME (--scripts-exchange-s3-bucket-name) or SAGEMAKER_OUTPUT_BUCKET",
        )
    if not settings.aws_region:
        raise ClientError(
            ExitCode.USAGE, "submit --script needs AWS_DEFAULT_REGION: the region of the scripts bucket"
        )
    return user_session(settings.aws_region, f"to upload --script to s3://{bucket}/{PREFIX}/")


def upload_scripts(session: boto3.Session, settings: Settings, name: str, data: bytes) -> str:
    """Put ``data`` at ``s3://<bucket>/anubis0/<name>``; returns that URI. Raises ``AWS`` on failure,
    with the fix that ``adapters.aws.classify`` (the service's one rule) names."""
    bucket = settings.scripts_exchange_s3_bucket_name
    uri = f"s3://{bucket}/{PREFIX}/{name}"
    own = (
        "SCRIPTS_EXCHANGE_S3_BUCKET_NAME (--scripts-exchange-s3-bucket-name) must name an existing bucket "
        f"and your AWS identity needs s3:PutObject on arn:aws:s3:::{bucket}/{PREFIX}/*"
    )
    try:
        s3 = client(session, "s3", UPLOAD_RETRY_ATTEMPTS)
        s3.put_object(Bucket=bucket, Key=f"{PREFIX}/{name}", Body=data)
    except ExecutorError as error:  # the credential chain failed while the client was built
        raise aws_failure(error) from error
    except (BotoClientError, BotoCoreError) as error:
        kind = classify(error, f"cannot upload --script to {uri}", own=own)
        raise aws_failure(kind) from error
    return uri
