"""Job tracking against moto with the local SageMaker on a manual clock: exact status sequences,
metrics, restarts (state reloaded from what was published) and partition moves."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws

from sagemaker_executor.adapters.sagemaker import SageMakerJobs
from sagemaker_executor.domain.errors import TransientError
from sagemaker_executor.domain.tracking import TrackedJob
from sagemaker_executor.local.sagemaker import LocalSageMaker, ManualClock, Timeline
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.tracker import JobTracker, TrackerSettings
from tests.builders import create_training_job, fetcher_event, minimal_contents
from tests.fakes import FakeSink

TOPIC, TRACKING, METRICS = "BAI_APP_FETCHER", "SM_EXECUTOR_JOBS", "BAI_METRICS"
TIMELINE = Timeline(starting=20, downloading=20, training=60, uploading=20, stopping=10)


class ReplayStore:
    """Loads tracking state from what a sink had acknowledged: the compacted topic, in memory."""

    def __init__(self, sink: FakeSink) -> None:
        self.sink = sink

    def load(self, partitions) -> list[TrackedJob]:
        latest: dict[str, Any] = {}
        for sent in self.sink.acked:
            if sent.topic == TRACKING and sent.partition in set(partitions):
                latest[sent.key] = sent.value
        return [TrackedJob.from_json(v) for v in latest.values() if v is not None]


class World:
    def __init__(self, session, clock: ManualClock) -> None:
        self.session = session
        self.clock = clock
        self.sm = session.client("sagemaker")
        self.jobs = SageMakerJobs(session, default_bucket="out", retry_attempts=2)
        self.sink = FakeSink()

    def tracker(self, sink: FakeSink | None = None, store=None, interval: float = 10) -> JobTracker:
        sink = sink or self.sink
        emitter = StatusEmitter(sink, status_topic="BAI_APP_STATUS", node="n", clock_ms=lambda: 0)
        return JobTracker(
            self.jobs,
            sink,
            emitter,
            store or ReplayStore(sink),
            TrackerSettings(TOPIC, TRACKING, METRICS, "us-east-1", interval_s=interval, overlap_s=30),
            clock=lambda: self.clock.now().timestamp(),
        )

    def create(self, name: str, labels: dict[str, str] | None = None, tags: dict[str, str] | None = None):
        create_training_job(self.sm, name, Tags=[{"Key": k, "Value": v} for k, v in (tags or {}).items()])
        info = {"description": "d", "execution_engine": "aws.sagemaker", "labels": labels or {}}
        event = fetcher_event(minimal_contents(info=info), action_id=name)
        event["payload"]["job"] = {"id": name, "output": None, "extras": {}}
        return event

    def run(self, tracker: JobTracker, seconds: int, step: int = 5) -> None:
        for _ in range(seconds // step):
            self.clock.advance(step)
            tracker.tick()

    def statuses(self, name: str, sink: FakeSink | None = None) -> list[str]:
        return [
            e["payload"]["status"] for e in (sink or self.sink).on("BAI_APP_STATUS") if e["action_id"] == name
        ]


@pytest.fixture
def world():
    clock = ManualClock()
    with mock_aws(), LocalSageMaker(clock, TIMELINE) as local:
        session = boto3.Session(region_name="us-east-1")
        session.client("s3").create_bucket(Bucket="out")
        w = World(session, clock)
        w.local = local
        yield w


def test_a_completed_job_reports_each_change_once_then_metrics(world: World) -> None:
    tracker = world.tracker()
    tracker.on_assigned({(TOPIC, 0)})
    event = world.create("job-ok", labels={"task_name": "resnet"})
    tracker.track(event, partition=0)
    world.run(tracker, 200)
    assert world.statuses("job-ok") == [
        "PENDING",
        "INITIALIZING",
        "RUNNING",
        "RUNNING",
        "SUCCEEDED",
        "METRICS AVAILABLE",
    ]
    messages = [e["payload"]["message"] for e in world.sink.on("BAI_APP_STATUS")]
    assert "/aws/sagemaker/TrainingJobs" in messages[2] and "job-ok/" in messages[2]
    assert "wall time" in messages[4]
    statuses = world.sink.on("BAI_APP_STATUS")
    assert all(s["payload"]["src_event"] == event for s in statuses)
    assert all(s["visited"][-1]["svc"] == "sm-executor" for s in statuses)
    metrics = world.sink.on(METRICS)
    assert metrics and metrics[0]["labels"] == {
        "action-id": "job-ok",
        "client-id": event["client_id"],
        "task_name": "resnet",
    }
    assert {"name", "value", "timestamp", "labels"} == set(metrics[0])
    assert [s.value for s in world.sink.acked if s.topic == TRACKING][-1] is None  # tombstone
    assert tracker.tracked == {}


def test_a_failed_job_reports_the_failure_reason(world: World) -> None:
    world.local.set_outcome("job-bad", TIMELINE.failing("AlgorithmError: out of memory"))
    tracker = world.tracker()
    tracker.track(world.create("job-bad"), partition=0)
    world.run(tracker, 200)
    assert world.statuses("job-bad")[-1] == "FAILED"
    failed = next(e for e in world.sink.on("BAI_APP_STATUS") if e["payload"]["status"] == "FAILED")
    assert "AlgorithmError: out of memory" in failed["payload"]["message"]


def test_a_stopped_job_goes_through_stopping_to_canceled(world: World) -> None:
    tracker = world.tracker()
    tracker.track(world.create("job-stop"), partition=0)
    world.run(tracker, 50)
    world.jobs.stop("job-stop")
    world.run(tracker, 60)
    statuses = world.statuses("job-stop")
    assert statuses[-2:] == ["RUNNING", "CANCELED"] and statuses.count("CANCELED") == 1
    stopping = [e["payload"]["message"] for e in world.sink.on("BAI_APP_STATUS")][-2]
    assert "Stopping" in stopping


def test_a_restarted_tracker_reports_only_what_changed_and_one_terminal_status(world: World) -> None:
    first = world.tracker()
    first.on_assigned({(TOPIC, 0)})
    for name in ("early", "late"):
        first.track(world.create(name), partition=0)
        world.sink.flush()
        world.run(first, 10)
    world.local.set_outcome("early", TIMELINE)
    world.run(first, 45)  # both running, neither ended
    world.sink.flush()
    before = {name: world.statuses(name) for name in ("early", "late")}
    # kill -9: the first tracker is gone; a new one loads the published state
    world.clock.advance(300)
    second_sink = FakeSink()
    second = world.tracker(sink=second_sink, store=ReplayStore(world.sink))
    second.on_assigned({(TOPIC, 0)})
    assert set(second.tracked) == {"early", "late"}
    world.run(second, 60)
    for name in ("early", "late"):
        after = world.statuses(name, second_sink)
        assert after[0] != before[name][-1] or after[0] == "SUCCEEDED"
        assert after.count("SUCCEEDED") == 1 and (before[name] + after).count("SUCCEEDED") == 1


def test_a_job_that_ended_before_the_restart_is_not_reported_again(world: World) -> None:
    first = world.tracker()
    first.track(world.create("done"), partition=0)
    world.run(first, 200)
    assert world.statuses("done").count("SUCCEEDED") == 1
    second_sink = FakeSink()
    second = world.tracker(sink=second_sink, store=ReplayStore(world.sink))
    second.on_assigned({(TOPIC, 0)})
    world.run(second, 60)
    assert second.tracked == {} and second_sink.on("BAI_APP_STATUS") == []


def test_revoked_partitions_stop_tracking_and_assigned_ones_resume(world: World) -> None:
    tracker = world.tracker()
    tracker.on_assigned({(TOPIC, 0), (TOPIC, 1)})
    tracker.track(world.create("p1"), partition=1)
    world.sink.flush()
    tracker.on_revoked({(TOPIC, 1)})
    world.run(tracker, 200)
    assert world.statuses("p1") == []
    other_sink = FakeSink()
    other = world.tracker(sink=other_sink, store=ReplayStore(world.sink))
    other.on_assigned({(TOPIC, 1), ("CMD_SUBMIT", 0)})
    world.run(other, 30)
    assert world.statuses("p1", other_sink) == ["SUCCEEDED", "METRICS AVAILABLE"]


def test_no_jobs_means_no_calls_and_throttling_stretches_the_interval(world: World, monkeypatch) -> None:
    tracker = world.tracker()
    calls: list[str] = []
    monkeypatch.setattr(world.jobs, "list_changed", lambda since: calls.append("list") or [])
    world.run(tracker, 60)
    assert calls == []
    tracker.track(world.create("t"), partition=0)

    def throttled(since):
        calls.append("list")
        raise TransientError("ThrottlingException: Rate exceeded")

    monkeypatch.setattr(world.jobs, "list_changed", throttled)
    world.run(tracker, 300, step=1)
    # at once, then 20, 40 and 80 s apart (the next would be 160 s later): 4 calls in 300 s, not 30
    assert len(calls) == 4


def test_a_tracked_job_that_no_longer_exists_is_dropped_at_the_next_resync(world: World, monkeypatch) -> None:
    tracker = world.tracker()
    tracker.track(world.create("gone"), partition=0)
    world.run(tracker, 10)
    assert "gone" in tracker.tracked
    # The job vanishes from SageMaker (deleted while nobody tracked it): listings never show it again.
    real_describe = world.jobs.describe
    monkeypatch.setattr(world.jobs, "list_changed", lambda since: [])

    def describe(name: str) -> dict:
        if name == "gone":
            from sagemaker_executor.domain.errors import JobNotFound

            raise JobNotFound(name)
        return real_describe(name)

    monkeypatch.setattr(world.jobs, "describe", describe)
    world.run(tracker, 700, step=10)  # past one resync interval (600 s)
    assert tracker.tracked == {}
    assert [s.value for s in world.sink.acked if s.topic == TRACKING][-1] is None
