"""The consumer loop: poll, route each record to its handler, publish, wait for acks, then commit.

Owned here: what "done" means for a record. A record's offset is committed only after every event it
caused (statuses, the executor event, a command response, or a dead-letter record) has been
acknowledged by the broker with ``acks=all``. So a crash at any point redelivers the record, and the
handlers make that harmless (deterministic job names; an existing job of the same action is adopted).

* A record that is not a JSON object naming an ``action_id`` and a ``client_id`` cannot be answered
  (the BFF files answers by those two, CONTRACT §2): it goes to the dead-letter topic with the reason.
* A transient failure (throttling that outlasted the client's retries, a broker hiccup) rewinds the
  record and retries it after a capped backoff; PENDING is not repeated for the retried record.
* An unexpected exception is a bug: the user gets an ERROR status, the record is dead-lettered with
  the exception, and the service keeps running.

``cli`` builds it; :meth:`ExecutorLoop.run` returns when :meth:`ExecutorLoop.stop` is called.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import threading
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sagemaker_executor.adapters.kafka import InboundRecord, PublishError
from sagemaker_executor.domain.errors import TransientError
from sagemaker_executor.domain.events import Status
from sagemaker_executor.service.commands import CommandHandler
from sagemaker_executor.service.emitter import RecordSink, StatusEmitter
from sagemaker_executor.service.submission import NotForUs, SubmissionHandler
from sagemaker_executor.service.tracker import JobTracker

log = logging.getLogger(__name__)


class Source(Protocol):
    def poll(self, timeout_ms: int, max_records: int) -> list[InboundRecord]: ...
    def commit(self, record: InboundRecord) -> None: ...
    def rewind(self, record: InboundRecord) -> None: ...


class Sink(RecordSink, Protocol):
    def flush(self, timeout_s: float = 60.0) -> None: ...


@dataclass(frozen=True)
class LoopSettings:
    consumer_topic: str
    cmd_submit_topic: str
    dead_letter_topic: str
    poll_timeout_ms: int = 500
    max_records: int = 50
    retry_backoff_s: float = 1.0
    retry_backoff_cap_s: float = 30.0


class Unroutable(Exception):
    """The record cannot be answered; its reason goes to the dead-letter topic."""


class ExecutorLoop:
    def __init__(
        self,
        source: Source,
        sink: Sink,
        emitter: StatusEmitter,
        submissions: SubmissionHandler,
        commands: CommandHandler,
        settings: LoopSettings,
        sleep: Callable[[float], Any] | None = None,
        tracker: JobTracker | None = None,
    ) -> None:
        self._source = source
        self._sink = sink
        self._emitter = emitter
        self._submissions = submissions
        self._commands = commands
        self._settings = settings
        self._tracker = tracker
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self._retrying: tuple[str, int, int] | None = None
        self._failures = 0
        self.counts: dict[str, int] = {}

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            self.run_once()

    def run_once(self) -> None:
        batch = self._source.poll(self._settings.poll_timeout_ms, self._settings.max_records)
        for index, record in enumerate(batch):
            if self._stopping.is_set() or not self._process(record):
                # Unprocessed records of every partition in this batch come again, in order.
                self._rewind(batch[index:])
                return
        if self._tracker is not None and not self._stopping.is_set():
            self._tracker.tick()

    def _rewind(self, remaining: list[InboundRecord]) -> None:
        first: dict[tuple[str, int], InboundRecord] = {}
        for record in remaining:
            first.setdefault((record.topic, record.partition), record)
        for record in first.values():
            self._source.rewind(record)

    def _process(self, record: InboundRecord) -> bool:
        """Handle, publish, commit. False if the record was rewound to be retried."""
        where = (record.topic, record.partition, record.offset)
        retry = self._retrying == where
        try:
            outcome = self._dispatch(record, retry=retry)
            self._sink.flush()
        except (TransientError, PublishError) as error:
            self._retry_later(record, where, error)
            return False
        self._source.commit(record)
        self._retrying, self._failures = None, 0
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        return True

    def _dispatch(self, record: InboundRecord, *, retry: bool) -> str:
        try:
            raw = _decode(record)
        except Unroutable as error:
            self._dead_letter(record, str(error))
            return "dead-letter"
        try:
            if record.topic == self._settings.cmd_submit_topic:
                return "command-" + self._commands.handle(raw)
            result = self._submissions.handle(raw, retry=retry)
            if self._tracker is not None and result.executor_event is not None:
                self._tracker.track(result.executor_event, record.partition)
            return "submission-" + result.value
        except NotForUs as error:
            self._dead_letter(record, str(error))
            return "dead-letter"
        except TransientError:
            raise
        except Exception as error:  # a bug: say so to the user and keep the record, then carry on
            log.exception("unexpected error handling %s", _where(record))
            self._emitter.status(
                raw,
                Status.ERROR,
                f"Internal error in the SageMaker executor ({type(error).__name__}); the request was "
                "kept for the operators to replay",
            )
            self._dead_letter(record, "unexpected error: " + "".join(traceback.format_exception(error)))
            return "internal-error"

    def _retry_later(self, record: InboundRecord, where: tuple[str, int, int], error: Exception) -> None:
        self._failures += 1
        delay = min(
            self._settings.retry_backoff_cap_s, self._settings.retry_backoff_s * 2 ** (self._failures - 1)
        )
        delay *= random.uniform(0.5, 1.0)  # noqa: S311 -- jitter, not cryptography
        log.warning("retrying %s in %.1fs after a transient failure: %s", _where(record), delay, error)
        self._retrying = where
        self._sleep(delay)

    def _dead_letter(self, record: InboundRecord, reason: str) -> None:
        log.warning("dead-lettering %s: %s", _where(record), reason.splitlines()[0])
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        self._sink.send(self._settings.dead_letter_topic, key, dead_letter_record(record, reason))


def _where(record: InboundRecord) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


def _decode(record: InboundRecord) -> Mapping[str, Any]:
    """The record as a JSON object that names an action and a client, or :class:`Unroutable`."""
    if record.value is None:
        raise Unroutable("empty record (tombstone)")
    try:
        raw = json.loads(record.value.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise Unroutable(f"not UTF-8: {error}") from error
    except (json.JSONDecodeError, RecursionError) as error:
        raise Unroutable(f"not valid JSON: {error}") from error
    if not isinstance(raw, dict):
        raise Unroutable(f"not a JSON object but a {type(raw).__name__}")
    for name in ("action_id", "client_id"):
        value = raw.get(name)
        if not isinstance(value, str) or not value:
            raise Unroutable(f"'{name}' is missing or not a non-empty string: nobody to answer")
    return raw


def dead_letter_record(record: InboundRecord, reason: str) -> dict[str, Any]:
    """What goes to the dead-letter topic: where the record came from, why, and the record itself."""
    value: dict[str, Any] = {
        "reason": reason,
        "source": {"topic": record.topic, "partition": record.partition, "offset": record.offset},
        "timestamp_ms": record.timestamp_ms,
        "key": record.key.decode("utf-8", "replace") if record.key is not None else None,
    }
    if record.value is None:
        value["value"] = None
    else:
        try:
            value["value"] = record.value.decode("utf-8")
        except UnicodeDecodeError:
            value["value_base64"] = base64.b64encode(record.value).decode("ascii")
    return value
