"""Where the consumer lag's two offsets come from, without a broker: the end from the consumer's cached
high-water mark (the broker only for a partition not fetched yet or paused), the committed offset from
what this member committed (the broker once per assignment, and again after a rebalance)."""

from __future__ import annotations

from typing import Any

import pytest
from kafka import TopicPartition

from sagemaker_executor.adapters import kafka as kafka_adapter
from sagemaker_executor.adapters.kafka import KafkaOptions, Subscriber

pytestmark = pytest.mark.timeout(10)

TP = TopicPartition("IN", 0)


class FakeConsumer:
    """The part of ``KafkaConsumer`` that ``Subscriber.lag`` uses, counting the broker round trips."""

    def __init__(self, **config: Any) -> None:
        self.assigned: set[TopicPartition] = set()
        self.paused_partitions: set[TopicPartition] = set()
        self.high: dict[TopicPartition, int | None] = {}
        self.broker_end = 0
        self.broker_committed: int | None = None
        self.round_trips: list[str] = []
        self.listener: Any = None

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.listener = listener

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def paused(self) -> set[TopicPartition]:
        return self.paused_partitions

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.high.get(tp)

    def end_offsets(self, partitions: list[TopicPartition], timeout_ms: int) -> dict[TopicPartition, int]:
        self.round_trips.append("end_offsets")
        return {tp: self.broker_end for tp in partitions}

    def committed(self, tp: TopicPartition, timeout_ms: int) -> int | None:
        self.round_trips.append("committed")
        return self.broker_committed

    def beginning_offsets(
        self, partitions: list[TopicPartition], timeout_ms: int
    ) -> dict[TopicPartition, int]:
        self.round_trips.append("beginning_offsets")
        return {tp: 0 for tp in partitions}

    def commit(self, offsets: dict[TopicPartition, Any], timeout_ms: int) -> None:
        pass

    def assign_by_rebalance(self, partitions: set[TopicPartition]) -> None:
        self.listener.on_partitions_revoked(list(self.assigned))
        self.assigned = set(partitions)
        self.listener.on_partitions_assigned(list(partitions))


Member = tuple[Subscriber, FakeConsumer]


@pytest.fixture
def member(monkeypatch: pytest.MonkeyPatch) -> Member:
    made: list[FakeConsumer] = []

    def make(**config: Any) -> FakeConsumer:
        made.append(FakeConsumer(**config))
        return made[-1]

    monkeypatch.setattr(kafka_adapter, "KafkaConsumer", make)
    options = KafkaOptions(["localhost:9092"], "c", "g", auto_offset_reset="earliest")
    return Subscriber(options, ["IN"]), made[0]


def test_lag_uses_the_high_water_mark_and_what_this_member_committed(
    member: tuple[Subscriber, FakeConsumer],
) -> None:
    subscriber, consumer = member
    consumer.assign_by_rebalance({TP})
    consumer.high[TP] = 10
    consumer.broker_committed = 4

    assert subscriber.lag() == {("IN", 0): 6}
    assert consumer.round_trips == ["committed"]  # once, after the assignment

    subscriber.commit_offsets({("IN", 0): 8})
    consumer.high[TP] = 12
    assert subscriber.lag() == {("IN", 0): 4}
    assert consumer.round_trips == ["committed"]


def test_a_paused_or_unfetched_partition_asks_the_broker_for_its_end(
    member: tuple[Subscriber, FakeConsumer],
) -> None:
    subscriber, consumer = member
    consumer.assign_by_rebalance({TP})
    consumer.broker_committed = 4
    consumer.broker_end = 9
    assert subscriber.lag() == {("IN", 0): 5}  # nothing fetched yet
    consumer.high[TP] = 7
    consumer.paused_partitions = {TP}  # backpressure: its cached mark would fall behind
    assert subscriber.lag() == {("IN", 0): 5}
    assert consumer.round_trips.count("end_offsets") == 2


def test_after_a_rebalance_the_committed_offset_is_asked_again(
    member: tuple[Subscriber, FakeConsumer],
) -> None:
    subscriber, consumer = member
    consumer.assign_by_rebalance({TP})
    consumer.high[TP] = 10
    consumer.broker_committed = 4
    subscriber.lag()
    consumer.broker_committed = 9  # another member owned it meanwhile and committed
    consumer.assign_by_rebalance({TP})
    assert subscriber.lag() == {("IN", 0): 1}
    assert consumer.round_trips == ["committed", "committed"]


def test_a_partition_never_committed_counts_from_its_first_offset(
    member: tuple[Subscriber, FakeConsumer],
) -> None:
    subscriber, consumer = member
    consumer.assign_by_rebalance({TP})
    consumer.high[TP] = 3
    assert subscriber.lag() == {("IN", 0): 3}
