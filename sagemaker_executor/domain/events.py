"""Typed models of the Anubis wire events (CONTRACT §3-§4), and the rules for deriving new ones.

Owned here: the envelope every topic shares, each topic's payload, the status enum, and the pure functions
that build an outgoing event from an incoming one (a status, a command response, the executor event).
The service layer calls these; the Kafka adapter only moves the JSON produced by :func:`to_wire`.

Round-tripping is lossless: every model keeps fields it does not know (``extra="allow"``; the BFF adds
``client_sha1`` and ``date``), and :func:`to_wire` writes exactly the fields that were read or set, so a
record that is passed through (``src_event``, ``cmd_submit``) keeps every field under its own name.
What such a copy holds that strict JSON cannot (NaN, a lone surrogate) is rendered first by
``domain.strictjson.strict_value``; pydantic would turn the one into null and fail on the other.
Fields the executor relies on are typed; fields it only passes on (``visited[].tstamp``) are lenient,
because the pipeline's Python services never checked them and real records vary.

What a status or a command response copies from the event it answers is bounded by the rule of
``domain.limits``, so an answer always fits however large the input was; the executor event is a
complete copy, and the submission handler refuses an input whose executor event would not fit.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from sagemaker_executor.domain.descriptor import field_path
from sagemaker_executor.domain.errors import PermanentError
from sagemaker_executor.domain.limits import bounded_copy, bounded_message
from sagemaker_executor.domain.strictjson import first_unfit, strict_value

JSONDict = dict[str, Any]


class Status(StrEnum):
    """Anubis ``Status`` (CONTRACT §4.6); the BFF stores these verbatim."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    ERROR = "ERROR"
    INITIALIZING = "INITIALIZING"
    SUCCEEDED = "SUCCEEDED"
    CANCELED = "CANCELED"
    METRICS_AVAILABLE = "METRICS AVAILABLE"


class FetcherStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class FetchedType(StrEnum):
    FILE = "FILE"
    DIRECTORY = "DIRECTORY"


class _Wire(BaseModel):
    """Base of every wire model: unknown fields are kept, so nothing is lost when an event is passed on."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class VisitedService(_Wire):
    svc: StrictStr
    tstamp: int | str
    version: str | None = None
    node: str | None = None


class BenchmarkEvent(_Wire):
    """The envelope shared by every topic except ``BAI_METRICS`` (CONTRACT §3)."""

    action_id: StrictStr = Field(min_length=1)
    parent_action_id: StrictStr | None = None
    message_id: StrictStr
    client_id: StrictStr = Field(min_length=1)
    client_version: StrictStr
    client_username: StrictStr
    authenticated: StrictBool
    tstamp: StrictInt
    visited: list[VisitedService]
    type: StrictStr
    payload: Any


# --- payloads --------------------------------------------------------------------------------------


class SizeInfo(_Wire):
    total_size: StrictInt = Field(ge=0)
    file_count: StrictInt = Field(ge=0)
    max_size: StrictInt = Field(ge=0)


class DownloadableContent(_Wire):
    src: StrictStr
    path: StrictStr
    id: StrictStr | None = None
    md5: StrictStr | None = None
    dst: StrictStr | None = None
    type: FetchedType | None = None
    status: FetcherStatus | None = None
    message: str | None = None
    size_info: SizeInfo | None = None


class BenchmarkDoc(_Wire):
    contents: JSONDict
    doc: StrictStr
    sha1: StrictStr
    descriptor_filename: str | None = None
    verified: bool = False


class FileSystemObject(_Wire):
    dst: StrictStr


class FetcherPayload(_Wire):
    toml: BenchmarkDoc
    datasets: list[DownloadableContent]
    models: list[DownloadableContent] = Field(default_factory=list)
    scripts: list[FileSystemObject] = Field(default_factory=list)


class BenchmarkJob(_Wire):
    id: StrictStr
    output: str | None = None
    extras: JSONDict = Field(default_factory=dict)


class ExecutorPayload(FetcherPayload):
    job: BenchmarkJob


class StatusMessagePayload(_Wire):
    message: str
    status: Status
    src_event: JSONDict | None = None


class CommandRequestPayload(_Wire):
    command: StrictStr
    args: JSONDict | list[Any] | None = None


class CommandResponsePayload(_Wire):
    return_code: int
    message: str
    cmd_submit: JSONDict
    return_value: Any = None


class FetcherBenchmarkEvent(BenchmarkEvent):
    payload: FetcherPayload


class ExecutorBenchmarkEvent(BenchmarkEvent):
    payload: ExecutorPayload


class StatusMessageBenchmarkEvent(BenchmarkEvent):
    payload: StatusMessagePayload


class CommandRequestEvent(BenchmarkEvent):
    payload: CommandRequestPayload


class CommandResponseEvent(BenchmarkEvent):
    payload: CommandResponsePayload


class MetricsEvent(_Wire):
    """A ``BAI_METRICS`` record: no envelope, no ``type`` (CONTRACT §4.5)."""

    name: StrictStr
    value: float
    timestamp: StrictInt
    labels: dict[str, str] | None = None


# --- serialisation and derivation ----------------------------------------------------------------


def to_wire(model: BaseModel) -> JSONDict:
    """The JSON object to publish: the fields that were read or set, under their wire names."""
    return model.model_dump(mode="json", exclude_unset=True, by_alias=True)


ENVELOPE_FIELDS = (
    "action_id",
    "parent_action_id",
    "message_id",
    "client_id",
    "client_version",
    "client_username",
    "authenticated",
    "tstamp",
    "visited",
    "type",
)


def new_message_id() -> str:
    return str(uuid.uuid4())


def stamp_for_send(
    event: JSONDict, *, topic: str, service: str, version: str, node: str | None, now_ms: int
) -> JSONDict:
    """What ``EventEmitter.send_event`` does (CONTRACT §3): new message id, type = topic, visited += self."""
    stamped = dict(event)
    stamped["message_id"] = new_message_id()
    stamped["type"] = topic
    stamped["visited"] = [
        *list(event.get("visited") or []),
        {"svc": service, "tstamp": now_ms, "version": version, "node": node},
    ]
    stamped["tstamp"] = now_ms
    return stamped


def envelope_of(event: Mapping[str, Any]) -> JSONDict:
    """The envelope fields of a wire event, every one present (``None`` for a missing optional)."""
    return {name: event.get(name) for name in ENVELOPE_FIELDS}


def status_event(
    handled: Mapping[str, Any],
    status: Status,
    message: str,
    *,
    src_event: Mapping[str, Any] | None,
    target_action_id: str | None = None,
) -> JSONDict:
    """A status event answering ``handled`` (CONTRACT §3 "Status"): visited reset, payload replaced.

    The envelope, ``src_event`` and ``message`` are bounded copies (``domain.limits``); ``src_event``'s
    payload is whole, for the emitter to omit if the status would be too large for the BFF.
    """
    envelope = bounded_copy(envelope_of(handled), ENVELOPE_FIELDS)
    envelope["visited"] = []
    if target_action_id is not None:
        envelope["action_id"] = target_action_id
    payload = StatusMessagePayload(
        message=bounded_message(message),
        status=status,
        src_event=strict_value(bounded_copy(src_event, ENVELOPE_FIELDS)) if src_event is not None else None,
    )
    return {**envelope, "payload": to_wire(payload)}


def executor_event(fetcher_event: Mapping[str, Any], job_name: str) -> JSONDict:
    """The ``ExecutorBenchmarkEvent``: the input envelope and payload, plus ``job`` (CONTRACT §4.2)."""
    payload = dict(fetcher_event["payload"])
    payload["job"] = {"id": job_name, "output": None, "extras": {}}
    return {**envelope_of(fetcher_event), **_extras(fetcher_event), "payload": payload}


def command_response(command_event: Mapping[str, Any], return_code: int, message: str) -> JSONDict:
    """The ``CommandResponseEvent``: a copy of the command's envelope with a response payload (§4.4).

    Bounded like a status: the envelope, ``cmd_submit`` and ``message`` are bounded copies
    (``domain.limits``), ``cmd_submit``'s payload whole, for the emitter to omit if it is too large.
    """
    payload = CommandResponsePayload(
        return_code=return_code,
        message=bounded_message(message),
        cmd_submit=strict_value(bounded_copy(command_event, ENVELOPE_FIELDS)),
        return_value=None,
    )
    return {**bounded_copy(envelope_of(command_event), ENVELOPE_FIELDS), "payload": to_wire(payload)}


def _extras(event: Mapping[str, Any]) -> JSONDict:
    """Top-level fields outside the envelope (e.g. the BFF's ``client_sha1``), kept as they are."""
    return {k: v for k, v in event.items() if k not in ENVELOPE_FIELDS and k != "payload"}


class EventFieldError(PermanentError, ValueError):
    """An incoming event field the executor cannot carry on; permanent. Reads ``event field 'x': why``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"event field '{field}': {reason}")
        self.field = field
        self.reason = reason


def check_event_text(event: Mapping[str, Any]) -> None:
    """Raise :class:`EventFieldError` for the first string or key of ``event`` that is not Unicode text.

    Such text (a lone surrogate from a ``\\u`` escape) cannot be encoded for SageMaker, S3 or a tag,
    so an event holding one is refused, named by its path (``payload.datasets[0].dst``). Numbers are
    not checked: the envelope's are typed by the models, and a non-finite one that is only passed on
    is rendered by ``domain.strictjson.strict_value`` when sent.
    """
    unfit = first_unfit(event, numbers=False)
    if unfit is not None:
        raise EventFieldError(field_path(unfit[0]), unfit[1])
