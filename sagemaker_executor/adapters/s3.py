"""The S3 wrapper: fetches a benchmark's script tarballs (``payload.scripts[].dst``) with a size limit.

Called by ``service.submission`` while it assembles a job's source directory. Objects are streamed
into a temporary file, never held in memory whole, and refused past ``max_bytes``. That file failing
(no space in the system temp dir) is the executor's own ``OutageError("disk")``, not the user's.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from typing import IO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sagemaker_executor.adapters.aws import classify, client, error_code
from sagemaker_executor.adapters.tempspace import temp_space_outage
from sagemaker_executor.domain.errors import PermanentError
from sagemaker_executor.domain.s3location import parse_s3_uri

_CHUNK = 1024 * 1024
FIX_SCRIPTS_BUCKET = (
    "the scripts bucket {bucket} must exist and the executor's identity needs s3:GetObject on it"
)


def _script_object(uri: str) -> tuple[str, str]:
    try:
        location = parse_s3_uri(uri, object_key=True)
    except ValueError as error:
        raise PermanentError(f"benchmark script {uri!r} {error}") from None
    return location.bucket, location.key


class ScriptStore:
    def __init__(self, session: boto3.Session, retry_attempts: int, own_buckets: Iterable[str] = ()) -> None:
        """``own_buckets``: the executor's own (the scripts exchange): access denied or a missing bucket
        there is an outage, not the benchmark's fault."""
        self._client = client(session, "s3", retry_attempts)
        self._own_buckets = frozenset(b for b in own_buckets if b)

    def fetch(self, uri: str, max_bytes: int) -> IO[bytes]:
        """The object at ``uri`` in a temporary file positioned at 0; the caller closes it.

        Raises :class:`PermanentError` for a missing object (or an unreadable one outside the
        executor's own buckets), ``OutageError`` when the executor's own access fails, and the other
        kinds of ``adapters.aws.classify``.
        """
        bucket, key = _script_object(uri)
        own = FIX_SCRIPTS_BUCKET.format(bucket=bucket) if bucket in self._own_buckets else None
        try:
            response = self._client.get_object(Bucket=bucket, Key=key)
        except ClientError as error:
            code = error_code(error)
            if code in ("NoSuchKey", "404") or (
                own is None and code in ("NoSuchBucket", "AccessDenied", "403")
            ):
                raise PermanentError(f"cannot read benchmark script {uri}: {code}") from error
            raise classify(error, f"reading benchmark script {uri}", own=own) from error
        except BotoCoreError as error:
            raise classify(error, f"reading benchmark script {uri}", own=own) from error
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
            raise classify(error, f"reading benchmark script {uri}", own=own) from error
        except BaseException:
            spool.close()
            raise
