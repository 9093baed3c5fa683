"""One attempt at a record, on a pool thread of the consumer loop: it ends the record, or it waits.

``service.loop`` decodes each record once into a :class:`Task` and hands it to
:meth:`RecordAttempts.work`, as often as it has to wait; each attempt puts one :class:`TaskResult` on the
loop's queue and never raises. The attempt routes the record (``CMD_SUBMIT_TOPIC`` to
``service.commands``, the rest to ``service.submission``) and waits for the broker's acks of what it
sent. It ends the record with an outcome (the ``outcome`` label of the metrics: ``submission-*``,
``command-*``, ``dead-letter``, ``internal-error``, ``gave-up``), or returns it to be parked for
``retry_in_s`` seconds (``LoopSettings.retry``):

* an :class:`~sagemaker_executor.domain.errors.OutageError` waits, never giving up, and no ERROR is
  sent; a :class:`~sagemaker_executor.domain.errors.TransientError` waits too, a
  :class:`~sagemaker_executor.domain.errors.CapacityError` telling the user once (PENDING,
  :data:`MSG_WAITING_FOR_CAPACITY`), until ``give_up_s`` after the first attempt: then an ERROR and a
  dead letter end it;
* an unroutable record is dead-lettered; an unexpected exception in a handler is answered with an
  ERROR and dead-lettered with its traceback (``internal-error``); if even the error path raises, the
  minimal dead letter (``service.records``), which always fits, ends it. A dead letter over
  ``max_request_bytes`` goes out minimal.

Logs as the loop (``sagemaker_executor.service.loop``), whose lines these were.
"""

from __future__ import annotations

import logging
import queue
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sagemaker_executor.domain import strictjson
from sagemaker_executor.domain.errors import CapacityError, OutageError, PublishError, TransientError
from sagemaker_executor.domain.events import Status
from sagemaker_executor.domain.limits import record_size
from sagemaker_executor.logs import log_context
from sagemaker_executor.service import records
from sagemaker_executor.service.commands import CommandHandler
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.loopconfig import LoopSettings, Observer, Sink
from sagemaker_executor.service.offsets import Partition
from sagemaker_executor.service.outcomes import Unroutable
from sagemaker_executor.service.records import InboundRecord
from sagemaker_executor.service.submission import SubmissionHandler

log = logging.getLogger("sagemaker_executor.service.loop")  # these lines were the loop's: same logger name

LOGGED_ID_CHARS = 200  # an action id in the logs; longer ones are not answered anyway (domain.limits)
MSG_WAITING_FOR_CAPACITY = "Waiting for SageMaker capacity (an account limit is reached); will retry: {}"


@dataclass
class Task:
    """One record on its way to an end: decoded once, attempted until it ends."""

    record: InboundRecord
    raw: Mapping[str, Any] | None  # None: not routable, ``unroutable`` says why
    unroutable: str = ""
    action: str | None = None  # records about the same action run one after the other
    first_attempt_s: float = 0.0
    attempts: int = 0
    told_capacity: bool = False
    outage: OutageError | None = None  # the last attempt waited on an outage

    @property
    def partition(self) -> Partition:
        return (self.record.topic, self.record.partition)


@dataclass
class TaskResult:
    """An attempt's result: ended (``outcome`` set) or to be tried again in ``retry_in_s``."""

    task: Task
    outcome: str | None
    executor_event: dict[str, Any] | None = None
    retry_in_s: float = 0.0

    @property
    def ended(self) -> bool:
        return self.outcome is not None


class RecordAttempts:
    """Attempts at records, on the loop's pool threads; each result goes to ``done``, for the loop."""

    def __init__(
        self,
        sink: Sink,
        emitter: StatusEmitter,
        submissions: SubmissionHandler,
        commands: CommandHandler,
        settings: LoopSettings,
        observer: Observer,
        monotonic: Callable[[], float],
        done: queue.Queue[TaskResult],
    ) -> None:
        self._sink = sink
        self._emitter = emitter
        self._submissions = submissions
        self._commands = commands
        self._settings = settings
        self._observer = observer
        self._monotonic = monotonic
        self._done = done

    def work(self, task: Task) -> TaskResult:
        """On a pool thread: one attempt at the record. Never raises; always reports a result."""
        try:
            result = self._attempt(task)
        except BaseException as error:
            result = self._last_resort(task, error)
        self._done.put(result)
        return result

    def _attempt(self, task: Task) -> TaskResult:
        retry = task.attempts > 0
        task.attempts += 1
        try:
            outcome, executor_event = self._dispatch(task, retry=retry)
            self._sink.flush()
        except OutageError as error:
            self._settle_sends()
            return self._wait_for_outage(task, error)
        except TransientError as error:
            self._settle_sends()
            return self._wait_transient(task, error)
        task.outage = None
        return TaskResult(task, outcome, executor_event)

    def _settle_sends(self) -> None:
        """Before a record waits: what its attempt sent (its PENDING) goes out, and is not left for
        the thread's next record to wait on."""
        try:
            self._sink.flush()
        except OutageError as error:
            log.debug("sends of a waiting record not acknowledged: %s", error)

    def _wait_for_outage(self, task: Task, error: OutageError) -> TaskResult:
        self._observer.failure("publish" if isinstance(error, PublishError) else "outage")
        task.outage = error
        delay = self._settings.retry.delay(task.attempts)
        log.info("%s waits %.1fs for the %s outage to end: %s", _where(task), delay, error.dependency, error)
        return TaskResult(task, None, retry_in_s=delay)

    def _wait_transient(self, task: Task, error: TransientError) -> TaskResult:
        task.outage = None
        capacity = isinstance(error, CapacityError)
        self._observer.failure("capacity" if capacity else "transient")
        if self._monotonic() - task.first_attempt_s > self._settings.retry.give_up_s:
            return self._give_up(task, error)
        if capacity and not task.told_capacity:
            task.told_capacity = self._tell(task, MSG_WAITING_FOR_CAPACITY.format(error))
        delay = self._settings.retry.delay(task.attempts, capacity=capacity)
        log.warning("retrying %s in %.1fs after a transient failure: %s", _where(task), delay, error)
        return TaskResult(task, None, retry_in_s=delay)

    def _tell(self, task: Task, message: str) -> bool:
        if task.raw is None:
            return False
        try:
            self._emitter.status(task.raw, Status.PENDING, message)
            self._sink.flush()
        except OutageError:
            return False  # said on a later attempt
        return True

    def _give_up(self, task: Task, error: Exception) -> TaskResult:
        waited = self._settings.retry.give_up_s
        message = f"Benchmark creation failed. SageMaker kept failing for {waited:.0f}s: {error}"
        try:
            if task.raw is not None:
                self._emitter.status(task.raw, Status.ERROR, message)
            self._dead_letter(task.record, message)
            self._sink.flush()
        except OutageError as outage:
            return self._wait_for_outage(task, outage)
        return TaskResult(task, "gave-up")

    def _last_resort(self, task: Task, error: BaseException) -> TaskResult:
        """The record's handling, error path included, raised: end it with a dead letter that fits."""
        reason = f"could not be handled: {type(error).__name__}: {error}"
        try:
            log.error("%s %s", _where(task), reason, exc_info=error)
            self._observer.failure("internal")
            self._sink.send(
                self._settings.dead_letter_topic, None, records.minimal_dead_letter(task.record, reason)
            )
            self._sink.flush()
        except BaseException as second:  # not even that went out: the broker is what fails
            outage = PublishError(f"the dead letter for {_where(task)} was not acknowledged: {second!r}")
            return self._wait_for_outage(task, outage)
        return TaskResult(task, "dead-letter")

    def _dispatch(self, task: Task, *, retry: bool) -> tuple[str, dict[str, Any] | None]:
        if task.raw is None:
            self._dead_letter(task.record, task.unroutable)
            return "dead-letter", None
        with log_context(action_id=str(task.raw["action_id"])[:LOGGED_ID_CHARS]):
            return self._route(task.record, task.raw, retry=retry)

    def _route(
        self, record: InboundRecord, raw: Mapping[str, Any], *, retry: bool
    ) -> tuple[str, dict[str, Any] | None]:
        try:
            if record.topic == self._settings.cmd_submit_topic:
                return "command-" + self._commands.handle(raw), None
            result = self._submissions.handle(raw, retry=retry)
            return "submission-" + result.value, result.executor_event
        except Unroutable as error:
            self._dead_letter(record, str(error))
            return "dead-letter", None
        except TransientError:
            raise
        except Exception as error:  # a bug: say so to the user and keep the record, then carry on
            log.exception("unexpected error handling %s", records.where(record))
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
        log.warning("dead-lettering %s: %s", records.where(record), (reason.splitlines() or [""])[0])
        self._observer.failure("dead_letter")
        key = record.key.decode("utf-8", "replace")[:1024] if record.key is not None else None
        letter = strictjson.encode(records.dead_letter_record(record, reason))
        if record_size(key, letter) > self._settings.max_request_bytes:  # escapes can grow it 6-fold
            letter = records.minimal_dead_letter(record, reason)
        self._sink.send(self._settings.dead_letter_topic, key, letter)


def _where(task: Task) -> str:
    return records.where(task.record)
