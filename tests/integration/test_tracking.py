"""Job tracking as deployed: executor processes against the real broker and the local SageMaker, jobs
moving through their statuses on a timeline set per job. Exact status sequences and metrics; kill -9
and restart; two replicas in one group, with a rebalance."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from kafka.partitioner.default import murmur2

from tests.builders import cancel_command, fetcher_event, minimal_contents
from tests.integration.conftest import Executor, Pipeline

pytestmark = pytest.mark.integration

CREATED = [
    "PENDING",
    "SUCCEEDED",
]  # the submission's own: "Processing...", "Benchmark successfully created..."
COMPLETED = ["PENDING", "INITIALIZING", "RUNNING", "RUNNING", "SUCCEEDED", "METRICS AVAILABLE"]
TERMINAL = {"FAILED", "CANCELED"}


def _event(
    p: Pipeline,
    *,
    phase: float = 2.0,
    outcome: str = "Completed",
    reason: str = "",
    training: float | None = None,
    client_id: str | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    info = {
        "description": "tracked",
        "execution_engine": "aws.sagemaker",
        "labels": labels or {"task_name": "t1"},
    }
    event = fetcher_event(minimal_contents(info=info), client_id=client_id or uuid.uuid4().hex)
    timeline = {
        "starting": phase,
        "downloading": phase,
        "training": training or phase,
        "uploading": phase,
        "stopping": phase,
        "outcome": outcome,
    }
    if reason:
        timeline["failure_reason"] = reason
    p.control.set_outcome(event["action_id"], **timeline)
    return event


def _tracked(p: Pipeline, action_id: str) -> list[str]:
    """Statuses after the submission's PENDING and SUCCEEDED("Benchmark successfully created...")."""
    statuses = p.statuses(action_id)
    created = [m for _, m in statuses].index("Benchmark successfully created...")
    return [s for s, _ in statuses[created + 1 :]]


def _ended(p: Pipeline, action_id: str) -> bool:
    statuses = p.statuses(action_id)
    return any(s in TERMINAL for s, _ in statuses) or any(s == "METRICS AVAILABLE" for s, _ in statuses)


def test_completed_failed_and_cancelled_jobs_report_exact_sequences_and_metrics(pipeline: Pipeline) -> None:
    p = pipeline
    ok = _event(p, labels={"task_name": "resnet", "batch": "32"})
    bad = _event(p, outcome="Failed", reason="AlgorithmError: CUDA out of memory")
    stop = _event(p, training=120)
    p.start_executor()
    for event in (ok, bad, stop):
        p.publish(p.topics.fetcher, event)
    p.wait_for(
        lambda: (
            "RUNNING" in _tracked(p, stop["action_id"]) if len(p.statuses(stop["action_id"])) > 2 else False
        ),
        what="the job to cancel to be training",
    )
    command = cancel_command(stop["action_id"], client_id=stop["client_id"])
    p.publish(p.topics.cmd_submit, command)
    p.wait_for(
        lambda: all(_ended(p, e["action_id"]) for e in (ok, bad, stop)), timeout=120, what="all three to end"
    )

    assert _tracked(p, ok["action_id"]) == COMPLETED
    assert _tracked(p, bad["action_id"]) == ["PENDING", "INITIALIZING", "RUNNING", "FAILED"]
    failed = p.statuses(bad["action_id"])[-1][1]
    assert "AlgorithmError: CUDA out of memory" in failed
    assert _tracked(p, stop["action_id"]) == [
        "PENDING",
        "INITIALIZING",
        "RUNNING",
        "SUCCEEDED",
        "RUNNING",
        "CANCELED",
    ]
    assert p.statuses(stop["action_id"])[-3][1] == "Execution successfully cancelled..."

    running = next(m for s, m in p.statuses(ok["action_id"]) if s == "RUNNING")
    assert "/aws/sagemaker/TrainingJobs" in running and f"{ok['action_id']}/" in running
    assert "wall time" in p.statuses(ok["action_id"])[-2][1]
    metrics = [m for m in p.on(p.topics.metrics) if m["labels"]["action-id"] == ok["action_id"]]
    assert metrics and all(m["key"] == ok["client_id"].encode() for m in metrics)
    assert metrics[0]["labels"] == {
        "action-id": ok["action_id"],
        "client-id": ok["client_id"],
        "task_name": "resnet",
        "batch": "32",
    }
    assert not [m for m in p.on(p.topics.metrics) if m["labels"]["action-id"] != ok["action_id"]]
    for event in (ok, bad, stop):
        statuses = [e for e in p.on(p.topics.status) if e["action_id"] == event["action_id"]]
        tracked = statuses[2:]
        assert all(
            e["payload"]["src_event"]["payload"]["job"]["id"] == event["action_id"]
            for e in tracked
            if e["payload"]["src_event"]["type"] == "BAI_APP_EXECUTOR"
        )


def test_kill_9_while_jobs_run_then_restart_gives_exactly_one_terminal_status(pipeline: Pipeline) -> None:
    p = pipeline
    quick = _event(p, phase=0.5)  # ends before the kill
    slow = [_event(p, phase=1.5, training=10) for _ in range(3)]
    first = p.start_executor()
    for event in (quick, *slow):
        p.publish(p.topics.fetcher, event)
    p.wait_for(
        lambda: (
            _ended(p, quick["action_id"]) and all("RUNNING" in p.statuses_only(e["action_id"]) for e in slow)
        ),
        timeout=90,
        what="the quick job to end and the slow ones to train",
    )
    first.kill()
    before = {e["action_id"]: list(p.statuses(e["action_id"])) for e in (quick, *slow)}
    p.start_executor()
    p.wait_for(lambda: all(_ended(p, e["action_id"]) for e in slow), timeout=120, what="the slow jobs to end")
    p.drain(timeout_ms=3000)  # anything late would show up now
    for event in slow:
        tracked = _tracked(p, event["action_id"])
        assert tracked.count("SUCCEEDED") == 1 and tracked.count("METRICS AVAILABLE") == 1, tracked
        assert tracked[-2:] == ["SUCCEEDED", "METRICS AVAILABLE"]
    assert p.statuses(quick["action_id"]) == before[quick["action_id"]], "an ended job was reported again"


@pytest.mark.parametrize("pipeline", [3], indirect=True)
def test_two_replicas_track_each_job_exactly_once_and_tracking_moves_on_rebalance(pipeline: Pipeline) -> None:
    p = pipeline
    # Two events keyed to each of the 3 partitions, published once both replicas own some: every
    # replica gets work, whichever way the group splits the partitions.
    first_wave = [_event(p, phase=1.0, client_id=_client_on(partition, 3)) for partition in (0, 1, 2) * 2]
    a = p.start_executor(SERVICE_NODE="replica-a")
    b = p.start_executor(SERVICE_NODE="replica-b")
    p.wait_for(lambda: _split(p, a, b, 3), timeout=60, what="both replicas to own partitions")
    for event in first_wave:
        p.publish(p.topics.fetcher, event)
    p.wait_for(
        lambda: all(_ended(p, e["action_id"]) for e in first_wave), timeout=120, what="the first wave to end"
    )
    nodes = set()
    for event in first_wave:
        assert _tracked(p, event["action_id"]) == COMPLETED, _tracked(p, event["action_id"])
        nodes |= {
            e["visited"][-1]["node"] for e in p.on(p.topics.status) if e["action_id"] == event["action_id"]
        }
    assert nodes == {"replica-a", "replica-b"}, "both replicas should own some partitions"

    second_wave = [
        _event(p, phase=1.5, training=12, client_id=_client_on(partition, 3)) for partition in (0, 1, 2) * 2
    ]
    for event in second_wave:
        p.publish(p.topics.fetcher, event)
    p.wait_for(
        lambda: all("RUNNING" in p.statuses_only(e["action_id"]) for e in second_wave),
        timeout=90,
        what="the second wave to train",
    )
    b.kill()  # its partitions, and the tracking of their jobs, move to replica a
    p.wait_for(
        lambda: all(_ended(p, e["action_id"]) for e in second_wave),
        timeout=120,
        what="the second wave to end",
    )
    p.drain(timeout_ms=3000)
    moved = 0
    for event in second_wave:
        tracked = _tracked(p, event["action_id"])
        assert tracked.count("SUCCEEDED") == 1 and tracked[-2:] == ["SUCCEEDED", "METRICS AVAILABLE"], tracked
        by = [
            (e["payload"]["status"], e["visited"][-1]["node"])
            for e in p.on(p.topics.status)
            if e["action_id"] == event["action_id"]
        ]
        assert by[-2] == ("SUCCEEDED", "replica-a"), by  # b is gone: a finished every job
        moved += ("RUNNING", "replica-b") in by
    assert moved >= 2, "replica b's jobs should have been handed over to replica a"
    assert a.process.poll() is None


def _client_on(partition: int, partitions: int) -> str:
    """A client id that the producer's default partitioner (murmur2 of the key) puts on ``partition``."""
    while True:
        client_id = uuid.uuid4().hex
        if (murmur2(client_id.encode()) & 0x7FFFFFFF) % partitions == partition:
            return client_id


def _assignment(executor: Executor, topic: str) -> set[int] | None:
    """The partitions of ``topic`` the executor owns, from its log; None while it is rebalancing."""
    lines = [
        line
        for line in executor.log_text().splitlines()
        if "partitions assigned:" in line or "partitions revoked:" in line
    ]
    if not lines or "partitions revoked:" in lines[-1]:
        return None
    found = re.search(re.escape(topic) + r"\[([0-9, ]*)\]", lines[-1])
    return {int(n) for n in found.group(1).split(",")} if found else set()


def _split(p: Pipeline, a: Executor, b: Executor, partitions: int) -> bool:
    """Both replicas own some of the input partitions, and between them all of them."""
    owned_a, owned_b = _assignment(a, p.topics.fetcher), _assignment(b, p.topics.fetcher)
    if not owned_a or not owned_b:
        return False
    return not owned_a & owned_b and owned_a | owned_b == set(range(partitions))
