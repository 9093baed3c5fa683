"""The S3 wrapper: fetches a benchmark's script tarballs (``payload.scripts[].dst``) with a size limit.

Called by ``service.submission`` while it assembles a job's source directory. Objects are streamed
into a temporary file, never held in memory whole, and refused past ``max_bytes``. That file failing
(no space in the system temp dir) is the executor's own ``OutageError("disk")``, not the user's.
"""

from __future__ import annotations

import re
import tempfile
from typing import IO, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sagemaker_executor.adapters.aws import classify, client, error_code
from sagemaker_executor.adapters.sourcedir import temp_space_outage
from sagemaker_executor.domain.errors import PermanentError

_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])/(?P<key>.+)$")
_CHUNK = 1024 * 1024


def split_s3_uri(uri: str) -> tuple[str, str]:
    match = _S3_URI.match(uri)
    if not match:
        raise PermanentError(f"not an S3 object URI: {uri!r}")
    return match["bucket"], match["key"]


class ScriptStore:
    def __init__(self, session: boto3.Session, retry_attempts: int) -> None:
        self._client: Any = client(session, "s3", retry_attempts)

    def fetch(self, uri: str, max_bytes: int) -> IO[bytes]:
        """The object at ``uri`` in a temporary file positioned at 0; the caller closes it."""
        bucket, key = split_s3_uri(uri)
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error_code(error) in ("NoSuchKey", "NoSuchBucket", "404", "AccessDenied", "403"):
                raise PermanentError(f"cannot read benchmark script {uri}: {error_code(error)}") from error
            raise classify(error, f"reading benchmark script {uri}") from error
        except BotoCoreError as error:
            raise classify(error, f"reading benchmark script {uri}") from error
        if int(response.get("ContentLength") or 0) > max_bytes:
            response["Body"].close()
            raise PermanentError(f"benchmark script {uri} is larger than the limit of {max_bytes} bytes")
        try:
            spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 -- handed to the caller, who closes it
        except OSError as error:
            response["Body"].close()
            raise temp_space_outage(error, f"spooling benchmark script {uri}") from error
        try:
            written = 0
            for chunk in response["Body"].iter_chunks(_CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise PermanentError(
                        f"benchmark script {uri} is larger than the limit of {max_bytes} bytes"
                    )
                try:
                    spool.write(chunk)
                except OSError as error:
                    raise temp_space_outage(error, f"spooling benchmark script {uri}") from error
            spool.seek(0)
            return spool
        except (ClientError, BotoCoreError) as error:
            spool.close()
            raise classify(error, f"reading benchmark script {uri}") from error
        except BaseException:
            spool.close()
            raise
