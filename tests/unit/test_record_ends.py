"""Every record ends -- answered or dead-lettered, then committed -- and an outage is not the user's ERROR.

The cases of issue 7 at the loop's level, on in-memory adapters (``tests/harness.py``); the fault suite
runs the same situations against the real broker and the local SageMaker.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sagemaker_executor.adapters.aws import classify
from sagemaker_executor.adapters.kafka import CommitError, InboundRecord, PublishError
from sagemaker_executor.domain.errors import CapacityError, JobNotFound, OutageError
from sagemaker_executor.service.records import (
    DEAD_LETTER_REASON_CHARS,
    dead_letter_record,
    minimal_dead_letter,
)
from tests.builders import cancel_command, fetcher_event
from tests.fakes import FakeSink, record
from tests.harness import CMD, DLQ, EXECUTOR, FETCHER, STATUS, Harness

NO_CREDENTIALS = OutageError("aws", "AWS credentials: Unable to locate credentials", "give it an identity")


def poison_bytes() -> bytes:
    """A JSON object Python's json refuses with a plain ValueError: an integer of 5,000 digits."""
    event = fetcher_event()
    text = json.dumps(event)
    return text.replace(f'"tstamp": {event["tstamp"]}', '"tstamp": ' + "1" * 5000).encode()


def test_an_integer_past_pythons_digit_limit_is_dead_lettered_and_committed(tmp_path) -> None:
    valid = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, poison_bytes(), 0), record(FETCHER, valid, 1)])
    h.drain()
    (letter,) = h.sink.on(DLQ)
    assert letter["reason"].startswith("not valid JSON") and letter["source"]["offset"] == 0
    assert h.statuses_of(valid["action_id"]) == ["PENDING", "SUCCEEDED"]
    assert h.source.committed == {(FETCHER, 0): 2}


def test_sixteen_poison_records_do_not_stop_fetching(tmp_path) -> None:
    poison = [record(FETCHER, poison_bytes(), i) for i in range(16)]
    valid = fetcher_event()
    h = Harness(tmp_path, [*poison, record(FETCHER, valid, 16)], max_in_flight=16)
    h.drain(3)
    assert len(h.sink.on(DLQ)) == 16
    assert h.statuses_of(valid["action_id"]) == ["PENDING", "SUCCEEDED"]
    assert h.source.committed == {(FETCHER, 0): 17} and not h.source.paused


class StatusesRefused(FakeSink):
    """A sink whose status records fail to serialise (as a record over the broker's limit would)."""

    def send(self, topic, key, value, partition=None) -> None:
        if topic == STATUS:
            raise ValueError("this status cannot be sent")
        super().send(topic, key, value, partition)


def test_when_even_the_error_path_raises_a_minimal_dead_letter_ends_the_record(tmp_path) -> None:
    event = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event, 0)], sink=StatusesRefused())
    h.drain()
    (letter,) = h.sink.on(DLQ)
    assert letter["minimal"] is True and "this status cannot be sent" in letter["reason"]
    assert letter["source"] == {"topic": FETCHER, "partition": 0, "offset": 0}
    assert h.source.committed == {(FETCHER, 0): 1}
    assert "internal" in h.observer.failures


def test_the_minimal_dead_letter_is_small_strict_json_whatever_the_record_holds() -> None:
    huge = b'{"action_id": "' + "\udce9".encode("utf-8", "surrogatepass") * 400_000 + b'"}'
    letter = minimal_dead_letter(record(FETCHER, huge, 7), "\U0001f600" * 100_000)  # 12-byte escapes
    assert len(letter) < 64 * 1024
    parsed = json.loads(letter)
    assert parsed["value_bytes"] == len(huge) and parsed["source"]["offset"] == 7


def test_missing_credentials_wait_without_error_then_succeed_once_fixed(tmp_path, caplog) -> None:
    events = [fetcher_event() for _ in range(3)]
    h = Harness(tmp_path, [record(FETCHER, e, i) for i, e in enumerate(events)])
    original, broken = h.jobs.create, {"on": True}

    def create(spec, source_dir):
        if broken["on"]:
            raise NO_CREDENTIALS
        original(spec, source_dir)

    h.jobs.create = create  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="sagemaker_executor.service.loop"):
        h.drain(5)
        assert all(h.statuses_of(e["action_id"]) == ["PENDING"] for e in events)
        assert h.source.committed == {} and h.source.paused
        assert h.observer.outages and h.observer.outages[-1] is not None
        broken["on"] = False
        h.drain(5)
    assert all(h.statuses_of(e["action_id"]) == ["PENDING", "SUCCEEDED"] for e in events)
    assert h.source.committed == {(FETCHER, 0): 3} and not h.source.paused
    assert h.observer.outages[-1] is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "outage" in r.message]
    assert len(warnings) == 1 and "give it an identity" in warnings[0].message
    assert any("outage of aws over" in r.message for r in caplog.records)


def test_a_cancel_during_an_outage_waits_instead_of_failing_the_benchmark(tmp_path) -> None:
    event = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event, 0)])
    h.drain()
    original, broken = h.jobs.describe, {"on": True}

    def describe(job_name):
        if broken["on"]:
            raise NO_CREDENTIALS
        return original(job_name)

    h.jobs.describe = describe  # type: ignore[method-assign]
    h.source.log.append(record(CMD, cancel_command(event["action_id"]), 0))
    h.drain(3)
    assert "FAILED" not in h.statuses_of(event["action_id"]) and h.sink.on("CMD_RETURN") == []
    broken["on"] = False
    h.drain(3)
    assert h.sink.on("CMD_RETURN")[-1]["payload"]["return_code"] == 0
    assert h.jobs.stopped == [event["action_id"]]


def test_a_broker_that_does_not_acknowledge_is_an_outage_and_nothing_is_lost(tmp_path) -> None:
    event = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event, 0)])
    h.sink.fail_next_flush = True
    h.drain(2)
    assert isinstance(h.observer.outages[0], PublishError)
    h.drain()
    assert h.source.committed == {(FETCHER, 0): 1} and h.observer.outages[-1] is None
    assert len(h.jobs.jobs) == 1 and len(h.sink.on(EXECUTOR)) == 1


class CommitsRefusedOnce:
    def __init__(self, source) -> None:
        self.source, self.failed = source, False

    def __call__(self, offsets) -> None:
        if not self.failed:
            self.failed = True
            raise CommitError("offset commit not acknowledged")
        type(self.source).commit_offsets(self.source, offsets)


def test_a_commit_the_broker_does_not_take_is_made_again(tmp_path) -> None:
    h = Harness(tmp_path, [record(FETCHER, fetcher_event(), 0)])
    h.source.commit_offsets = CommitsRefusedOnce(h.source)  # type: ignore[method-assign]
    h.drain(2)
    assert isinstance(h.observer.outages[0], CommitError)
    h.drain(2)
    assert h.source.committed == {(FETCHER, 0): 1} and h.observer.outages[-1] is None


class TrackerSendingToTheSink:
    """Just enough of a JobTracker: each ``track`` sends a tracking record, as the real one does."""

    def __init__(self, sink: FakeSink) -> None:
        self.sink, self.calls = sink, 0
        self.tracked: dict[str, Any] = {}

    def track(self, executor_event, partition) -> None:
        self.calls += 1
        self.sink.send("TRACKING", executor_event["payload"]["job"]["id"], b"{}", partition)

    def tick(self) -> None:
        pass

    def on_assigned(self, partitions) -> None:
        pass

    def on_revoked(self, partitions) -> None:
        pass


def test_an_input_record_commits_only_after_its_tracking_record_is_acknowledged(tmp_path) -> None:
    sink = FakeSink()
    tracker = TrackerSendingToTheSink(sink)
    h = Harness(tmp_path, [record(FETCHER, fetcher_event(), 0)], sink=sink, tracker=tracker)
    flushes, original = {"n": 0}, sink.flush

    def second_flush_fails(timeout_s: float = 60.0) -> None:
        flushes["n"] += 1
        if flushes["n"] == 2:  # the first is the record's own events, the second its tracking record
            sink.pending.clear()  # lost on the way
            raise PublishError("broker down")
        original(timeout_s)

    sink.flush = second_flush_fails  # type: ignore[method-assign]
    h.drain(2)
    assert flushes["n"] >= 3 and tracker.calls == 2  # tracked (and sent) again after the failure
    assert [s.topic for s in sink.acked].count("TRACKING") == 1
    assert h.source.committed == {(FETCHER, 0): 1}


def test_a_quota_of_zero_is_an_immediate_error_quoting_sagemaker(tmp_path) -> None:
    message = (
        "The account-level service limit 'ml.p3.2xlarge for training job usage' is 0 Instances, with "
        "current utilization of 0 Instances and a request delta of 1 Instances."
    )
    error = ClientError({"Error": {"Code": "ResourceLimitExceeded", "Message": message}}, "CreateTrainingJob")
    event = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event, 0)])

    def create(spec, source_dir):
        raise classify(error, "SageMaker returned error")

    h.jobs.create = create  # type: ignore[method-assign]
    h.drain(2)
    status, text = h.statuses()[-1]
    assert status == "ERROR" and "is 0 Instances" in text
    assert h.source.committed == {(FETCHER, 0): 1}


def test_a_capacity_wait_holds_up_only_its_own_job(tmp_path) -> None:
    waiting, other = fetcher_event(client_id="one-user"), fetcher_event(client_id="one-user")
    h = Harness(tmp_path, [record(FETCHER, waiting, 0), record(FETCHER, other, 1)], max_in_flight=1)
    original = h.jobs.create

    def create(spec, source_dir):
        if spec.action_id == waiting["action_id"]:
            raise CapacityError("ResourceLimitExceeded: ml.p3 quota in use")
        original(spec, source_dir)

    h.jobs.create = create  # type: ignore[method-assign]
    h.drain(3)
    assert h.statuses_of(other["action_id"]) == ["PENDING", "SUCCEEDED"]
    assert h.statuses_of(waiting["action_id"]) == ["PENDING", "PENDING"]  # told once it waits
    assert h.source.committed == {}  # the commit cannot pass the waiting record: redelivery is harmless


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_retried_record_says_pending_once(tmp_path, attempts: int) -> None:
    event = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event, 0)])
    h.jobs.transient_failures = attempts
    h.drain()
    assert h.statuses_of(event["action_id"]) == ["PENDING", "SUCCEEDED"]
    assert h.jobs.create_calls == attempts + 1


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


@pytest.mark.parametrize("depth", [300, 600, 950])
def test_a_deeply_nested_event_ends_even_when_its_statuses_cannot_be_serialised(tmp_path, depth) -> None:
    # Statuses copy the event: past a few hundred levels pydantic (then Python) refuses to serialise
    # it, on the happy path and on the error path alike.
    event = fetcher_event()
    event["payload"]["extra"] = nested(depth)
    after = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event, 0), record(FETCHER, after, 1)])
    h.drain(3)
    assert h.source.committed == {(FETCHER, 0): 2}
    assert h.statuses_of(after["action_id"]) == ["PENDING", "SUCCEEDED"]
    answered = h.statuses_of(event["action_id"]) or [d for d in h.sink.on(DLQ) if d["source"]["offset"] == 0]
    assert answered


def test_a_name_in_use_that_cannot_be_described_yet_is_asked_again(tmp_path) -> None:
    event = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event, 0), record(FETCHER, event, 1)])
    original, lagging = h.jobs.describe, {"left": 1}

    def describe(job_name):
        if lagging["left"]:
            lagging["left"] -= 1
            raise JobNotFound(job_name)
        return original(job_name)

    h.jobs.describe = describe  # type: ignore[method-assign]
    h.drain(6)
    assert h.statuses_of(event["action_id"]) == ["PENDING", "SUCCEEDED", "PENDING", "SUCCEEDED"]
    assert h.source.committed == {(FETCHER, 0): 2} and "internal" not in h.observer.failures


def test_throttling_past_give_up_s_ends_as_an_error_and_a_dead_letter_not_before(tmp_path) -> None:
    event = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event, 0)])
    h.jobs.transient_failures = 10**6  # SageMaker throttles for good
    h.drain(30)  # half an hour (rounds of 61 s): still waiting, nothing committed
    assert h.statuses_of(event["action_id"]) == ["PENDING"] and h.source.committed == {}
    h.drain(35)  # past the hour of RetryPolicy.give_up_s
    reason = "Benchmark creation failed. SageMaker kept failing for 3600s: ThrottlingException: Rate exceeded"
    assert h.statuses()[-1] == ("ERROR", reason)
    (letter,) = h.sink.on(DLQ)
    assert letter["reason"] == reason and letter["source"] == {"topic": FETCHER, "partition": 0, "offset": 0}
    assert h.source.committed == {(FETCHER, 0): 1} and h.observer.outcomes == ["gave-up"]
    assert set(h.observer.failures) == {"transient", "dead_letter"}


def test_the_minimal_dead_letter_holds_exactly_its_fields_in_ascii() -> None:
    raw = b"\xff not utf-8"
    letter = minimal_dead_letter(InboundRecord(FETCHER, 2, 7, b"key", raw, 1234), "r" * 5000)
    assert json.loads(letter) == {
        "reason": "r" * 4000,
        "source": {"topic": FETCHER, "partition": 2, "offset": 7},
        "timestamp_ms": 1234,
        "value_excerpt": "\ufffd not utf-8",
        "value_bytes": len(raw),
        "value_sha256": hashlib.sha256(raw).hexdigest(),
        "minimal": True,
    }
    assert letter.isascii()


@pytest.mark.parametrize("key", ["client-7", None])
def test_a_dead_letter_keeps_the_records_key_and_stamp(tmp_path, key) -> None:
    h = Harness(tmp_path, [replace(record(FETCHER, b"{not json", 3, key=key), timestamp_ms=1234)])
    h.drain(2)
    (sent,) = [s for s in h.sink.acked if s.topic == DLQ]
    letter = json.loads(sent.value)
    assert sent.key == key and letter["key"] == key and "minimal" not in letter
    assert letter["timestamp_ms"] == 1234 and letter["value"] == "{not json"
    assert letter["source"] == {"topic": FETCHER, "partition": 0, "offset": 3}


def test_a_long_reason_keeps_its_head_and_its_last_16_ki_characters() -> None:
    reason = "".join(f"line {i}\n" for i in range(5000))  # a long traceback: where it failed is last
    kept = dead_letter_record(record(FETCHER, b"x"), reason)["reason"]
    assert kept == reason[:200] + "\n...\n" + reason[-DEAD_LETTER_REASON_CHARS:]
    just_fits = "r" * DEAD_LETTER_REASON_CHARS
    assert dead_letter_record(record(FETCHER, b"x"), just_fits)["reason"] == just_fits
