"""What a Kafka record is to the consumer loop, and what is left of it when it is dead-lettered.

Owned here: the record's shape as the loop reads it (:class:`InboundRecord`, which kafka-python's
``ConsumerRecord`` is), turning its bytes into a JSON object that names an action and a client
(:func:`decode`, which raises :class:`~sagemaker_executor.service.outcomes.Unroutable` with the reason
a person reads in the dead letter), the action it is about (:func:`action_of`: records of one action
run one after the other), and the two dead letters: :func:`dead_letter_record` (bounded, the record
kept) and :func:`minimal_dead_letter` (the last resort, which cannot fail). Pure; ``service.loop``
and ``service.attempts`` call it. The dead-letter shape is CONTRACT's (README, "Delivery guarantees").
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from sagemaker_executor.service.outcomes import Unroutable

DEAD_LETTER_VALUE_BYTES = 256 * 1024
DEAD_LETTER_REASON_CHARS = 16 * 1024  # a traceback is long; its end says where it failed
MINIMAL_EXCERPT_BYTES = 1024


class InboundRecord(Protocol):
    """One consumed record as the loop reads it (``adapters.kafka.InboundRecord``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp_ms(self) -> int: ...


def where(record: InboundRecord) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


def decode(record: InboundRecord) -> Mapping[str, Any]:
    """The record as a JSON object that names an action and a client, or :class:`Unroutable`."""
    if record.value is None:
        raise Unroutable("empty record (tombstone)")
    try:
        raw = json.loads(record.value.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise Unroutable(f"not UTF-8: {error}") from error
    except (ValueError, RecursionError) as error:  # JSONDecodeError, and ints past 4,300 digits
        raise Unroutable(f"not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise Unroutable(f"not a JSON object but a {type(raw).__name__}")
    for name in ("action_id", "client_id"):
        value = raw.get(name)
        if not isinstance(value, str) or not value:
            raise Unroutable(f"'{name}' is missing or not a non-empty string: nobody to answer")
    return raw


def action_of(raw: Mapping[str, Any], *, is_command: bool) -> str:
    """The action a record is about: its own, or for a command the action it targets (a cancel)."""
    if is_command:
        payload = raw.get("payload")
        args = payload.get("args") if isinstance(payload, Mapping) else None
        target = args.get("target_action_id") if isinstance(args, Mapping) else None
        if target is None and isinstance(args, list) and args:
            target = args[0]
        if isinstance(target, str) and target:
            return target
    return str(raw["action_id"])


def dead_letter_record(record: InboundRecord, reason: str) -> dict[str, Any]:
    """What goes to the dead-letter topic: where the record came from, why, and the record itself.

    Bounded: the reason keeps its last ``DEAD_LETTER_REASON_CHARS`` characters (a traceback ends
    where it failed), the value its first ``DEAD_LETTER_VALUE_BYTES`` bytes, with its size and digest.
    """
    if len(reason) > DEAD_LETTER_REASON_CHARS:
        reason = reason[:200] + "\n...\n" + reason[-DEAD_LETTER_REASON_CHARS:]
    value: dict[str, Any] = {
        "reason": reason,
        "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
        "timestamp_ms": record.timestamp_ms,
        "key": record.key.decode("utf-8", "replace")[:1024] if record.key is not None else None,
    }
    if record.value is None:
        value["value"] = None
        return value
    kept = record.value[:DEAD_LETTER_VALUE_BYTES]
    if len(kept) < len(record.value):
        # The whole record may not fit in a dead letter (base64 grows it by a third): keep its start,
        # its size and its digest, which is enough to find it again in the source topic.
        value["value_bytes"] = len(record.value)
        value["value_sha256"] = hashlib.sha256(record.value).hexdigest()
        value["value_truncated"] = True
    try:
        value["value"] = kept.decode("utf-8")
    except UnicodeDecodeError:
        value["value_base64"] = base64.b64encode(kept).decode("ascii")
    return value


def minimal_dead_letter(record: InboundRecord, reason: str) -> bytes:
    """The last-resort dead letter: a few kilobytes of strict JSON, whatever the record holds.

    Source topic, partition and offset, the reason (first 4,000 characters), and an excerpt of the
    value (its first ``MINIMAL_EXCERPT_BYTES`` bytes, undecodable bytes replaced), with its size and
    digest: under 64 KiB even when every character needs a JSON escape. Built from plain ints and
    strings only, so it cannot fail to serialise.
    """
    data = record.value or b""
    return json.dumps(
        {
            "reason": reason[:4000],
            "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
            "timestamp_ms": record.timestamp_ms,
            "value_excerpt": data[:MINIMAL_EXCERPT_BYTES].decode("utf-8", "replace"),
            "value_bytes": len(data),
            "value_sha256": hashlib.sha256(data).hexdigest(),
            "minimal": True,
        },
        ensure_ascii=True,
    ).encode("ascii")
