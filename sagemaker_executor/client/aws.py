"""The client's AWS identity: the user's own, checked before anything is asked, and every AWS failure
as one ``ClientError`` (exit code ``AWS``) that says what to fix at a shell.

Used by ``client.upload`` (``submit --script``) and ``client.joblogs`` (``logs``). Failures are
classified by the service's one rule (``adapters.aws.classify``); only the fix for missing or refused
credentials is reworded, since the service's speaks of the pod's identity.
"""

from __future__ import annotations

import boto3
from botocore.exceptions import BotoCoreError

from sagemaker_executor.adapters import aws
from sagemaker_executor.adapters.aws import make_session
from sagemaker_executor.client.errors import ClientError, ExitCode

FIX_CREDENTIALS = (
    "give this shell an AWS identity: AWS_PROFILE (see `aws configure`), or AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY"
)


def user_session(region: str, what: str) -> boto3.Session:
    """A boto3 session in ``region`` whose credentials were found; ``what`` ("to upload --script to
    s3://...") completes the message when there are none (exit code ``AWS``)."""
    session = make_session(region)
    try:
        credentials = session.get_credentials()
    except BotoCoreError as error:
        raise ClientError(
            ExitCode.AWS, f"cannot load AWS credentials {what}: {error}: {FIX_CREDENTIALS}"
        ) from error
    if credentials is None:
        raise ClientError(ExitCode.AWS, f"no AWS credentials {what}: {FIX_CREDENTIALS}")
    return session


def aws_failure(error: Exception) -> ClientError:
    """``error`` (a ``domain.errors`` kind from ``classify``) as the client's one-line AWS error, with
    its fix; for a person at a shell where the service's fix speaks of the pod's identity."""
    fix = getattr(error, "fix", "")
    if fix == aws.FIX_CREDENTIALS:
        fix = FIX_CREDENTIALS
    return ClientError(ExitCode.AWS, f"{error}: {fix}" if fix else str(error))
