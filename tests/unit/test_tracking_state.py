"""The tracking record (``domain.tracking.TrackedJob``) as it goes to the compacted topic and comes back
(``service.tracker.KafkaStateStore``) after a restart or a partition move: what survives the round
trip, what an older or hand-written record without the optional fields means, and which records are
skipped rather than stopping the load."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from sagemaker_executor.adapters.kafka import InboundRecord
from sagemaker_executor.domain.lifecycle import JobState
from sagemaker_executor.domain.tracking import TrackedJob, metric_labels
from sagemaker_executor.service.tracker import KafkaStateStore

EVENT = {"action_id": "a1", "client_id": "c1", "payload": {"job": {"id": "job-1"}}}
FULL = TrackedJob(
    job_name="job-1",
    action_id="a1",
    client_id="c1",
    partition=3,
    created_ms=1_700_000_000_123,
    executor_event=EVENT,
    labels={"task": "resnet", "team": "x"},
    merge=True,
    dashboard="board",
    region="eu-west-1",
    reported=JobState("job-1", "InProgress", "Training"),
)
REQUIRED = {
    "job_name": "job-1",
    "action_id": "a1",
    "client_id": "c1",
    "partition": 3,
    "created_ms": 1_700_000_000_123,
    "executor_event": EVENT,
}


def test_a_record_survives_the_round_trip_through_json() -> None:
    wire = json.loads(json.dumps(FULL.to_json()))
    assert TrackedJob.from_json(wire) == FULL


def test_a_record_without_the_optional_fields_means_nothing_reported_and_no_merge() -> None:
    job = TrackedJob.from_json(REQUIRED)
    assert job == TrackedJob("job-1", "a1", "c1", 3, 1_700_000_000_123, EVENT)
    assert (job.labels, job.merge, job.dashboard, job.region, job.reported) == ({}, False, None, None, None)
    nulls = {**REQUIRED, "labels": None, "merge": None, "reported": None}
    assert TrackedJob.from_json(nulls) == job


def test_values_are_read_as_the_types_they_stand_for() -> None:
    loose = {**REQUIRED, "partition": "3", "created_ms": 1.7e12, "labels": {"n": 1}, "merge": 1}
    job = TrackedJob.from_json(loose)
    assert (job.partition, job.created_ms, job.labels, job.merge) == (3, 1_700_000_000_000, {"n": "1"}, True)


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_record_missing_a_required_field_is_refused(missing: str) -> None:
    with pytest.raises(KeyError):
        TrackedJob.from_json({k: v for k, v in REQUIRED.items() if k != missing})


def test_metric_labels_are_the_ids_then_the_benchmarks_own_labels() -> None:
    assert metric_labels(FULL) == {"action-id": "a1", "client-id": "c1", "task": "resnet", "team": "x"}


# ---------------------------------------------------------------------------------- KafkaStateStore


def rec(key: str | None, value: Any, partition: int = 0) -> InboundRecord:
    data = value if isinstance(value, bytes) or value is None else json.dumps(value).encode()
    return InboundRecord("SM_EXECUTOR_JOBS", partition, 0, key.encode() if key is not None else None, data, 0)


def test_the_store_keeps_the_last_record_of_each_job_and_forgets_tombstoned_ones(caplog) -> None:
    other = {**REQUIRED, "job_name": "job-2"}
    ended = {**REQUIRED, "job_name": "job-3"}
    records = [
        rec("job-1", REQUIRED),
        rec("job-2", other),
        rec("job-3", ended),
        rec("job-1", FULL.to_json()),  # later: wins
        rec("job-3", None),  # tombstone: ended
        rec(None, other),  # no key: not ours to read
        rec("job-4", b"{not json"),
        rec("job-5", {"job_name": "job-5"}),  # a field missing
        rec("job-6", {**REQUIRED, "job_name": "job-6", "executor_event": 7}),  # a wrong type
    ]
    asked: list[set[int]] = []

    def read(partitions: Any) -> list[InboundRecord]:
        asked.append(set(partitions))
        return records

    with caplog.at_level(logging.WARNING, logger="sagemaker_executor.service.tracker"):
        loaded = KafkaStateStore(read).load({0, 3})
    assert asked == [{0, 3}]
    assert loaded == [FULL, TrackedJob.from_json(other)]
    warned = [r.getMessage() for r in caplog.records]
    assert [w.split(":")[0] for w in warned] == [
        f"ignoring an unreadable tracking record for job-{n}" for n in (4, 5, 6)
    ]


def test_an_unreadable_record_leaves_the_jobs_earlier_one() -> None:
    records = [rec("job-1", FULL.to_json()), rec("job-1", b"\xff")]
    assert KafkaStateStore(lambda _: records).load([0]) == [FULL]
