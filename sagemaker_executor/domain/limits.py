"""Size limits of what the executor sends, and the one rule that keeps what it copies within them.

Owned here: the byte limits every outgoing record must respect (the Kafka producer's
``max.request.size``, the BFF's DynamoDB item), how those bytes are counted (``strictjson.encode``,
exactly what every publisher sends), and the rule that bounds what a status event or a command
response copies from the event it answers. ``domain.events`` applies the rule when it builds a status
(its envelope and ``src_event``) or a command response (its envelope and ``cmd_submit``);
``service.emitter`` omits a copied payload that would not fit; ``service.submission`` refuses, before
any side effect, an event whose executor event or tracking record would not fit (:class:`EventTooLarge`);
``adapters.kafka`` serialises with ``strictjson.encode``.

Sizes are the bytes of the JSON form as sent: compact separators, non-ASCII escaped as ``\\uXXXX``.

The rule, for each field copied from an input event into a status or a command response:

* ``action_id`` and ``client_id`` are copied whole: the BFF files every answer under them, so a cut id
  would file the answer under an action that does not exist. An event whose id is over
  :data:`MAX_ID_BYTES` cannot be answered at all (:func:`unanswerable`): the handlers dead-letter it.
* Every other envelope field (``client_username``, ``client_version``, ``parent_action_id``,
  ``message_id``, ``type``, ``tstamp``, ``authenticated``) is kept up to :data:`MAX_TEXT_BYTES`; a
  longer string keeps its start and says how long it was (:func:`bound_text`), any other longer value
  is replaced by a note saying what it was.
* ``visited`` keeps its latest :data:`MAX_VISITED_ENTRIES` entries; an entry over
  :data:`MAX_VISITED_ENTRY_BYTES` keeps only ``svc``, ``tstamp``, ``version`` and ``node``, each cut.
* Fields outside the envelope (the BFF's ``client_sha1`` and ``date``): the first
  :data:`MAX_EXTRA_FIELDS` whose names are at most :data:`MAX_EXTRA_NAME_BYTES`, values cut like
  envelope fields; the others are left out.
* The status or response message is kept up to :data:`MAX_MESSAGE_BYTES`.
* A copied ``payload`` (``src_event``, ``cmd_submit``) is kept whole unless the event would then be over
  :data:`MAX_STATUS_BYTES`; it is then replaced by a note of its size (:func:`without_payload`).

With every part bounded, a status or response is at most about 60 KB before its payload, so it always
fits once the payload is omitted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sagemaker_executor.domain import strictjson
from sagemaker_executor.domain.errors import PermanentError

JSONDict = dict[str, Any]

DEFAULT_MAX_REQUEST_BYTES = 1_048_576
"""The largest record the executor sends unless ``KAFKA_MAX_REQUEST_BYTES`` says otherwise: the default
of the Kafka producer's ``max.request.size`` (kafka-python's ``max_request_size``), just under the
broker's default ``message.max.bytes`` (1,048,588)."""

KAFKA_RECORD_OVERHEAD_BYTES = 128
"""What a record adds to its key and value when kafka-python checks ``max_request_size``
(``DefaultRecordBatchBuilder.estimate_size_in_bytes``): a 61-byte batch header (record format v2), at
most 21 bytes of record attributes and deltas, and the varint lengths of key, value and headers (at
most 11 bytes): 93 bytes at most, rounded up. The older formats add less."""

MAX_STATUS_BYTES = 350_000
"""The largest status event or command response sent (its value). The BFF stores each one whole in a
DynamoDB item of at most 400 KB (CONTRACT §2), beside attributes of its own."""

MAX_ID_BYTES = 1_024
"""The longest ``action_id`` or ``client_id`` an answer can carry. The BFF stores answers in DynamoDB
under the action id, and DynamoDB keys are at most 2,048 bytes (partition key) and 1,024 bytes (sort
key); the client id is the Kafka key of every answer. Real ids are uuid4s (36 characters) and SHA-1
hex digests (40)."""

MAX_TEXT_BYTES = 1_024
"""The longest copy of any other envelope field, or of a field outside the envelope. The values in use
are short (a user name, a client version, a uuid, a date), so a longer one is cut rather than refused."""

MAX_VISITED_ENTRIES = 16
"""The ``visited`` entries a copy keeps (the latest). Each service on the way adds one, and the longest
way (client, BFF, fetcher, cron job, fetcher, executor) has fewer than ten (CONTRACT §3)."""

MAX_VISITED_ENTRY_BYTES = 512
"""The largest ``visited`` entry a copy keeps whole: ``{svc, tstamp, version, node}`` with a pod
hostname (at most 253 characters) fits."""

MAX_EXTRA_FIELDS = 8
"""Fields outside the envelope that a copy keeps. The BFF adds two (``client_sha1``, ``date``)."""

MAX_EXTRA_NAME_BYTES = 64
"""The longest name of a field outside the envelope that a copy keeps."""

MAX_MESSAGE_BYTES = 16_384
"""The longest status or response message. The executor's own are short; the longest expected is a
job's final metrics (SageMaker: at most 40 metrics, names of at most 255 characters)."""

MIN_REQUEST_BYTES = MAX_STATUS_BYTES + MAX_ID_BYTES + KAFKA_RECORD_OVERHEAD_BYTES
"""The smallest ``KAFKA_MAX_REQUEST_BYTES`` accepted: every status the BFF can store, with its key
(the client id), must be sendable."""

VISIT_FIELDS = ("svc", "tstamp", "version", "node")
ANSWER_FIELDS = ("action_id", "client_id")
_VISIT_VALUE_BYTES = (MAX_VISITED_ENTRY_BYTES - 64) // len(VISIT_FIELDS)  # 64: braces, names, commas
_MAX_FIELD_DEPTH = 32  # how deep :func:`largest_field` looks; past that a path names nothing useful


class EventTooLarge(PermanentError):
    """An outgoing record built from the input would be over the Kafka producer's limit.

    Raised before any side effect, so the answer is an ERROR and nothing else. The message is for the
    user: it starts like the original's validation errors and names the field that takes the room.
    """

    def __init__(self, size: int, limit: int, field: str, field_size: int) -> None:
        super().__init__(
            f"Cannot process the request: the benchmark is too large to pass on: it would take a "
            f"{size}-byte Kafka record, over the limit of {limit} bytes; its largest field is "
            f"'{field}' ({field_size} bytes)"
        )
        self.size = size
        self.limit = limit
        self.field = field
        self.field_size = field_size


def json_size(value: Any) -> int:
    """Bytes of ``value`` as every publisher writes it (``strictjson.encode``)."""
    return len(strictjson.encode(value))


def record_size(key: str | None, value: bytes) -> int:
    """An upper bound of what kafka-python counts against ``max_request_size`` for one record (bytes)."""
    key_bytes = len(key.encode("utf-8")) if key is not None else 0
    return key_bytes + len(value) + KAFKA_RECORD_OVERHEAD_BYTES


def bound_text(text: str, max_bytes: int) -> str:
    """``text`` if its JSON form is at most ``max_bytes`` (>= 64), else its start and its length.

    The result's JSON form is at most ``max_bytes``: ``"Jane Doe... [cut: 600000 characters]"``.
    """
    if len(text) <= max_bytes and json_size(text) <= max_bytes:  # each character takes a byte or more
        return text
    note = f"... [cut: {len(text)} characters]"
    room = max_bytes - json_size(note)  # the note's quotes stand for the result's
    head = text[: max(room, 0)]  # every character takes at least one byte
    if json_size(head) - 2 > room:  # escaped characters: count them one by one
        used = kept = 0
        for char in head:
            used += json_size(char) - 2
            if used > room:
                break
            kept += 1
        head = head[:kept]
    return head + note


def bound_value(value: Any, max_bytes: int) -> Any:
    """``value`` if its JSON form is at most ``max_bytes`` (>= 64); a string is cut, anything else
    becomes a note such as ``"[cut: an object of 700000 bytes]"``."""
    if isinstance(value, str):
        return bound_text(value, max_bytes)
    size = json_size(value)
    if size <= max_bytes:
        return value
    kind = "an object" if isinstance(value, Mapping) else "an array" if isinstance(value, list) else "a value"
    return f"[cut: {kind} of {size} bytes]"


def bounded_copy(event: Mapping[str, Any], envelope: Sequence[str]) -> JSONDict:
    """The copy of ``event`` that a status or response carries, bounded field by field (module docstring).

    ``envelope`` names the envelope fields (``events.ENVELOPE_FIELDS``): those present are always kept,
    ahead of fields outside the envelope. ``payload`` is kept as it is.
    """
    copy: JSONDict = {}
    for name in envelope:
        if name in event:
            copy[name] = _bounded_field(name, event[name])
    extras = [
        name
        for name in event
        if name not in copy and name != "payload" and json_size(name) <= MAX_EXTRA_NAME_BYTES
    ]
    for name in extras[:MAX_EXTRA_FIELDS]:
        copy[name] = bound_value(event[name], MAX_TEXT_BYTES)
    if "payload" in event:
        copy["payload"] = event["payload"]
    return copy


def _bounded_field(name: str, value: Any) -> Any:
    if name in ANSWER_FIELDS:
        # Never cut in an event that is answered: unanswerable() stops those first.
        return value if id_problem(name, value) is None else bound_value(value, MAX_ID_BYTES)
    if name == "visited":
        if not isinstance(value, list):
            return bound_value(value, MAX_TEXT_BYTES)
        return [_bounded_visit(entry) for entry in value[-MAX_VISITED_ENTRIES:]]
    return bound_value(value, MAX_TEXT_BYTES)


def _bounded_visit(entry: Any) -> Any:
    if not isinstance(entry, Mapping):
        return bound_value(entry, MAX_VISITED_ENTRY_BYTES)
    if json_size(entry) <= MAX_VISITED_ENTRY_BYTES:
        return entry
    return {name: bound_value(entry[name], _VISIT_VALUE_BYTES) for name in VISIT_FIELDS if name in entry}


def bounded_message(message: str) -> str:
    """A status or response message, cut to :data:`MAX_MESSAGE_BYTES`."""
    return bound_text(message, MAX_MESSAGE_BYTES)


def without_payload(event: Mapping[str, Any], size: int) -> JSONDict:
    """``event`` with its payload replaced by a note: for a copy that made its status ``size`` bytes."""
    return {**event, "payload": {"omitted": f"payload too large for a status event ({size} bytes)"}}


def unanswerable(event: Mapping[str, Any]) -> str | None:
    """Why no status or response can answer ``event`` (an id over :data:`MAX_ID_BYTES`), or None.

    Missing or non-string ids are the consumer loop's to reject; this checks only their size.
    """
    for name in ANSWER_FIELDS:
        problem = id_problem(name, event.get(name))
        if problem is not None:
            return f"{problem}: nobody to answer (the BFF files answers under action_id and client_id)"
    return None


def id_problem(name: str, value: Any) -> str | None:
    """``"'action_id' is 5000 bytes, over ..."`` if ``value`` is a string too long to answer under.

    An id's size is that of its JSON form without the quotes (its UTF-8 bytes, for an ASCII id).
    """
    if isinstance(value, str):
        size = json_size(value) - 2
        if size > MAX_ID_BYTES:
            return f"'{name}' is {size} bytes, over the {MAX_ID_BYTES} bytes an answer can carry"
    return None


def largest_field(value: Any) -> tuple[str, int]:
    """``(path, bytes)`` of the field that takes most of ``value``'s room, e.g. ``payload.toml.doc``.

    Starting at the top, it goes into the largest member for as long as that member holds at least a
    quarter of its parent: so a single huge string is named itself, and a list of many small items is
    named as the list (``payload.datasets``). Paths are written like ``payload.datasets[3].src``.
    """
    path, node, size = "", value, json_size(value)
    for _ in range(_MAX_FIELD_DEPTH):
        members: list[tuple[str, Any]]
        if isinstance(node, Mapping):
            members = [(f"{path}.{key}" if path else str(key), item) for key, item in node.items()]
        elif isinstance(node, list):
            members = [(f"{path}[{index}]", item) for index, item in enumerate(node)]
        else:
            break
        if not members:
            break
        sized = [(json_size(item), where, item) for where, item in members]
        biggest, where, item = max(sized, key=lambda entry: entry[0])
        if biggest * 4 < size:
            break
        path, node, size = where, item, biggest
    return path or "<root>", size
