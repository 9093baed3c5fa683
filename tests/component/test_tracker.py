"""Job tracking against moto with the local SageMaker on a manual clock: exact status sequences,
metrics, restarts (state reloaded from what was published), partition moves, and the end of a failed
job's log (moto's CloudWatch Logs, written as SageMaker writes it) in its FAILED status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from sagemaker_executor.adapters.joblogs import JobLogs
from sagemaker_executor.adapters.sagemaker import SageMakerJobs
from sagemaker_executor.domain.errors import TransientError
from sagemaker_executor.domain.joblog import LogTail, Masker
from sagemaker_executor.domain.tracking import TrackedJob
from sagemaker_executor.local.sagemaker import LocalSageMaker, ManualClock, Timeline
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.tracker import JobTracker, TrackerSettings
from tests.builders import create_training_job, fetcher_event, minimal_contents, write_job_log
from tests.fakes import FakeSink

TOPIC, TRACKING, METRICS = "BAI_APP_FETCHER", "SM_EXECUTOR_JOBS", "BAI_METRICS"
TIMELINE = Timeline(starting=20, downloading=20, training=60, uploading=20, stopping=10)


class ReplayStore:
    """Loads tracking state from what a sink had acknowledged: the compacted topic, in memory."""

    def __init__(self, sink: FakeSink) -> None:
        self.sink = sink

    def load(self, partitions) -> list[TrackedJob]:
        latest: dict[str | None, Any] = {}
        for sent in self.sink.acked:
            if sent.topic == TRACKING and sent.partition in set(partitions):
                latest[sent.key] = sent.value
        return [TrackedJob.from_json(v) for v in latest.values() if v is not None]


class World:
    local: LocalSageMaker  # set by the ``world`` fixture, which owns its lifetime

    def __init__(self, session: boto3.Session, clock: ManualClock) -> None:
        self.session = session
        self.clock = clock
        self.sm = session.client("sagemaker")
        self.jobs = SageMakerJobs(session, default_bucket="out", retry_attempts=2)
        self.sink = FakeSink()
        self.cw = session.client("logs")

    def tracker(
        self, sink: FakeSink | None = None, store=None, interval: float = 10, logs: Any = None
    ) -> JobTracker:
        sink = sink or self.sink
        emitter = StatusEmitter(sink, status_topic="BAI_APP_STATUS", node="n", clock_ms=lambda: 0)
        return JobTracker(
            self.jobs,
            sink,
            emitter,
            store or ReplayStore(sink),
            TrackerSettings(TOPIC, TRACKING, METRICS, "us-east-1", interval_s=interval, overlap_s=30),
            logs=logs,
            clock=lambda: self.clock.now().timestamp(),
        )

    def create(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        hosts: int = 1,
    ):
        resources = {"InstanceType": "ml.m5.large", "InstanceCount": hosts, "VolumeSizeInGB": 10}
        tags_list = [{"Key": k, "Value": v} for k, v in (tags or {}).items()]
        create_training_job(self.sm, name, Tags=tags_list, ResourceConfig=resources)
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

    def failed_message(self, name: str) -> str:
        (failed,) = [
            e
            for e in self.sink.on("BAI_APP_STATUS")
            if e["action_id"] == name and e["payload"]["status"] == "FAILED"
        ]
        return str(failed["payload"]["message"])


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

    def list_changed(since: datetime) -> list[dict[str, Any]]:
        calls.append("list")
        return []

    monkeypatch.setattr(world.jobs, "list_changed", list_changed)
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

    def describe(name: str) -> dict[str, Any]:
        if name == "gone":
            from sagemaker_executor.domain.errors import JobNotFound

            raise JobNotFound(name)
        return real_describe(name)

    monkeypatch.setattr(world.jobs, "describe", describe)
    world.run(tracker, 700, step=10)  # past one resync interval (600 s)
    assert tracker.tracked == {}
    assert [s.value for s in world.sink.acked if s.topic == TRACKING][-1] is None


# ------------------------------------------------------------------------------- a failed job's log


def test_a_failed_jobs_status_carries_the_end_of_its_log(world: World) -> None:
    world.local.set_outcome("job-log", TIMELINE.failing("AlgorithmError: ExecuteUserScriptError"))
    write_job_log(world.cw, "job-log", 1, [f"epoch {i}" for i in range(200)] + ["ValueError: bad shape"])
    tracker = world.tracker(logs=JobLogs(world.session, retry_attempts=1))
    tracker.track(world.create("job-log"), partition=0)
    world.run(tracker, 200)
    headline, head, *lines = world.failed_message("job-log").split("\n")
    assert headline.startswith(
        "Benchmark failed: AlgorithmError: ExecuteUserScriptError (training job job-log"
    )
    assert head.startswith("Last 30 lines of the log (CloudWatch Logs /aws/sagemaker/TrainingJobs")
    assert lines[-1] == "ValueError: bad shape" and lines[0] == "epoch 171" and len(lines) == 30


def test_a_failed_job_of_several_hosts_names_the_host_of_each_line(world: World) -> None:
    world.local.set_outcome("job-hosts", TIMELINE.failing())
    write_job_log(world.cw, "job-hosts", 1, ["waiting for algo-2"], step_ms=10)
    write_job_log(world.cw, "job-hosts", 2, ["RuntimeError: NCCL timeout"], step_ms=10)
    tracker = world.tracker(logs=JobLogs(world.session, retry_attempts=1))
    tracker.track(world.create("job-hosts", hosts=2), partition=0)
    world.run(tracker, 200)
    lines = world.failed_message("job-hosts").split("\n")[1:]
    assert lines[0].endswith(", hosts algo-1, algo-2):")
    assert sorted(lines[1:]) == ["[algo-1] waiting for algo-2", "[algo-2] RuntimeError: NCCL timeout"]


def test_secrets_of_the_job_never_reach_a_status(world: World, monkeypatch) -> None:
    secret, key_id = "pg-pass-4711", "AKIAIOSFODNN7EXAMPLE"
    world.local.set_outcome("job-secret", TIMELINE.failing(f"connect failed for password {secret}"))
    real_describe = world.jobs.describe

    def describe(name: str) -> dict[str, Any]:  # moto drops Environment (FACTS); SageMaker returns it
        return {**real_describe(name), "Environment": {"DB_PASSWORD": secret, "EPOCHS": "3"}}

    monkeypatch.setattr(world.jobs, "describe", describe)
    write_job_log(
        world.cw, "job-secret", 1, [f"psql -W {secret}", f"using {key_id}", "aws_secret_access_key=abc/def"]
    )
    tracker = world.tracker(logs=JobLogs(world.session, retry_attempts=1))
    tracker.track(world.create("job-secret"), partition=0)
    world.run(tracker, 200)
    message = world.failed_message("job-secret")
    assert message.split("\n")[-3:] == ["psql -W ***", "using ***", "aws_secret_access_key=***"]
    sent = b"".join(s.value for s in world.sink.acked if isinstance(s.value, bytes))
    for leaked in (secret, key_id, "abc/def"):
        assert leaked.encode() not in sent


def test_an_unreadable_log_still_gives_failed_with_the_reason(world: World) -> None:
    world.local.set_outcome("job-denied", TIMELINE.failing("AlgorithmError: exit code 2"))
    logs = JobLogs(world.session, retry_attempts=1)
    tracker = world.tracker(logs=logs)
    tracker.track(world.create("job-denied"), partition=0)
    with Stubber(logs.boto_client) as stub:
        stub.add_client_error("describe_log_streams", "AccessDeniedException", "User is not authorized")
        world.run(tracker, 200)
        stub.assert_no_pending_responses()
    assert world.statuses("job-denied")[-1] == "FAILED"
    headline, note = world.failed_message("job-denied").split("\n")
    assert "AlgorithmError: exit code 2" in headline
    assert note.startswith("The job's log could not be read (")
    assert "AccessDeniedException: User is not authorized" in note
    assert tracker.tracked == {}


def test_a_job_that_wrote_no_log_says_so(world: World) -> None:
    world.local.set_outcome("job-nolog", TIMELINE.failing("ClientError: image not found"))
    tracker = world.tracker(logs=JobLogs(world.session, retry_attempts=1))  # no log group at all
    tracker.track(world.create("job-nolog"), partition=0)
    world.run(tracker, 200)
    assert "The job wrote no log" in world.failed_message("job-nolog").split("\n")[1]


class CountingLogs:
    """A log reader that fails (or breaks) every time, counting the attempts."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls: list[str] = []

    def tail(self, job_name: str, masker: Masker, *, budget_s: float | None = None) -> LogTail:
        self.calls.append(job_name)
        raise self.error


def test_an_outage_of_cloudwatch_logs_costs_one_attempt_not_one_per_job(world: World) -> None:
    logs = CountingLogs(TransientError("ThrottlingException: Rate exceeded"))
    tracker = world.tracker(logs=logs)
    names = ["f1", "f2", "f3"]
    for name in names:
        world.local.set_outcome(name, TIMELINE.failing())
        tracker.track(world.create(name), partition=0)
    world.run(tracker, 200)
    assert len(logs.calls) == 1
    assert [world.statuses(name)[-1] for name in names] == ["FAILED"] * 3
    notes = sorted(world.failed_message(name).split("\n")[1] for name in names)
    assert sum("ThrottlingException" in note for note in notes) == 1
    assert sum("not read: CloudWatch Logs failed moments ago" in note for note in notes) == 2
    # After the pause, the next failed job's log is asked for again.
    world.clock.advance(300)
    world.local.set_outcome("f4", TIMELINE.failing())
    tracker.track(world.create("f4"), partition=0)
    world.run(tracker, 200)
    assert len(logs.calls) == 2 and logs.calls[-1] == "f4"


def test_a_defect_in_reading_the_log_never_costs_the_failed_status(world: World) -> None:
    world.local.set_outcome("job-bug", TIMELINE.failing())
    tracker = world.tracker(logs=CountingLogs(KeyError("oops")))
    tracker.track(world.create("job-bug"), partition=0)
    world.run(tracker, 200)
    assert "internal error of the executor: KeyError" in world.failed_message("job-bug")


def test_only_a_failure_reads_the_log_and_only_once(world: World) -> None:
    logs = CountingLogs(TransientError("unused"))
    world.local.set_outcome("bad-once", TIMELINE.failing())
    tracker = world.tracker(logs=logs)
    for name in ("ok", "bad-once"):
        tracker.track(world.create(name), partition=0)
    world.run(tracker, 400)
    assert logs.calls == ["bad-once"]
