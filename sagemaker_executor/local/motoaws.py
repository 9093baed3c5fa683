"""The local AWS as the job runner sees it: moto's in-process S3 and CloudWatch Logs backends.

Owns the runner's only contact with the rest of the local AWS (``local.runningjob`` calls it):
listing and reading the objects under an S3 prefix (a training job's input channels), writing an
object (its ``model.tar.gz``), and appending events to a CloudWatch Logs stream (its log). It calls
moto's backend objects directly, in the process that holds them (``moto.mock_aws()`` or the local
SageMaker server), so no request leaves the process, no credentials are involved and none of these
calls is recorded as a call of the executor's own (``tests/iam_policy.py``).

Backends are looked up on every call: moto's reset (the server's ``POST reset``) replaces them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from moto.logs.exceptions import ResourceAlreadyExistsException
from moto.logs.models import logs_backends
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

_LOGS_LOCK = threading.Lock()  # moto's logs backend is not thread-safe; jobs log from many threads


class StorageError(Exception):
    """An S3 object or bucket the job needs is not there."""


@dataclass(frozen=True)
class S3Object:
    key: str
    body: bytes


class MotoAws:
    """S3 and CloudWatch Logs of one moto account and region."""

    def __init__(self, account_id: str, region: str) -> None:
        self.account_id = account_id
        self.region = region

    def _s3(self) -> Any:
        return s3_backends[self.account_id][get_partition(self.region)]

    def objects_under(self, bucket: str, prefix: str) -> Iterator[S3Object]:
        """Every object whose key starts with ``prefix`` (a plain string match, as S3's ``Prefix``),
        in key order; ``StorageError`` when the bucket does not exist."""
        backend = self._s3()
        try:
            found = backend.get_bucket(bucket)
        except MissingBucket:
            raise StorageError(f"bucket {bucket} does not exist") from None
        keys = sorted(name for name in list(found.keys.keys()) if name.startswith(prefix))
        for key in keys:
            value = backend.get_object(bucket, key)
            if value is not None:
                yield S3Object(key, value.value)

    def put_object(self, bucket: str, key: str, body: bytes) -> None:
        backend = self._s3()
        try:
            backend.put_object(bucket, key, body)
        except MissingBucket:
            raise StorageError(f"bucket {bucket} does not exist") from None

    def create_log_stream(self, group: str, stream: str) -> None:
        """Creates ``stream`` in ``group``, and the group if it does not exist yet."""
        with _LOGS_LOCK:
            logs = logs_backends[self.account_id][self.region]
            if group not in logs.groups:
                with contextlib.suppress(ResourceAlreadyExistsException):
                    logs.create_log_group(group, tags={})
            logs.create_log_stream(group, stream)

    def put_log_event(self, group: str, stream: str, timestamp_ms: int, message: str) -> None:
        with _LOGS_LOCK:
            logs = logs_backends[self.account_id][self.region]
            logs.put_log_events(group, stream, [{"timestamp": timestamp_ms, "message": message}])
