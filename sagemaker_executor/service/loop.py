"""The consumer loop: poll, run records concurrently, publish, wait for acks, commit in order.

Owned here: what "done" means for a record, and how many run at once.

* **Concurrent, ordered-safe.** Up to ``max_in_flight`` records are handled at once on a thread pool;
  records with the same key (``client_id``) on a partition still run one after the other. A record is
  done when every event it caused -- statuses, the executor event, a command response, a dead-letter
  record -- has been acknowledged by the broker (``acks=all``). Offsets are committed per partition
  only up to the first record not yet done (:class:`~sagemaker_executor.service.offsets.OffsetLedger`),
  so a crash at any point redelivers every unfinished record, and the handlers make redelivery harmless.
* **Backpressure.** At the limit, fetching is paused while ``poll()`` goes on, so the group never sees
  the member miss ``max.poll.interval.ms``; a slow AWS call holds only its own record (botocore bounds
  each call).
* **Retries where they belong.** Transient failures (throttling or 5xx that outlasted botocore's own
  retries, a broker that did not acknowledge) are retried inside the record's task with capped,
  jittered exponential backoff; ``PENDING`` is not repeated. A quota (:class:`CapacityError`) waits
  longer and tells the user once. Permanent errors are not retried: the handlers answer them.
* **Bad input.** A record that is not a JSON object naming an ``action_id`` and a ``client_id`` cannot
  be answered (the BFF files answers by those two, CONTRACT §2): it goes to the dead-letter topic. An
  unexpected exception is a bug: the user gets an ERROR, the record is dead-lettered with the
  traceback, and the service keeps running.
* **Shutdown.** :meth:`ExecutorLoop.stop` stops fetching; :meth:`ExecutorLoop.run` then lets in-flight
  records finish for up to ``shutdown_grace_s``, commits what is done and returns; the rest is not
  committed and is redelivered to whoever owns the partition next.

``cli`` builds it; the job tracker, if any, is ticked from this loop's thread.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import queue
import random
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from sagemaker_executor.adapters.kafka import InboundRecord, PublishError
from sagemaker_executor.domain.errors import CapacityError, TransientError
from sagemaker_executor.domain.events import Status
from sagemaker_executor.logs import log_context
from sagemaker_executor.service.commands import CommandHandler
from sagemaker_executor.service.emitter import RecordSink, StatusEmitter
from sagemaker_executor.service.offsets import OffsetLedger, Partition
from sagemaker_executor.service.submission import NotForUs, SubmissionHandler
from sagemaker_executor.service.tracker import JobTracker

log = logging.getLogger(__name__)

LAG_REPORT_INTERVAL_S = 15.0
DEAD_LETTER_VALUE_BYTES = 256 * 1024
BUSY_POLL_MS = 50  # commits and tracking may lag this much; shorter polls cost CPU for nothing
MSG_WAITING_FOR_CAPACITY = "Waiting for SageMaker capacity (an account limit is reached); will retry: {}"


class Source(Protocol):
    def poll(self, timeout_ms: int, max_records: int) -> list[InboundRecord]: ...
    def commit_offsets(self, offsets: Mapping[tuple[str, int], int]) -> None: ...
    def pause_all(self) -> None: ...
    def resume_all(self) -> None: ...


class Sink(RecordSink, Protocol):
    def flush(self, timeout_s: float = 60.0) -> None: ...


class Observer(Protocol):
    """What the loop reports for metrics and health (``service.observability.LoopObserver``)."""

    def heartbeat(self) -> None: ...
    def joined(self, joined: bool) -> None: ...
    def consumed(self, outcome: str, latency_s: float | None) -> None: ...
    def failure(self, kind: str) -> None: ...
    def set_in_flight(self, count: int) -> None: ...
    def set_tracked(self, count: int) -> None: ...
    def report_lag(self, lag: dict[tuple[str, int], int]) -> None: ...


class NullObserver:
    def heartbeat(self) -> None:
        pass

    def joined(self, joined: bool) -> None:
        pass

    def consumed(self, outcome: str, latency_s: float | None) -> None:
        pass

    def failure(self, kind: str) -> None:
        pass

    def set_in_flight(self, count: int) -> None:
        pass

    def set_tracked(self, count: int) -> None:
        pass

    def report_lag(self, lag: dict[tuple[str, int], int]) -> None:
        pass


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter; giving up turns a transient failure into an ERROR."""

    base_s: float = 1.0
    cap_s: float = 60.0
    capacity_cap_s: float = 300.0
    give_up_s: float = 3600.0

    def delay(self, attempt: int, *, capacity: bool = False) -> float:
        cap = self.capacity_cap_s if capacity else self.cap_s
        return random.uniform(0, min(cap, self.base_s * 2 ** min(attempt, 30)))  # noqa: S311 -- jitter


@dataclass(frozen=True)
class LoopSettings:
    consumer_topic: str
    cmd_submit_topic: str
    dead_letter_topic: str
    max_in_flight: int = 16
    poll_timeout_ms: int = 200
    max_records: int = 100
    shutdown_grace_s: float = 30.0
    retry: RetryPolicy = RetryPolicy()


@dataclass
class TaskResult:
    record: InboundRecord
    outcome: str
    executor_event: dict[str, Any] | None = None
    abandoned: bool = False


class Unroutable(Exception):
    """The record cannot be answered; its reason goes to the dead-letter topic."""


def describe_partitions(partitions: set[tuple[str, int]]) -> str:
    """``TOPIC[0, 2] OTHER[1]``, or ``none``: one short, stable form for the logs."""
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    return " ".join(f"{topic}{sorted(numbers)}" for topic, numbers in sorted(by_topic.items())) or "none"


class ExecutorLoop:
    def __init__(
        self,
        source: Source,
        sink: Sink,
        emitter: StatusEmitter,
        submissions: SubmissionHandler,
        commands: CommandHandler,
        settings: LoopSettings,
        *,
        tracker: JobTracker | None = None,
        observer: Observer | None = None,
        pool: Executor | None = None,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._sink = sink
        self._emitter = emitter
        self._submissions = submissions
        self._commands = commands
        self._settings = settings
        self._tracker = tracker
        self._observer = observer or NullObserver()
        self._pool = pool or ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="record")
        self._stopping = threading.Event()
        self._sleep = sleep or self._stopping.wait
        self._clock = clock
        self._ledger = OffsetLedger()
        self._done: queue.Queue[TaskResult] = queue.Queue()
        self._finished_unacked: list[TaskResult] = []  # done, waiting for the tracker's record to be acked
        self._last_by_key: dict[tuple[str, int, bytes | None], Future[TaskResult]] = {}
        self._paused = False
        self._next_lag_report = 0.0
        self.counts: dict[str, int] = {}

    # --- lifecycle -------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            self.run_once()
        self.drain(self._settings.shutdown_grace_s)

    def run_once(self) -> None:
        self._observer.heartbeat()
        self._complete_finished()
        in_flight = self._ledger.in_flight()
        room = self._settings.max_in_flight - in_flight
        self._apply_backpressure(room <= 0)
        if room <= 0:
            # Full: keep polling (the group must see us) but wake as soon as a record finishes.
            self._source.poll(0, 1)
            self._complete_finished(wait_s=self._settings.poll_timeout_ms / 1000)
            batch = []
        else:
            # With records in flight, poll briefly so finished ones are committed promptly.
            timeout = self._settings.poll_timeout_ms if in_flight == 0 else BUSY_POLL_MS
            batch = self._source.poll(timeout, min(self._settings.max_records, room))
        for record in batch:
            self._start(record)
        self._observer.set_in_flight(self._ledger.in_flight())
        if self._tracker is not None and not self._stopping.is_set():
            self._tracker.tick()
            self._observer.set_tracked(len(self._tracker.tracked))
        self._report_lag()

    def _report_lag(self) -> None:
        now = time.monotonic()
        lag = getattr(self._source, "lag", None)
        if lag is None or now < self._next_lag_report:
            return
        self._next_lag_report = now + LAG_REPORT_INTERVAL_S
        try:
            self._observer.report_lag(lag())
        except Exception as error:
            log.debug("consumer lag unavailable: %s", error)

    def drain(self, grace_s: float) -> None:
        """Let in-flight records finish for up to ``grace_s``, committing what is done."""
        self._source.pause_all()
        deadline = time.monotonic() + grace_s
        while self._ledger.in_flight() and time.monotonic() < deadline:
            self._complete_finished(wait_s=0.1)
        self._complete_finished()
        left = self._ledger.in_flight()
        if left:
            log.warning("shutting down with %d records unfinished; they will be redelivered", left)
        if isinstance(self._pool, ThreadPoolExecutor):
            self._pool.shutdown(wait=False, cancel_futures=True)

    # --- rebalance ---------------------------------------------------------------------------------

    def on_assigned(self, partitions: set[tuple[str, int]]) -> None:
        log.info("partitions assigned: %s", describe_partitions(partitions))
        self._observer.joined(True)
        if self._tracker is not None:
            self._tracker.on_assigned(partitions)

    def on_revoked(self, partitions: set[tuple[str, int]]) -> None:
        """Finish (within the grace period) and commit what runs on partitions we are losing."""
        log.info("partitions revoked: %s", describe_partitions(partitions))
        deadline = time.monotonic() + self._settings.shutdown_grace_s
        while self._ledger.in_flight_on(partitions) and time.monotonic() < deadline:
            self._complete_finished(wait_s=0.1)
        self._complete_finished()
        self._ledger.forget(partitions)
        if self._tracker is not None:
            self._tracker.on_revoked(partitions)

    # --- starting and finishing records -----------------------------------------------------------

    def _apply_backpressure(self, full: bool) -> None:
        if full and not self._paused:
            self._source.pause_all()
            self._paused = True
        elif not full and self._paused:
            self._source.resume_all()
            self._paused = False

    def _start(self, record: InboundRecord) -> None:
        partition: Partition = (record.topic, record.partition)
        self._ledger.started(partition, record.offset)
        key = (record.topic, record.partition, record.key)
        before = self._last_by_key.get(key)
        if before is not None and before.done():
            before = None
        self._last_by_key[key] = self._pool.submit(self._work, record, before)

    def _work(self, record: InboundRecord, before: Future[TaskResult] | None) -> TaskResult:
        if before is not None:
            before.exception()  # same client on the same partition: keep their order
        try:
            result = self._handle_with_retries(record)
        except BaseException as error:  # a bug in the loop itself: keep the record uncommitted
            log.exception("record %s could not be handled: %s", _where(record), error)
            result = TaskResult(record, "abandoned", abandoned=True)
        self._done.put(result)
        return result

    def _complete_finished(self, wait_s: float = 0.0) -> None:
        """On the loop's thread: track new jobs, then commit every partition's finished prefix."""
        try:
            first = self._done.get(timeout=wait_s) if wait_s else self._done.get_nowait()
        except queue.Empty:
            first = None
        if first is not None:
            self._finished_unacked.append(first)
        while True:
            try:
                self._finished_unacked.append(self._done.get_nowait())
            except queue.Empty:
                break
        if not self._finished_unacked:
            return
        self._last_by_key = {k: f for k, f in self._last_by_key.items() if not f.done()}
        finished, self._finished_unacked = self._finished_unacked, []
        for result in finished:
            if self._tracker is not None and result.executor_event is not None:
                self._tracker.track(result.executor_event, result.record.partition)
        try:
            self._sink.flush()
        except PublishError as error:
            log.warning("tracking records not acknowledged yet, will retry: %s", error)
            self._observer.failure("publish")
            self._finished_unacked = finished
            return
        for result in finished:
            if result.abandoned:
                continue  # never marked finished: the partition's commit stops before it
            self._ledger.finished((result.record.topic, result.record.partition), result.record.offset)
            self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1
            stamp = result.record.timestamp_ms
            latency = max(0.0, self._clock() - stamp / 1000) if stamp else None
            self._observer.consumed(result.outcome, latency)
        self._source.commit_offsets(self._ledger.committable())

    # --- one record ---------------------------------------------------------------------------------

    def _handle_with_retries(self, record: InboundRecord) -> TaskResult:
        started = time.monotonic()
        attempt = 0
        told_capacity = False
        while True:
            try:
                outcome, executor_event = self._dispatch(record, retry=attempt > 0)
                self._sink.flush()
                return TaskResult(record, outcome, executor_event)
            except (TransientError, PublishError) as error:
                capacity = isinstance(error, CapacityError)
                kind = (
                    "capacity" if capacity else "publish" if isinstance(error, PublishError) else "transient"
                )
                self._observer.failure(kind)
                if self._stopping.is_set():
                    return TaskResult(record, "abandoned", abandoned=True)
                if time.monotonic() - started > self._settings.retry.give_up_s:
                    return self._give_up(record, error)
                if capacity and not told_capacity:
                    told_capacity = self._tell(record, MSG_WAITING_FOR_CAPACITY.format(error))
                delay = self._settings.retry.delay(attempt, capacity=capacity)
                log.warning(
                    "retrying %s in %.1fs after a transient failure: %s", _where(record), delay, error
                )
                attempt += 1
                self._sleep(delay)

    def _tell(self, record: InboundRecord, message: str) -> bool:
        try:
            raw = _decode(record)
            self._emitter.status(raw, Status.PENDING, message)
            self._sink.flush()
        except (Unroutable, PublishError):
            return False
        return True

    def _give_up(self, record: InboundRecord, error: Exception) -> TaskResult:
        waited = self._settings.retry.give_up_s
        message = f"Benchmark creation failed. SageMaker kept failing for {waited:.0f}s: {error}"
        try:
            raw = _decode(record)
            self._emitter.status(raw, Status.ERROR, message)
            self._dead_letter(record, message)
            self._sink.flush()
        except (Unroutable, PublishError):
            return TaskResult(record, "abandoned", abandoned=True)
        return TaskResult(record, "gave-up")

    def _dispatch(self, record: InboundRecord, *, retry: bool) -> tuple[str, dict[str, Any] | None]:
        try:
            raw = _decode(record)
        except Unroutable as error:
            self._dead_letter(record, str(error))
            return "dead-letter", None
        with log_context(action_id=str(raw["action_id"])):
            return self._route(record, raw, retry=retry)

    def _route(
        self, record: InboundRecord, raw: Mapping[str, Any], *, retry: bool
    ) -> tuple[str, dict[str, Any] | None]:
        try:
            if record.topic == self._settings.cmd_submit_topic:
                return "command-" + self._commands.handle(raw), None
            result = self._submissions.handle(raw, retry=retry)
            return "submission-" + result.value, result.executor_event
        except NotForUs as error:
            self._dead_letter(record, str(error))
            return "dead-letter", None
        except (TransientError, PublishError):
            raise
        except Exception as error:  # a bug: say so to the user and keep the record, then carry on
            log.exception("unexpected error handling %s", _where(record))
            self._observer.failure("internal")
            self._emitter.status(
                raw,
                Status.ERROR,
                f"Internal error in the SageMaker executor ({type(error).__name__}); the request was "
                "kept for the operators to replay",
            )
            self._dead_letter(record, "unexpected error: " + "".join(traceback.format_exception(error)))
            return "internal-error", None

    def _dead_letter(self, record: InboundRecord, reason: str) -> None:
        log.warning("dead-lettering %s: %s", _where(record), reason.splitlines()[0])
        self._observer.failure("dead_letter")
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
