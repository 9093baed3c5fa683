"""``service.tracker.JobTracker`` against in-memory SageMaker, CloudWatch Logs and Kafka, on a manual clock.

What a user and an operator get from tracking: the exact statuses and messages of each job, the
metrics of a finished one, the end of a failed job's log, the tracking records that let a restarted or
new owner go on where the last one stopped, the listing window and cadence asked of SageMaker, and
what AWS errors do. ``tests/component/test_tracker.py`` runs the same tracker against moto and the
local SageMaker; these run in milliseconds and are mutation testing's kill suite.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from sagemaker_executor.adapters.kafka import InboundRecord
from sagemaker_executor.domain.errors import JobNotFound, OutageError, TransientError
from sagemaker_executor.domain.events import executor_event
from sagemaker_executor.domain.joblog import LogEvent, LogTail, Masker, tail_of
from sagemaker_executor.domain.tracking import MetricsBatch
from sagemaker_executor.logs import current_context
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.tracker import (
    CloudWatchForwarder,
    JobTracker,
    KafkaStateStore,
    TrackerSettings,
)
from tests.builders import fetcher_event, minimal_contents
from tests.fakes import FakeClock, FakeSink

TOPIC, TRACKING, METRICS, STATUS = "BAI_APP_FETCHER", "SM_EXECUTOR_JOBS", "BAI_METRICS", "BAI_APP_STATUS"
REGION = "us-east-1"
START = 1000.0
SETTINGS = TrackerSettings(
    TOPIC, TRACKING, METRICS, REGION, interval_s=10, max_interval_s=300, resync_s=600, overlap_s=30
)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class FakeJobs:
    """SageMaker as the tracker asks it: ``ListTrainingJobs(LastModifiedTimeAfter=since)`` and
    ``DescribeTrainingJob``. A job is listed when it changed after ``since``, unless ``unlisted``
    (a listing that misses a change, as an eventually consistent one can)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.jobs: dict[str, dict[str, Any]] = {}
        self.modified: dict[str, datetime] = {}
        self.unlisted: set[str] = set()
        self.list_errors: list[Exception] = []
        self.polls: list[tuple[float, datetime]] = []  # (clock when asked, since)
        self.described: list[str] = []
        self.vanishing: set[str] = set()  # listed, but gone by the time they are described

    def set(self, name: str, status: str, secondary: str, **details: Any) -> None:
        self.jobs[name] = {
            "TrainingJobName": name,
            "TrainingJobStatus": status,
            "SecondaryStatus": secondary,
            **details,
        }
        self.modified[name] = at(self.clock())

    def list_changed(self, since: datetime) -> list[dict[str, Any]]:
        self.polls.append((self.clock(), since))
        if self.list_errors:
            raise self.list_errors.pop(0)
        return [
            {k: job[k] for k in ("TrainingJobName", "TrainingJobStatus", "SecondaryStatus")}
            for name, job in self.jobs.items()
            if name not in self.unlisted and self.modified[name] > since
        ]

    def describe(self, job_name: str) -> dict[str, Any]:
        self.described.append(job_name)
        if job_name not in self.jobs or job_name in self.vanishing:
            raise JobNotFound(job_name)
        return dict(self.jobs[job_name])

    def since(self) -> list[datetime]:
        return [since for _, since in self.polls]


class FakeLogs:
    """CloudWatch Logs for a failed job: its lines (masked as the real reader masks them) or an error."""

    def __init__(
        self, lines: list[str] | None = None, error: Exception | None = None, problem: str | None = None
    ) -> None:
        self.lines = lines or []
        self.error = error
        self.problem = problem
        self.calls: list[tuple[str, float | None, tuple[str | None, str | None]]] = []

    def tail(self, job_name: str, masker: Masker, *, budget_s: float | None = None) -> LogTail:
        self.calls.append((job_name, budget_s, current_context()))
        if self.error is not None:
            raise self.error
        events = [LogEvent("algo-1", i, line) for i, line in enumerate(self.lines)]
        return tail_of(job_name, {"algo-1": events}, 1, masker, self.problem)


class Rig:
    """One tracker (one replica) with its sink; ``restarted`` is a new one reading what this one published."""

    def __init__(
        self,
        clock: FakeClock | None = None,
        jobs: FakeJobs | None = None,
        published: FakeSink | None = None,
        logs: FakeLogs | None = None,
        settings: TrackerSettings = SETTINGS,
    ) -> None:
        self.clock = clock or FakeClock(START)
        self.jobs = jobs or FakeJobs(self.clock)
        self.sink = FakeSink()
        self.published = published or self.sink  # the compacted tracking topic this replica reads
        self.reads: list[set[int]] = []
        self.batches: list[MetricsBatch] = []
        emitter = StatusEmitter(self.sink, status_topic=STATUS, node="n", clock_ms=lambda: 0)
        self.tracker = JobTracker(
            self.jobs,
            self.sink,
            emitter,
            KafkaStateStore(self.read),
            settings,
            cloudwatch=CloudWatchForwarder(self, REGION),
            logs=logs,
            clock=self.clock,
        )

    # the compacted topic, as KafkaStateStore reads it
    def read(self, partitions: Any) -> list[InboundRecord]:
        wanted = set(partitions)
        self.reads.append(wanted)
        return [
            InboundRecord(
                s.topic,
                s.partition or 0,
                offset,
                s.key.encode() if s.key is not None else None,
                json.dumps(s.value).encode() if s.value is not None else None,
                0,
            )
            for offset, s in enumerate(self.published.acked)
            if s.topic == TRACKING and s.partition in wanted
        ]

    # the CloudWatch publisher's queue
    def submit(self, batch: MetricsBatch) -> None:
        self.batches.append(batch)

    def restarted(self) -> Rig:
        return Rig(self.clock, self.jobs, published=self.sink)

    def run(self, seconds: float, step: float = 10) -> None:
        """Tick now, then every ``step`` seconds for ``seconds``."""
        self.tracker.tick()
        for _ in range(int(seconds // step)):
            self.clock.advance(step)
            self.tracker.tick()

    def statuses(self, name: str) -> list[str]:
        return [e["payload"]["status"] for e in self.sink.on(STATUS) if e["action_id"] == name]

    def messages(self, name: str, status: str | None = None) -> list[str]:
        return [
            e["payload"]["message"]
            for e in self.sink.on(STATUS)
            if e["action_id"] == name and (status is None or e["payload"]["status"] == status)
        ]

    def records(self, name: str) -> list[tuple[int | None, Any]]:
        """(partition, value) of each acknowledged tracking record of ``name``; None is a tombstone."""
        return [(s.partition, s.value) for s in self.sink.acked if s.topic == TRACKING and s.key == name]


def job_event(name: str, labels: dict[str, str] | None = None, **custom_params: Any) -> dict[str, Any]:
    info = {"description": "d", "execution_engine": "aws.sagemaker", "labels": labels or {}}
    contents = minimal_contents(info=info, custom_params=custom_params or None)
    return executor_event(fetcher_event(contents, action_id=name), name)


def reported(rig: Rig, name: str) -> Any:
    """What the last tracking record of ``name`` says was reported (None: a tombstone)."""
    value = rig.records(name)[-1][1]
    return None if value is None else value["reported"]


# ------------------------------------------------------------------------------- statuses and records


def test_each_change_is_reported_once_in_order_and_the_record_follows_then_a_tombstone() -> None:
    rig = Rig()
    event = job_event("job-a", labels={"task": "resnet"})
    rig.tracker.track(event, partition=2)
    assert rig.sink.pending[-1].value["created_ms"] == 1_000_000 and rig.sink.pending[-1].partition == 2
    rig.sink.flush()
    # another team's job in the same account comes first in the listing: skipped, not a stop
    rig.jobs.set("not-ours", "InProgress", "Training")
    rig.jobs.set("job-a", "InProgress", "Starting")
    rig.run(10)
    assert reported(rig, "job-a") == {"status": "InProgress", "secondary": "Starting"}
    rig.jobs.set("job-a", "InProgress", "Training")
    rig.run(20)
    assert reported(rig, "job-a") == {"status": "InProgress", "secondary": "Training"}
    rig.jobs.set("job-a", "InProgress", "Uploading")
    rig.run(10)
    start = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
    rig.jobs.set(
        "job-a",
        "Completed",
        "Completed",
        TrainingStartTime=start,
        TrainingEndTime=start.replace(minute=2, second=5),
        BillableTimeInSeconds=130,
    )
    rig.run(30)
    assert rig.statuses("job-a") == ["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"]
    assert rig.statuses("not-ours") == []
    messages = rig.messages("job-a")
    assert messages[0] == "SageMaker is starting the training job (training job job-a: InProgress/Starting)"
    assert "Logs: CloudWatch log group /aws/sagemaker/TrainingJobs, streams job-a/algo-*" in messages[1]
    assert f"https://{REGION}.console.aws.amazon.com/" in messages[1]
    assert messages[3] == (
        "Benchmark finished: training job job-a completed; wall time 2m05s, billable time 2m10s"
    )
    statuses = rig.sink.on(STATUS)
    assert all(s["payload"]["src_event"]["action_id"] == "job-a" for s in statuses)
    # one record per change on the job's partition, then the tombstone; nothing tracked any more
    records = rig.records("job-a")
    assert [p for p, _ in records] == [2] * 5
    assert [v["reported"]["secondary"] for _, v in records[1:4]] == ["Starting", "Training", "Uploading"]
    assert records[-1] == (2, None)
    assert rig.tracker.tracked == {}
    assert rig.jobs.described == ["job-a"]  # only the ending is described
    rig.run(60)
    assert rig.statuses("job-a") == ["PENDING", "RUNNING", "RUNNING", "SUCCEEDED"]


def test_a_redelivered_submission_resends_the_record_with_what_was_reported() -> None:
    rig = Rig()
    event = job_event("again")
    rig.tracker.track(event, partition=1)
    rig.jobs.set("again", "InProgress", "Training")
    rig.run(0)
    first = rig.records("again")[-1][1]
    rig.clock.advance(5)
    rig.tracker.track(event, partition=1)
    rig.sink.flush()
    assert rig.records("again")[-1] == (1, first)
    assert first["reported"] == {"status": "InProgress", "secondary": "Training"}
    assert first["created_ms"] == 1_000_000
    rig.run(30)
    assert rig.statuses("again") == ["RUNNING"]


def test_a_restarted_owner_reloads_the_records_and_reports_only_what_changed() -> None:
    first = Rig()
    first.tracker.on_assigned({(TOPIC, 0)})
    first.tracker.track(job_event("r", labels={"k": "v"}, merge=True, region="eu-west-1"), partition=0)
    first.jobs.set("r", "InProgress", "Starting")
    first.run(10)
    first.jobs.set("r", "InProgress", "Training")
    first.run(10)
    assert first.statuses("r") == ["PENDING", "RUNNING"]
    # kill -9; another replica takes partition 0 and reads what the first published
    second = first.restarted()
    second.clock.advance(100)
    second.tracker.on_assigned({(TOPIC, 0)})
    assert second.tracker.tracked == first.tracker.tracked
    second.run(30)
    assert second.statuses("r") == []
    second.jobs.set("r", "Completed", "Completed")
    second.run(10)
    assert second.statuses("r") == ["SUCCEEDED"]
    assert second.records("r")[-1] == (0, None)


def test_a_status_the_broker_did_not_acknowledge_is_sent_again_and_never_lost() -> None:
    rig = Rig()
    rig.tracker.track(job_event("p"), partition=0)
    rig.sink.flush()
    rig.jobs.set("p", "InProgress", "Training")
    rig.sink.fail_next_flush = True
    rig.run(0)
    assert rig.statuses("p") == [] and rig.records("p")[-1][1]["reported"] is None
    rig.run(20)
    assert rig.statuses("p") == ["RUNNING"]
    assert reported(rig, "p") == {"status": "InProgress", "secondary": "Training"}


# ------------------------------------------------------------------------- cadence and listing window


def test_polls_every_interval_listing_since_the_last_poll_and_resyncs_from_the_oldest_job() -> None:
    rig = Rig()
    rig.tracker.track(job_event("steady"), partition=0)
    rig.jobs.set("steady", "InProgress", "Training")
    rig.run(620, step=5)  # ticks twice as often as the interval
    times = [t for t, _ in rig.jobs.polls]
    assert times == [START + 10 * i for i in range(63)]
    since = rig.jobs.since()
    assert all(s.tzinfo is not None for s in since)
    assert since[0] <= at(START - 30)  # the first listing covers the job's creation, with the overlap
    expected = [at(t - 10 - 30) for t in times[1:]]  # since the previous poll, less the overlap
    expected[59] = at(START - 30)  # 600 s on: everything since the oldest tracked job was created
    assert since[1:] == expected
    assert rig.statuses("steady") == ["RUNNING"]
    assert rig.jobs.described == []  # the resync listed it: nothing to describe


def test_a_failing_listing_backs_off_doubling_then_polls_every_interval_again(caplog) -> None:
    rig = Rig()
    rig.tracker.track(job_event("t"), partition=0)
    rig.jobs.set("t", "InProgress", "Training")
    rig.jobs.list_errors = [TransientError("ThrottlingException: Rate exceeded")] * 3
    with caplog.at_level(logging.WARNING, logger="sagemaker_executor.service.tracker"):
        rig.run(170, step=1)
    times = [t - START for t, _ in rig.jobs.polls]
    assert times == [0, 20, 60, 140, 150, 160, 170]
    assert rig.statuses("t") == ["RUNNING"]
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings[:3] == [
        f"job tracking: next poll in {wait}s after a failure: ThrottlingException: Rate exceeded"
        for wait in (20, 40, 80)
    ]


def test_a_change_during_a_listing_outage_is_not_skipped_when_a_new_job_comes_meanwhile() -> None:
    rig = Rig()
    rig.tracker.track(job_event("old"), partition=0)
    rig.jobs.set("old", "InProgress", "Training")
    rig.run(0)
    rig.jobs.list_errors = [TransientError("ThrottlingException")] * 3  # polls at +10, +30, +70 fail
    rig.clock.advance(5)
    rig.jobs.set("old", "InProgress", "Uploading")
    rig.clock.advance(5)
    rig.run(130)  # up to +140, the next poll at +150
    assert rig.statuses("old") == ["RUNNING"]
    rig.tracker.track(job_event("new"), partition=0)
    rig.run(10)
    assert rig.messages("old")[-1].startswith("The benchmark has finished; SageMaker is uploading")


def test_a_job_missing_from_the_resync_listing_is_described_once() -> None:
    rig = Rig()
    for name in ("changed", "same", "deleted"):
        rig.tracker.track(job_event(name), partition=0)
        rig.jobs.set(name, "InProgress", "Training")
    rig.run(0)
    assert rig.jobs.described == []
    rig.jobs.unlisted = {"changed", "same"}  # a listing that misses them
    rig.jobs.set("changed", "InProgress", "Uploading")
    del rig.jobs.jobs["deleted"]  # deleted while nobody looked: never listed again
    rig.run(590)
    assert rig.jobs.described == []
    rig.run(10)  # the resync, 600 s after the first poll
    assert sorted(rig.jobs.described) == ["changed", "deleted", "same"]
    assert rig.statuses("changed") == ["RUNNING", "RUNNING"]
    assert rig.statuses("same") == rig.statuses("deleted") == ["RUNNING"]
    assert set(rig.tracker.tracked) == {"changed", "same"}
    assert reported(rig, "changed") == {"status": "InProgress", "secondary": "Uploading"}
    assert rig.records("deleted")[-1] == (0, None)


def test_a_job_gone_before_its_ending_could_be_described_is_dropped_without_a_status() -> None:
    rig = Rig()
    rig.tracker.track(job_event("vanish"), partition=3)
    rig.jobs.set("vanish", "Completed", "Completed")
    rig.jobs.vanishing.add("vanish")
    rig.run(0)
    assert rig.statuses("vanish") == []
    assert rig.records("vanish")[-1] == (3, None) and rig.tracker.tracked == {}


# ----------------------------------------------------------------------------------------- region


def test_the_log_link_points_at_the_jobs_own_region_else_the_default() -> None:
    rig = Rig()
    rig.tracker.track(job_event("eu", region="eu-west-1"), partition=0)
    rig.tracker.track(job_event("here"), partition=0)
    rig.jobs.set("eu", "InProgress", "Training")
    rig.jobs.set("here", "InProgress", "Training")
    rig.run(0)
    assert (
        "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1" in rig.messages("eu")[0]
    )
    assert (
        f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}" in rig.messages("here")[0]
    )


# ---------------------------------------------------------------------------------------- metrics


FINAL_METRICS = [
    {"MetricName": "accuracy", "Value": 0.9, "Timestamp": datetime(2024, 1, 1, tzinfo=UTC)},
    {"MetricName": "loss", "Value": 0.25},
]


def test_a_finished_jobs_metrics_go_to_the_metrics_topic_with_the_jobs_labels() -> None:
    rig = Rig()
    event = job_event("m", labels={"task_name": "resnet"})
    rig.tracker.track(event, partition=0)
    rig.jobs.set("m", "Completed", "Completed", FinalMetricDataList=FINAL_METRICS)
    rig.run(0)
    assert rig.statuses("m") == ["SUCCEEDED", "METRICS AVAILABLE"]
    assert rig.messages("m", "METRICS AVAILABLE") == ["Metrics available: accuracy=0.9, loss=0.25"]
    labels = {"action-id": "m", "client-id": event["client_id"], "task_name": "resnet"}
    assert rig.sink.on(METRICS) == [
        {"name": "accuracy", "value": 0.9, "timestamp": 1_704_067_200_000, "labels": labels},
        {"name": "loss", "value": 0.25, "timestamp": 0, "labels": labels},
    ]
    assert {s.key for s in rig.sink.acked if s.topic == METRICS} == {event["client_id"]}
    assert rig.batches == []  # no custom_params.merge: nothing for CloudWatch


def test_merge_hands_the_metrics_to_cloudwatch_in_the_jobs_region_with_its_dashboard() -> None:
    rig = Rig()
    rig.tracker.track(job_event("cw", {"team": "x"}, merge=True, dashboard="d1", region="eu-west-1"), 0)
    rig.tracker.track(job_event("cw-default", merge=True), 0)
    for name in ("cw", "cw-default"):
        rig.jobs.set(name, "Completed", "Completed", FinalMetricDataList=FINAL_METRICS)
    rig.run(0)
    metrics = [("accuracy", 0.9, 1_704_067_200_000), ("loss", 0.25, 0)]
    assert rig.batches == [
        MetricsBatch(
            region="eu-west-1", job_name="cw", labels={"team": "x"}, metrics=metrics, dashboard="d1"
        ),
        MetricsBatch(region=REGION, job_name="cw-default", labels={}, metrics=metrics, dashboard=None),
    ]


def test_a_job_that_ended_without_metrics_gets_no_metrics_status() -> None:
    rig = Rig()
    rig.tracker.track(job_event("none", merge=True), partition=0)
    rig.jobs.set("none", "Stopped", "Stopped")
    rig.run(0)
    assert rig.statuses("none") == ["CANCELED"]
    assert rig.sink.on(METRICS) == [] and rig.batches == []


# -------------------------------------------------------------------------------- a failed job's log


def failed(rig: Rig, name: str, reason: str = "AlgorithmError: exit code 1", **details: Any) -> None:
    rig.tracker.track(job_event(name), partition=0)
    rig.jobs.set(name, "Failed", "Failed", FailureReason=reason, **details)


def test_a_failed_jobs_status_carries_its_reason_and_the_end_of_its_log_masked() -> None:
    logs = FakeLogs([f"epoch {i}" for i in range(40)] + ["psql -W pg-pass-4711", "ValueError: bad shape"])
    rig = Rig(logs=logs, settings=TrackerSettings(TOPIC, TRACKING, METRICS, REGION, log_budget_s=7))
    failed(rig, "f", "connect failed\nfor password pg-pass-4711", Environment={"DB_PASSWORD": "pg-pass-4711"})
    rig.run(0)
    assert rig.statuses("f") == ["FAILED"]
    headline, head, *lines = rig.messages("f")[0].split("\n")
    assert headline == "Benchmark failed: connect failed for password *** (training job f Failed)"
    assert head == "Last 30 lines of the log (CloudWatch Logs /aws/sagemaker/TrainingJobs, streams f/algo-*):"
    assert lines[-2:] == ["psql -W ***", "ValueError: bad shape"] and len(lines) == 30
    # read once, within the budget, with the job's log context (action and job on every line logged)
    assert logs.calls == [("f", 7, ("f", "f"))]


def test_only_a_failure_reads_the_log_and_a_limit_stopping_the_job_is_one() -> None:
    logs = FakeLogs(["killed"])
    rig = Rig(logs=logs)
    for name, status in (("ok", "Completed"), ("stopped", "Stopped")):
        rig.tracker.track(job_event(name), partition=0)
        rig.jobs.set(name, status, status)
    rig.tracker.track(job_event("too-long"), partition=0)
    rig.jobs.set("too-long", "Stopped", "MaxRuntimeExceeded")
    rig.run(0)
    assert [c[0] for c in logs.calls] == ["too-long"]
    assert rig.statuses("too-long") == ["FAILED"]
    assert rig.messages("too-long")[0].split("\n") == [
        "Benchmark failed: the job ran longer than its maximum runtime (training job too-long Stopped)",
        "Last 1 lines of the log (CloudWatch Logs /aws/sagemaker/TrainingJobs, streams too-long/algo-*):",
        "killed",
    ]


def test_without_a_log_reader_a_failure_is_its_headline_alone() -> None:
    rig = Rig()
    failed(rig, "plain")
    rig.run(0)
    assert rig.messages("plain") == [
        "Benchmark failed: AlgorithmError: exit code 1 (training job plain Failed)"
    ]


def test_an_outage_of_cloudwatch_logs_pauses_reading_for_log_pause_s(caplog) -> None:
    fix = "grant logs:DescribeLogStreams to the executor's role"
    logs = FakeLogs(error=OutageError("aws", "AccessDeniedException: not authorized", fix))
    rig = Rig(logs=logs)
    failed(rig, "f1")
    with caplog.at_level(logging.WARNING, logger="sagemaker_executor.service.tracker"):
        rig.run(0)
    assert caplog.records[0].getMessage() == (
        f"CloudWatch Logs: AccessDeniedException: not authorized. Fix: {fix}; "
        "failed jobs are reported without their log for 300s"
    )
    assert rig.messages("f1")[0].split("\n")[1] == (
        "The job's log could not be read (AccessDeniedException: not authorized); "
        "it is in CloudWatch Logs /aws/sagemaker/TrainingJobs, streams f1/algo-*."
    )
    rig.clock.advance(290)
    failed(rig, "f2")
    rig.run(0)
    assert rig.messages("f2")[0].split("\n")[1] == (
        "The job's log could not be read (not read: CloudWatch Logs failed moments ago, and is asked "
        "again in 10s); it is in CloudWatch Logs /aws/sagemaker/TrainingJobs, streams f2/algo-*."
    )
    assert [c[0] for c in logs.calls] == ["f1"]
    rig.clock.advance(10)  # the pause is over: asked again
    failed(rig, "f3")
    rig.run(0)
    assert [c[0] for c in logs.calls] == ["f1", "f3"]


def test_a_transient_error_of_cloudwatch_logs_is_logged_without_a_fix(caplog) -> None:
    rig = Rig(logs=FakeLogs(error=TransientError("ThrottlingException: Rate exceeded")))
    failed(rig, "t1")
    with caplog.at_level(logging.WARNING, logger="sagemaker_executor.service.tracker"):
        rig.run(0)
    assert caplog.records[0].getMessage() == (
        "CloudWatch Logs: ThrottlingException: Rate exceeded; "
        "failed jobs are reported without their log for 300s"
    )
    assert "(ThrottlingException: Rate exceeded)" in rig.messages("t1")[0]


def test_a_log_read_in_part_is_shown_with_the_problem_and_pauses_reading_too(caplog) -> None:
    logs = FakeLogs(["last words"], problem="ThrottlingException on algo-2")
    rig = Rig(logs=logs)
    failed(rig, "part")
    with caplog.at_level(logging.WARNING, logger="sagemaker_executor.service.tracker"):
        rig.run(0)
    assert [r.getMessage() for r in caplog.records] == [
        "CloudWatch Logs: ThrottlingException on algo-2; failed jobs are reported without their log for 300s"
    ]
    head, line = rig.messages("part")[0].split("\n")[1:]
    assert head.endswith("streams part/algo-*, read in part: ThrottlingException on algo-2):")
    assert line == "last words"
    rig.clock.advance(100)
    failed(rig, "next")
    rig.run(0)
    assert [c[0] for c in logs.calls] == ["part"]
    assert "asked again in 200s" in rig.messages("next")[0]


def test_a_defect_reading_the_log_costs_neither_the_status_nor_the_next_jobs_log() -> None:
    logs = FakeLogs(error=KeyError("oops"))
    rig = Rig(logs=logs)
    failed(rig, "bug1")
    rig.run(0)
    assert rig.statuses("bug1") == ["FAILED"]
    assert rig.messages("bug1")[0].split("\n")[1] == (
        "The job's log could not be read (internal error of the executor: KeyError); "
        "it is in CloudWatch Logs /aws/sagemaker/TrainingJobs, streams bug1/algo-*."
    )
    rig.clock.advance(10)
    failed(rig, "bug2")
    rig.run(0)
    assert [c[0] for c in logs.calls] == ["bug1", "bug2"]  # a defect is no outage: no pause


# -------------------------------------------------------------------------------------- ownership


def test_an_assigned_partition_is_loaded_once_and_its_jobs_polled_at_once() -> None:
    earlier = Rig()
    earlier.tracker.track(job_event("old-p1"), partition=1)
    earlier.tracker.track(job_event("old-p2"), partition=2)
    earlier.jobs.set("old-p1", "InProgress", "Starting")
    earlier.run(0)
    earlier.clock.advance(200)
    rig = earlier.restarted()
    rig.tracker.track(job_event("mine"), partition=0)
    rig.jobs.set("mine", "InProgress", "Training")
    rig.run(0)  # a poll just now: the next is due in 10 s
    rig.jobs.set("old-p1", "InProgress", "Training")
    rig.clock.advance(1)
    rig.tracker.on_assigned({(TOPIC, 1), ("CMD_SUBMIT", 5)})
    rig.tracker.on_assigned({(TOPIC, 1)})  # already owned: not read again
    assert rig.reads == [{1}]
    assert set(rig.tracker.tracked) == {"mine", "old-p1"}
    rig.tracker.tick()
    assert rig.statuses("old-p1") == ["RUNNING"]
    # listed back to the loaded job's creation, less the overlap
    assert rig.jobs.since()[-1] == at(START - 30)


def test_partitions_assigned_one_by_one_are_each_read_once() -> None:
    rig = Rig()
    rig.tracker.on_assigned({(TOPIC, 0)})
    rig.tracker.on_assigned({(TOPIC, 1)})  # cooperative rebalancing: one more partition
    rig.tracker.on_assigned({(TOPIC, 0), (TOPIC, 1), (TOPIC, 2)})
    assert rig.reads == [{0}, {1}, {2}]


def test_a_revoked_partition_stops_its_jobs_and_reassigning_it_reloads_them() -> None:
    rig = Rig()
    rig.tracker.on_assigned({(TOPIC, 0), (TOPIC, 1)})
    assert rig.reads == [{0, 1}]
    rig.tracker.track(job_event("p0"), partition=0)
    rig.tracker.track(job_event("p1"), partition=1)
    rig.sink.flush()
    rig.tracker.on_revoked({(TOPIC, 1), ("CMD_SUBMIT", 0)})
    assert set(rig.tracker.tracked) == {"p0"}
    rig.jobs.set("p0", "InProgress", "Training")
    rig.jobs.set("p1", "InProgress", "Training")
    rig.run(0)
    assert rig.statuses("p1") == [] and rig.statuses("p0") == ["RUNNING"]
    rig.tracker.on_assigned({(TOPIC, 1)})
    assert rig.reads[-1] == {1}
    assert set(rig.tracker.tracked) == {"p0", "p1"}
    rig.tracker.tick()
    assert rig.statuses("p1") == ["RUNNING"]


def test_nothing_tracked_means_no_calls_at_all() -> None:
    rig = Rig()
    rig.tracker.on_assigned({(TOPIC, 0)})
    rig.run(100)
    assert rig.jobs.polls == []


@pytest.mark.parametrize("other_topic_only", [True, False])
def test_assignments_of_other_topics_load_nothing(other_topic_only: bool) -> None:
    rig = Rig()
    partitions = {("CMD_SUBMIT", 0)} if other_topic_only else set()
    rig.tracker.on_assigned(partitions)
    assert rig.reads == []


class RepeatingJobs(FakeJobs):
    """A listing whose pages were read while the jobs changed: each job is on two pages, the second
    (read later) seeing it as it is by then."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.earlier: dict[str, dict[str, Any]] = {}

    def list_changed(self, since: datetime) -> list[dict[str, Any]]:
        listing = super().list_changed(since)
        return [*[self.earlier.get(s["TrainingJobName"], s) for s in listing], *listing]


def test_a_job_on_two_pages_of_one_listing_is_reported_once_as_last_seen() -> None:
    jobs = RepeatingJobs(FakeClock(START))
    rig = Rig(jobs.clock, jobs)
    rig.tracker.track(job_event("twice"), partition=0)
    jobs.set("twice", "InProgress", "Training")
    rig.run(0)
    assert rig.statuses("twice") == ["RUNNING"]
    jobs.earlier["twice"] = {
        "TrainingJobName": "twice",
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Training",
    }
    jobs.set("twice", "InProgress", "Uploading")
    rig.run(10)
    assert rig.statuses("twice") == ["RUNNING", "RUNNING"]
    assert "Uploading" in rig.messages("twice")[-1]
    assert reported(rig, "twice") == {"status": "InProgress", "secondary": "Uploading"}
    assert [value["reported"]["secondary"] for _, value in rig.records("twice")[1:]] == [
        "Training",
        "Uploading",
    ]
