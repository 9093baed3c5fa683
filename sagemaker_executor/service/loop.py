"""The consumer loop: poll, run records concurrently, publish, wait for acks, commit in order.

Owned here: what "done" means for a record, how many run at once, and what happens when one fails.

* **Every record ends.** A record ends answered (a status, a command response, the executor event) or
  dead-lettered with its reason, and only then counts as done. Whatever a handler raises, and
  wherever (decoding, routing, validation, AWS, publishing, the error path itself), the record still
  ends: an unexpected exception is answered with an ERROR and dead-lettered with the traceback, and if
  even that fails, the minimal dead letter (``service.records``) -- source topic, partition, offset,
  reason and a bounded excerpt, which always fits -- ends it. "Abandoned" is not an end. The only
  thing that is not an end is a wait: a record whose dependency is failing is retried later.
* **Done means acknowledged.** A record is done when every event it caused, including its job's
  tracking record, has been acknowledged by the broker (``acks=all``). Offsets are committed per
  partition only up to the first record not yet done
  (:class:`~sagemaker_executor.service.offsets.OffsetLedger`), so a crash at any point redelivers every
  unfinished record, and the handlers make redelivery harmless.
* **Concurrent; ordered only per action.** Up to ``max_in_flight`` records are handled at once on a
  thread pool, whatever their client. Records about the same action -- a redelivered duplicate, a
  cancel and the submission it targets -- run one after the other in offset order; a record waiting
  for its predecessor holds no slot.
* **Waiting holds no slot.** A record that has to wait (throttling or 5xx past botocore's retries, a
  quota, an outage) is parked with capped, jittered exponential backoff and its thread is freed;
  ``PENDING`` is not repeated. A quota wait tells the user once. Transient failures give up after
  ``give_up_s`` with an ERROR; outages never do.
* **Outages.** When the executor's own set-up fails (:class:`~sagemaker_executor.domain.errors.OutageError`:
  credentials, its bucket or role, AWS or the broker unreachable, a commit the broker does not take),
  nothing is answered with ERROR: the records wait, fetching pauses, the observer is told (``/readyz``
  turns false with the reason) and one WARNING says what is wrong and how to fix it. It ends by itself
  when a record that waited on it gets through.
* **Backpressure.** At ``max_in_flight`` running, or ``max_held`` records held (running, parked or
  waiting), or during an outage, fetching is paused while ``poll()`` goes on, so the group never sees
  the member miss ``max.poll.interval.ms``.
* **Shutdown.** :meth:`ExecutorLoop.stop` stops fetching; :meth:`ExecutorLoop.run` then lets running
  records finish for up to ``shutdown_grace_s``, commits what is done and returns; the rest is not
  committed and is redelivered to whoever owns the partition next.

The composition root (``app``) builds it; the job tracker, if any, is ticked from this loop's thread.
One attempt at a record is ``service.attempts``'; the loop's ports and settings are ``service.loopconfig``.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

from sagemaker_executor.domain.errors import CommitError, OutageError, PublishError
from sagemaker_executor.service import records
from sagemaker_executor.service.attempts import RecordAttempts, Task, TaskResult
from sagemaker_executor.service.commands import CommandHandler
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.loopconfig import LoopSettings, NullObserver, Observer, Sink, Source
from sagemaker_executor.service.offsets import OffsetLedger, Partition
from sagemaker_executor.service.outcomes import Unroutable
from sagemaker_executor.service.records import InboundRecord as InboundRecord
from sagemaker_executor.service.submission import SubmissionHandler
from sagemaker_executor.service.tracker import JobTracker

log = logging.getLogger(__name__)

LAG_REPORT_INTERVAL_S = 15.0
BUSY_POLL_MS = 50  # commits and tracking may lag this much; shorter polls cost CPU for nothing


@dataclass(order=True)
class _Parked:
    due: float
    seq: int
    task: Task = field(compare=False)


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
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._sink = sink
        self._settings = settings
        self._tracker = tracker
        self._observer = observer or NullObserver()
        self._pool = pool or ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="record")
        self._stopping = threading.Event()
        self._clock = clock
        self._monotonic = monotonic
        self._ledger = OffsetLedger()
        self._done: queue.Queue[TaskResult] = queue.Queue()
        self._active: dict[Partition, int] = {}  # records running on the pool, per partition
        self._revoked: set[Partition] = set()  # lost to the group: their records are not retried here
        self._parked: list[_Parked] = []
        self._seq = itertools.count()
        self._waiting: dict[str, deque[Task]] = {}  # action -> records behind the one holding it
        self._ended_unacked: list[TaskResult] = []  # ended, waiting for the tracker's record to be acked
        self._to_commit: dict[Partition, int] = {}  # committable, not yet acknowledged by the broker
        self._outages: dict[int, OutageError] = {}  # id(task) -> the outage it waits on
        self._commit_outage: OutageError | None = None
        self._outage_shown: OutageError | None = None
        self._outage_since = 0.0
        self._paused = False
        self._next_lag_report = 0.0
        self.counts: dict[str, int] = {}
        self._attempts = RecordAttempts(
            sink, emitter, submissions, commands, settings, self._observer, monotonic, self._done
        )

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
        self._start_due()
        room = min(
            self._settings.max_in_flight - self._running,
            self._settings.held_limit - self._ledger.in_flight(),
        )
        outage = self._current_outage()
        self._apply_backpressure(room <= 0 or outage is not None)
        if room <= 0 or outage is not None:
            # Keep polling (the group must see us) but wake as soon as a record finishes. Paused
            # partitions return nothing; one assigned since the pause may: it is started all the same.
            batch = self._source.poll(0, 1)
            self._complete_finished(wait_s=self._settings.poll_timeout_ms / 1000)
        else:
            # With records held, poll briefly so finished ones are committed promptly.
            busy = self._ledger.in_flight() > 0
            timeout = BUSY_POLL_MS if busy else self._settings.poll_timeout_ms
            batch = self._source.poll(timeout, min(self._settings.max_records, room))
        for record in batch:
            self._start(record)
        self._observer.set_in_flight(self._running)
        if self._tracker is not None and not self._stopping.is_set():
            self._tracker.tick()
            self._observer.set_tracked(len(self._tracker.tracked))
        self._report_lag()

    def _report_lag(self) -> None:
        now = self._monotonic()
        lag = getattr(self._source, "lag", None)
        if lag is None or now < self._next_lag_report:
            return
        self._next_lag_report = now + LAG_REPORT_INTERVAL_S
        try:
            self._observer.report_lag(lag())
        except Exception as error:  # the last values stay exported; readiness reports the broker
            log.debug("consumer lag unavailable: %s", error)

    def drain(self, grace_s: float) -> None:
        """Let running records finish for up to ``grace_s``, committing what is done."""
        self._source.pause_all()
        deadline = time.monotonic() + grace_s
        while self._running and time.monotonic() < deadline:
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
        self._revoked -= partitions
        self._observer.joined(True)
        self._next_lag_report = 0.0  # export the new partitions' lag at once
        if self._paused:
            self._source.pause_all()  # the new partitions too
        if self._tracker is not None:
            self._tracker.on_assigned(partitions)

    def on_revoked(self, partitions: set[tuple[str, int]]) -> None:
        """Finish (within the grace period) and commit what runs on partitions we are losing; records
        there that wait (parked or behind another) are left to the partitions' next owner."""
        log.info("partitions revoked: %s", describe_partitions(partitions))
        deadline = time.monotonic() + self._settings.shutdown_grace_s
        while self._running_on(partitions) and time.monotonic() < deadline:
            self._complete_finished(wait_s=0.1)
        self._complete_finished()
        self._revoked |= partitions
        self._drop_waiting(partitions)
        self._ledger.forget(partitions)
        for partition in partitions:
            self._to_commit.pop(partition, None)
        self._observer.forget_lag(partitions)  # the new owner reports them; no stale series here
        if self._tracker is not None:
            self._tracker.on_revoked(partitions)

    def _running_on(self, partitions: set[Partition]) -> int:
        return sum(self._active.get(p, 0) for p in partitions)

    def _drop_waiting(self, partitions: set[Partition]) -> None:
        for action, tasks in list(self._waiting.items()):
            self._waiting[action] = deque(t for t in tasks if t.partition not in partitions)
        dropped = [p.task for p in self._parked if p.task.partition in partitions]
        self._parked = [p for p in self._parked if p.task.partition not in partitions]
        heapq.heapify(self._parked)
        for task in dropped:
            self._outages.pop(id(task), None)
            self._release(task)

    # --- starting and finishing records -----------------------------------------------------------

    def _apply_backpressure(self, pause: bool) -> None:
        if pause and not self._paused:
            self._source.pause_all()
            self._paused = True
        elif not pause and self._paused:
            self._source.resume_all()
            self._paused = False

    def _start(self, record: InboundRecord) -> None:
        self._ledger.started((record.topic, record.partition), record.offset)
        task = self._task_for(record)
        if task.action is not None:
            if task.action in self._waiting:
                self._waiting[task.action].append(task)  # its action is busy: wait, holding no slot
                return
            self._waiting[task.action] = deque()
        self._run(task)

    def _task_for(self, record: InboundRecord) -> Task:
        task = Task(record, None, first_attempt_s=self._monotonic())
        try:
            task.raw = records.decode(record)
        except Unroutable as error:
            task.unroutable = str(error)
            return task
        except Exception as error:  # decoding must not be the step that stops a record from ending
            task.unroutable = f"could not be decoded: {type(error).__name__}: {error}"
            return task
        task.action = records.action_of(task.raw, is_command=record.topic == self._settings.cmd_submit_topic)
        return task

    @property
    def _running(self) -> int:
        return sum(self._active.values())

    def _run(self, task: Task) -> None:
        self._active[task.partition] = self._active.get(task.partition, 0) + 1
        self._pool.submit(self._attempts.work, task)

    def _start_due(self) -> None:
        now = self._monotonic()
        while (
            self._parked
            and self._parked[0].due <= now
            and self._running < self._settings.max_in_flight
            and not self._stopping.is_set()
        ):
            self._run(heapq.heappop(self._parked).task)

    def _release(self, task: Task) -> None:
        """The task ended (or was dropped): the next record about its action may run."""
        if task.action is None:
            return
        behind = self._waiting.get(task.action)
        if behind:
            self._run(behind.popleft())
        else:
            self._waiting.pop(task.action, None)

    def _complete_finished(self, wait_s: float = 0.0) -> None:
        """On the loop's thread: park what must wait, track new jobs, commit finished prefixes."""
        results = _take_all(self._done, wait_s)
        for result in results:
            task = result.task
            self._active[task.partition] -= 1
            if result.ended:
                self._outages.pop(id(task), None)
                self._ended_unacked.append(result)
                continue
            if task.partition in self._revoked:  # its partition moved on while it ran: not ours
                self._outages.pop(id(task), None)
                self._release(task)
                continue
            if task.outage is not None:
                self._outages[id(task)] = task.outage
            else:
                self._outages.pop(id(task), None)
            due = self._monotonic() + result.retry_in_s
            heapq.heappush(self._parked, _Parked(due, next(self._seq), task))
        if self._ended_unacked:
            self._finish_ended()
        self._commit()
        self._show_outage()

    def _finish_ended(self) -> None:
        """Track the new jobs and wait for their tracking records; only then may the records commit."""
        for result in self._ended_unacked:
            if self._tracker is not None and result.executor_event is not None:
                self._tracker.track(result.executor_event, result.task.record.partition)
        try:
            self._sink.flush()
        except PublishError as error:
            log.info("tracking records not acknowledged yet, will send them again: %s", error)
            self._observer.failure("publish")
            self._commit_outage = error
            return  # kept in _ended_unacked: tracked (and sent) again next round
        finished, self._ended_unacked = self._ended_unacked, []
        for result in finished:
            record = result.task.record
            self._ledger.finished((record.topic, record.partition), record.offset)
            self._release(result.task)
            assert result.outcome is not None
            self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1
            stamp = record.timestamp_ms
            latency = max(0.0, self._clock() - stamp / 1000) if stamp else None
            self._observer.consumed(result.outcome, latency)
        self._to_commit.update(self._ledger.committable())

    def _commit(self) -> None:
        if not self._to_commit:
            if self._commit_outage is not None and not self._ended_unacked:
                self._commit_outage = None
            return
        try:
            self._source.commit_offsets(dict(self._to_commit))
        except CommitError as error:
            self._commit_outage = error
            self._observer.failure("publish")
            return
        self._to_commit.clear()
        if not self._ended_unacked:
            self._commit_outage = None

    # --- outages -----------------------------------------------------------------------------------

    def _current_outage(self) -> OutageError | None:
        if self._commit_outage is not None:
            return self._commit_outage
        return next(reversed(self._outages.values()), None)

    def _show_outage(self) -> None:
        """One WARNING when an outage starts (what and how to fix it), one INFO when it ends."""
        current = self._current_outage()
        shown = self._outage_shown
        if current is not None and shown is None:
            self._outage_since = self._monotonic()
            log.warning(
                "outage of %s: %s. Fix: %s. Nothing is answered with ERROR meanwhile: fetching is "
                "paused and the %d records held wait and are retried",
                current.dependency,
                current,
                current.fix or "see the message",
                self._ledger.in_flight(),
            )
        elif current is None and shown is not None:
            log.info(
                "outage of %s over after %.0fs; fetching resumes",
                shown.dependency,
                self._monotonic() - self._outage_since,
            )
        if current is not shown:
            self._observer.outage(current)
        self._outage_shown = current


def _take_all(results: queue.Queue[TaskResult], wait_s: float) -> list[TaskResult]:
    taken = []
    try:
        taken.append(results.get(timeout=wait_s) if wait_s else results.get_nowait())
        while True:
            taken.append(results.get_nowait())
    except queue.Empty:
        pass
    return taken
