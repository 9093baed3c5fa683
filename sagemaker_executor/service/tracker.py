"""Tracking the jobs this service created: a status event on every change, metrics when a job ends.

Called by ``service.loop``: :meth:`JobTracker.track` for each job a submission created (before the
input record is committed), :meth:`JobTracker.tick` once per loop iteration, and the two partition
callbacks when the consumer group moves partitions.

* **Cheap at scale.** One ``ListTrainingJobs(LastModifiedTimeAfter=...)`` listing (pages of 100) per
  interval finds what changed in the whole account; only jobs that ended are described (for the
  failure reason, times and final metrics). The calls per interval depend on how many jobs *changed*,
  not on how many run. Throttling stretches the interval (capped); ``WATCH_INTERVAL_SECONDS`` sets it.
* **Survives restarts.** Each job's :class:`~sagemaker_executor.domain.tracking.TrackedJob` lives in a
  compacted topic, rewritten whenever a new status was reported and deleted (tombstone) once the
  terminal status is acknowledged. A restarted owner reloads the records and reports only changes.
* **Why a job failed.** A ``FAILED`` status carries SageMaker's reason and, below it, the last lines
  of the job's CloudWatch log (``domain.joblog``: bounded, secrets masked, hosts named), read once
  when the failure is seen. Reading them is never fatal and never long: each call is bounded
  (``cli.LOG_CALL_TIMEOUT_S`` and one retry; no new call after ``log_budget_s``); when CloudWatch
  Logs fails, the status says so and goes out anyway, and the jobs failing in the next
  ``log_pause_s`` are reported without asking it again, so an outage costs the loop one bounded wait,
  not one per job.
* **Replica-safe.** Records sit in the tracking partition numbered like the submission's input
  partition, so exactly the replica that owns input partition *p* tracks those jobs, and a rebalance
  moves tracking with ownership.

The one window left: a crash after the terminal status was acknowledged but before its tombstone
was, which repeats that terminal status once after the restart. Statuses go out first so that a
crash can repeat one but never lose one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sagemaker_executor.domain.errors import ExecutorError, JobNotFound, PublishError
from sagemaker_executor.domain.events import MetricsEvent, Status, to_wire
from sagemaker_executor.domain.joblog import LogTail, Masker
from sagemaker_executor.domain.lifecycle import (
    JobState,
    final_metrics,
    is_failure,
    needs_description,
    report_for,
)
from sagemaker_executor.domain.tracking import MetricsBatch, TrackedJob, metric_labels, tracked_job
from sagemaker_executor.logs import log_context
from sagemaker_executor.service.backoff import capped_exponential
from sagemaker_executor.service.emitter import StatusEmitter

log = logging.getLogger(__name__)


class WatchedJobs(Protocol):
    def list_changed(self, since: datetime) -> list[dict[str, Any]]: ...
    def describe(self, job_name: str) -> dict[str, Any]: ...


class TrackingSink(Protocol):
    def send(
        self, topic: str, key: str | None, value: dict[str, Any] | bytes | None, partition: int | None = None
    ) -> None: ...
    def flush(self, timeout_s: float = 60.0) -> None: ...


class StateStore(Protocol):
    def load(self, partitions: Iterable[int]) -> list[TrackedJob]: ...


class MetricsForwarder(Protocol):
    def forward(self, job: TrackedJob, metrics: list[tuple[str, float, int]]) -> None: ...


class FailureLogs(Protocol):
    def tail(self, job_name: str, masker: Masker, *, budget_s: float | None = None) -> LogTail: ...


@dataclass(frozen=True)
class TrackerSettings:
    consumer_topic: str
    tracking_topic: str
    metrics_topic: str
    region: str
    interval_s: float = 10.0
    max_interval_s: float = 300.0
    resync_s: float = 600.0
    overlap_s: float = 30.0
    log_budget_s: float = 10.0  # reading a failed job's log: no new call after this long
    log_pause_s: float = 300.0  # after CloudWatch Logs failed: failed jobs are reported without it


class JobTracker:
    def __init__(
        self,
        jobs: WatchedJobs,
        sink: TrackingSink,
        emitter: StatusEmitter,
        store: StateStore,
        settings: TrackerSettings,
        *,
        cloudwatch: MetricsForwarder | None = None,
        logs: FailureLogs | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._jobs = jobs
        self._sink = sink
        self._emitter = emitter
        self._store = store
        self._settings = settings
        self._cloudwatch = cloudwatch
        self._logs = logs
        self._logs_paused_until = 0.0
        self._clock = clock
        self._tracked: dict[str, TrackedJob] = {}
        self._owned: set[int] = set()
        # List jobs modified after this time (epoch seconds); the first poll, a resync, sets it.
        self._cursor = math.inf
        self._next_poll = 0.0
        self._next_resync = 0.0
        self._failed_polls = 0  # in a row: each doubles the interval, up to max_interval_s

    # --- ownership ---------------------------------------------------------------------------

    def on_assigned(self, partitions: set[tuple[str, int]]) -> None:
        mine = {p for topic, p in partitions if topic == self._settings.consumer_topic} - self._owned
        if not mine:
            return
        loaded = self._store.load(mine)
        self._owned |= mine
        for job in loaded:
            self._tracked[job.job_name] = job
        log.info("tracking %d jobs of partitions %s", len(loaded), sorted(mine))
        if loaded:
            self._rewind_cursor(min(job.created_ms for job in loaded) / 1000)
            self._next_poll = 0.0

    def on_revoked(self, partitions: set[tuple[str, int]]) -> None:
        gone = {p for topic, p in partitions if topic == self._settings.consumer_topic}
        self._owned -= gone
        dropped = [name for name, job in self._tracked.items() if job.partition in gone]
        for name in dropped:
            del self._tracked[name]
        if dropped:
            log.info("stopped tracking %d jobs of partitions %s", len(dropped), sorted(gone))

    @property
    def tracked(self) -> dict[str, TrackedJob]:
        return dict(self._tracked)

    # --- new jobs ------------------------------------------------------------------------------

    def track(self, executor_event: dict[str, Any], partition: int) -> None:
        """Start tracking the job of ``executor_event`` and send its tracking record.

        The loop flushes before it commits the input record, and calls this again if that flush
        failed. A job already tracked (a redelivered submission, or that second call) has its current
        record sent again, with what was reported so far: the compacted topic keeps the latest one.
        """
        job = tracked_job(executor_event, partition, int(self._clock() * 1000))
        known = self._tracked.get(job.job_name)
        if known is None:
            self._tracked[job.job_name] = job
            self._rewind_cursor(self._clock() - self._settings.overlap_s)
        else:
            job = known
        self._sink.send(self._settings.tracking_topic, job.job_name, job.to_json(), partition=job.partition)

    # --- polling -------------------------------------------------------------------------------

    def tick(self) -> None:
        """Poll SageMaker if the interval has passed and there is anything to track."""
        now = self._clock()
        if not self._tracked or now < self._next_poll:
            return
        try:
            self._poll(now)
        except (ExecutorError, PublishError) as error:
            self._failed_polls += 1
            interval = self._poll_interval()
            log.warning("job tracking: next poll in %.0fs after a failure: %s", interval, error)
        else:
            self._failed_polls = 0
        self._next_poll = self._clock() + self._poll_interval()

    def _poll_interval(self) -> float:
        return capped_exponential(
            self._settings.interval_s, self._settings.max_interval_s, self._failed_polls
        )

    def _poll(self, now: float) -> None:
        resync = now >= self._next_resync
        if resync:
            # Now and then list everything still tracked, in case a change slipped past a cursor.
            self._rewind_cursor(min(job.created_ms for job in self._tracked.values()) / 1000)
            self._next_resync = now + self._settings.resync_s
        # A listing's pages are read one after the other while jobs change, so a job can be on two of
        # them: it is reported once, as the page read last saw it.
        latest = {
            str(summary.get("TrainingJobName")): summary
            for summary in self._jobs.list_changed(datetime.fromtimestamp(self._cursor, UTC))
        }
        reported: list[tuple[TrackedJob, JobState | None]] = []
        for name, summary in latest.items():
            job = self._tracked.get(name)
            if job is None:
                continue
            state = JobState.of(summary)
            if job.reported != state:
                reported.append((job, self._report(job, state)))
        if resync:
            # A resync lists every job modified since the oldest tracked one was created, so a
            # tracked job missing from it is gone (deleted) or was never created: ask once.
            for job in [j for name, j in self._tracked.items() if name not in latest]:
                reported.append((job, self._report_described(job)))
        # Statuses first, acknowledged; only then the records that say they were sent. A failure
        # in between repeats a status on the next poll, and never loses one.
        self._sink.flush()
        for job, new_state in reported:
            if new_state is None or new_state.ended:
                self._tracked.pop(job.job_name, None)
                self._sink.send(self._settings.tracking_topic, job.job_name, None, partition=job.partition)
            else:
                updated = job.with_reported(new_state)
                self._tracked[job.job_name] = updated
                self._sink.send(
                    self._settings.tracking_topic, job.job_name, updated.to_json(), partition=job.partition
                )
        self._sink.flush()
        self._cursor = now - self._settings.overlap_s

    def _report_described(self, job: TrackedJob) -> JobState | None:
        try:
            state = JobState.of(self._jobs.describe(job.job_name))
        except JobNotFound:
            log.warning("training job %s no longer exists; no longer tracked", job.job_name)
            return None
        return self._report(job, state) if state != job.reported else state

    def _report(self, job: TrackedJob, state: JobState) -> JobState | None:
        """Publish the status for ``state`` (and metrics if it ended); None if the job vanished."""
        with log_context(action_id=job.action_id, job_name=job.job_name):
            return self._report_in_context(job, state)

    def _report_in_context(self, job: TrackedJob, state: JobState) -> JobState | None:
        description = None
        if needs_description(state):
            try:
                description = self._jobs.describe(job.job_name)
            except JobNotFound:
                log.warning("training job %s disappeared; no longer tracked", job.job_name)
                return None
            state = JobState.of(description)
        tail = self._failure_log(job, description) if is_failure(state) else None
        report = report_for(state, description, job.region or self._settings.region, tail)
        self._emitter.status(job.executor_event, report.status, report.message, src_event=job.executor_event)
        if report.final:
            self._publish_metrics(job, description or {})
        return state

    def _failure_log(self, job: TrackedJob, description: dict[str, Any] | None) -> LogTail | None:
        """The end of a failed job's log, or why it is missing; None when logs are not read at all.

        Never raises: the FAILED status goes out whatever CloudWatch Logs does.
        """
        if self._logs is None:
            return None
        now = self._clock()
        if now < self._logs_paused_until:
            return LogTail.unreadable(
                job.job_name,
                f"not read: CloudWatch Logs failed moments ago, and is asked again in "
                f"{self._logs_paused_until - now:.0f}s",
            )
        try:
            tail = self._logs.tail(
                job.job_name, Masker.of_job(description), budget_s=self._settings.log_budget_s
            )
        except ExecutorError as error:
            self._pause_logs(now, error)
            return LogTail.unreadable(job.job_name, str(error))
        except Exception as error:  # a defect here must not cost the job its FAILED status
            log.exception("reading the log of failed training job %s", job.job_name)
            return LogTail.unreadable(job.job_name, f"internal error of the executor: {type(error).__name__}")
        if tail.problem is not None:
            self._pause_logs(now, tail.problem)
        return tail

    def _pause_logs(self, now: float, error: ExecutorError | str) -> None:
        self._logs_paused_until = now + self._settings.log_pause_s
        fix = getattr(error, "fix", "")
        log.warning(
            "CloudWatch Logs: %s%s; failed jobs are reported without their log for %.0fs",
            error,
            f". Fix: {fix}" if fix else "",
            self._settings.log_pause_s,
        )

    def _publish_metrics(self, job: TrackedJob, description: dict[str, Any]) -> None:
        metrics = final_metrics(description)
        if not metrics:
            return
        labels = metric_labels(job)
        for name, value, stamp in metrics:
            event = MetricsEvent(name=name, value=value, timestamp=stamp, labels=labels)
            self._sink.send(self._settings.metrics_topic, job.client_id, to_wire(event))
        shown = ", ".join(f"{name}={value:g}" for name, value, _ in metrics)
        self._emitter.status(
            job.executor_event,
            Status.METRICS_AVAILABLE,
            f"Metrics available: {shown}",
            src_event=job.executor_event,
        )
        if job.merge and self._cloudwatch is not None:
            self._cloudwatch.forward(job, metrics)

    def _rewind_cursor(self, moment: float) -> None:
        moment -= self._settings.overlap_s
        self._cursor = min(self._cursor, moment)


class KafkaStateStore:
    """Loads tracking records from the compacted topic (the last record per job wins)."""

    def __init__(self, read: Callable[[Iterable[int]], list[Any]]) -> None:
        self._read = read

    def load(self, partitions: Iterable[int]) -> list[TrackedJob]:
        latest: dict[str, TrackedJob | None] = {}
        for record in self._read(partitions):
            key = record.key.decode("utf-8") if record.key is not None else None
            if key is None:
                continue
            if record.value is None:
                latest[key] = None
                continue
            try:
                latest[key] = TrackedJob.from_json(json.loads(record.value))
            except (ValueError, KeyError, TypeError) as error:
                log.warning("ignoring an unreadable tracking record for %s: %s", key, error)
        return [job for job in latest.values() if job is not None]


class MetricsQueue(Protocol):
    """Where finished jobs' metrics go for CloudWatch (``adapters.cloudwatch.CloudWatchPublisher``)."""

    def submit(self, batch: MetricsBatch) -> None: ...


class CloudWatchForwarder:
    """``custom_params.merge``: hands a finished job's metrics to the CloudWatch publisher's queue."""

    def __init__(self, publisher: MetricsQueue, default_region: str) -> None:
        self._publisher = publisher
        self._default_region = default_region

    def forward(self, job: TrackedJob, metrics: list[tuple[str, float, int]]) -> None:
        self._publisher.submit(
            MetricsBatch(
                region=job.region or self._default_region,
                job_name=job.job_name,
                labels=job.labels,
                metrics=metrics,
                dashboard=job.dashboard,
            )
        )
