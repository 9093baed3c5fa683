"""The whole service layer on in-memory adapters, driven round by round on a clock the test moves.

Used by the unit tests of the loop and its handlers (``tests/unit``). Integration tests use the real
parts instead (``tests/integration/conftest.py``).
"""

from __future__ import annotations

from typing import Any

from sagemaker_executor.adapters import sourcedir
from sagemaker_executor.adapters.kafka import InboundRecord
from sagemaker_executor.domain.errors import OutageError
from sagemaker_executor.domain.limits import DEFAULT_MAX_REQUEST_BYTES
from sagemaker_executor.service.commands import CommandHandler
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.loop import ExecutorLoop
from sagemaker_executor.service.loopconfig import LoopSettings, NullObserver
from sagemaker_executor.service.submission import SubmissionHandler, SubmissionSettings
from sagemaker_executor.service.tracker import JobTracker, TrackerSettings
from tests.builders import SITE
from tests.fakes import FakeClock, FakeJobs, FakeScripts, FakeSink, FakeSource, InlineExecutor

FETCHER, CMD, DLQ = "BAI_APP_FETCHER", "CMD_SUBMIT", "DEAD"
STATUS, EXECUTOR, RETURN, TRACKING = "BAI_APP_STATUS", "BAI_APP_EXECUTOR", "CMD_RETURN", "SM_EXECUTOR_JOBS"


class ListableJobs(FakeJobs):
    """FakeJobs that the real job tracker can poll (nothing ever changes)."""

    def list_changed(self, since: Any) -> list[Any]:
        return []


class NoTrackingState:
    def load(self, partitions: Any) -> list[Any]:
        return []


class RecordingObserver(NullObserver):
    """Keeps what the loop reports that the tests look at: outages, failures, outcomes."""

    def __init__(self) -> None:
        self.outages: list[OutageError | None] = []
        self.failures: list[str] = []
        self.outcomes: list[str] = []

    def outage(self, error: OutageError | None) -> None:
        self.outages.append(error)

    def failure(self, kind: str) -> None:
        self.failures.append(kind)

    def consumed(self, outcome: str, latency_s: float | None) -> None:
        self.outcomes.append(outcome)


class Harness:
    def __init__(
        self,
        tmp_path: Any,
        records: list[InboundRecord],
        *,
        sink: FakeSink | None = None,
        tracker: Any = None,
        tracking: bool = False,
        scripts: FakeScripts | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        tracking_record: bool = True,
        observer: Any = None,
        **settings: Any,
    ) -> None:
        """``tracker``: a stand-in for the job tracker; ``tracking``: the real one (on the same sink,
        with an empty state topic); ``tracking_record``: whether submissions count a tracking record
        in their size check (``WATCH_JOBS``); ``observer``: instead of a :class:`RecordingObserver`
        (the service's own, to test the metrics); ``settings``: :class:`LoopSettings` fields."""
        self.sink = sink or FakeSink()
        self.source = FakeSource(records, self.sink)
        self.jobs = ListableJobs()
        self.clock = FakeClock()
        self.observer = observer if observer is not None else RecordingObserver()
        emitter = StatusEmitter(self.sink, status_topic=STATUS, node="test-node", clock_ms=lambda: 1000)
        if tracking:
            tracker = JobTracker(
                self.jobs,
                self.sink,
                emitter,
                NoTrackingState(),
                TrackerSettings(FETCHER, TRACKING, "METRICS", "us-east-1"),
            )
        self.loop = ExecutorLoop(
            self.source,
            self.sink,
            emitter,
            SubmissionHandler(
                self.jobs,
                scripts or FakeScripts(),
                emitter,
                SubmissionSettings(
                    SITE, EXECUTOR, str(tmp_path), 10**6, max_request_bytes, tracking=tracking_record
                ),
                sources=sourcedir,
            ),
            CommandHandler(self.jobs, emitter, RETURN),
            LoopSettings(FETCHER, CMD, DLQ, **settings),
            pool=InlineExecutor(),
            tracker=tracker,
            observer=self.observer,
            monotonic=self.clock,
        )

    def drain(self, rounds: int = 10) -> None:
        """Run the loop ``rounds`` times, a minute apart: every retry wait (at most 60 s) is over."""
        for _ in range(rounds):
            self.loop.run_once()
            self.clock.advance(61)

    def statuses(self) -> list[tuple[str, str]]:
        return [(e["payload"]["status"], e["payload"]["message"]) for e in self.sink.on(STATUS)]

    def statuses_of(self, action_id: str) -> list[str]:
        return [e["payload"]["status"] for e in self.sink.on(STATUS) if e["action_id"] == action_id]
