"""Fault injection for the local SageMaker endpoint: latency and retriable errors on AWS calls.

``local.server`` asks a :class:`FaultInjector` before each AWS call (never a control or ``/moto-api``
call) how long to wait and whether to answer with an error, which :func:`aws_error` writes as the
service's protocol does (JSON for SageMaker, XML for S3 and STS) so that botocore retries it. Tests,
benchmarks and the fault suite set :class:`FaultSettings` through the server's ``faults`` endpoint.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any

from werkzeug.wsgi import get_input_stream


class ErrorKind(StrEnum):
    THROTTLING = "throttling"
    INTERNAL = "internal"


_ERRORS = {
    ErrorKind.THROTTLING: (400, "ThrottlingException", "Rate exceeded"),
    ErrorKind.INTERNAL: (500, "InternalFailure", "We encountered an internal error. Please try again."),
}


@dataclass(frozen=True)
class FaultSettings:
    """Latency added to every AWS call and the fraction of calls answered with a retriable error."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_kind: ErrorKind = ErrorKind.THROTTLING
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.latency_ms, bool) or not isinstance(self.latency_ms, int | float):
            raise ValueError("latency_ms must be a number")
        if isinstance(self.error_rate, bool) or not isinstance(self.error_rate, int | float):
            raise ValueError("error_rate must be a number")
        if self.latency_ms < 0 or not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("latency_ms must be >= 0 and error_rate within [0, 1]")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError("seed must be an integer or null")
        object.__setattr__(self, "error_kind", ErrorKind(self.error_kind))

    def merged(self, changes: Mapping[str, Any]) -> FaultSettings:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return replace(self, **dict(changes))

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "error_kind": self.error_kind.value,
            "seed": self.seed,
        }


class FaultInjector:
    """Decides, per AWS call, how long to delay it and whether to answer it with an error."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._random = random.Random()  # noqa: S311 - fault injection, not cryptography
        self._stats = {"calls": 0, "delayed": 0, "errors": 0}

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self._settings = settings
            self._random = random.Random(settings.seed)  # noqa: S311 - fault injection, not cryptography

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def reset(self) -> None:
        self.configure(FaultSettings())
        with self._lock:
            self._stats = dict.fromkeys(self._stats, 0)

    def before_call(self) -> ErrorKind | None:
        """Wait out the added latency, then return the error to answer with, if any."""
        with self._lock:
            settings = self._settings
            fail = settings.error_rate > 0 and self._random.random() < settings.error_rate
            self._stats["calls"] += 1
            self._stats["delayed"] += settings.latency_ms > 0
            self._stats["errors"] += fail
        if settings.latency_ms > 0:
            self._sleep(settings.latency_ms / 1000)
        return settings.error_kind if fail else None


def aws_error(environ: dict[str, Any], start_response: Callable[..., Any], kind: ErrorKind) -> list[bytes]:
    get_input_stream(environ).read()  # drain the request so a kept-alive connection stays in step
    status, code, message = _ERRORS[kind]
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id), ("x-amz-request-id", request_id)]
    if environ.get("HTTP_X_AMZ_TARGET"):  # JSON protocols (SageMaker, ...) name the operation here
        body = json.dumps({"__type": code, "message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    else:  # query and REST-XML protocols (S3, STS, ...) all parse this shape
        body = (
            f"<ErrorResponse><Error><Type>{'Sender' if status < 500 else 'Receiver'}</Type>"
            f"<Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
    reason = "Bad Request" if status == 400 else "Internal Server Error"
    start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


def json_error(start_response: Callable[..., Any], status: int, code: str, message: str) -> list[bytes]:
    """An error of a JSON-protocol API (SageMaker) as botocore parses it."""
    body = json.dumps({"__type": code, "message": message}).encode()
    request_id = str(uuid.uuid4())
    start_response(
        f"{status} Bad Request",
        [
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", code),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]
