"""The consumer-group member's bookkeeping: which partitions the group moved, and the group's lag.

``adapters.kafka.Subscriber`` owns the KafkaConsumer and the committed offsets it knows of
(``{TopicPartition: offset or None}``); it hands both to :func:`group_lag` for ``/metrics``' lag (and so
KEDA's scaling), and gets told through a :class:`RebalanceListener` when a rebalance moves partitions,
so that it forgets what it knew of their committed offsets. The lag is counted as
``kafka-consumer-groups`` and KEDA's Kafka scaler count it (end offset minus the group's committed
offset), and from offsets the consumer already has wherever it can, so that a scrape costs the
brokers nothing in the common case.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from kafka import ConsumerRebalanceListener, TopicPartition

if TYPE_CHECKING:
    from kafka import KafkaConsumer


def group_lag(
    consumer: KafkaConsumer,
    committed: dict[TopicPartition, int | None],
    auto_offset_reset: str,
    timeout_ms: int,
) -> dict[tuple[str, int], int]:
    """The group's lag per partition assigned to ``consumer``, ``{(topic, partition): records}``: end
    offset minus the group's committed offset. Records read but not yet committed (in flight,
    waiting) count as lag.

    The end offset is the high-water mark the consumer's last fetch brought back
    (``KafkaConsumer.highwater``); the committed offset is the one in ``committed``, which is asked
    of the broker (and filled in) for a partition not in it yet. The broker is asked for an end offset
    only for a partition not fetched from yet or paused (backpressure stops its fetches, so its cached
    mark would fall behind), at most ``timeout_ms`` in all; ``KafkaError`` when it does not answer (the
    caller keeps the last values).

    A partition the group never committed counts as KEDA's Kafka scaler counts it: from its first
    offset with ``auto_offset_reset=earliest``, as 0 with ``latest``.
    """
    assigned = sorted(consumer.assignment())
    if not assigned:
        return {}
    deadline = time.monotonic() + timeout_ms / 1000

    def remaining_ms() -> int:
        return max(1, int((deadline - time.monotonic()) * 1000))

    paused = consumer.paused()
    ends = {tp: consumer.highwater(tp) if tp not in paused else None for tp in assigned}
    unknown = [tp for tp, end in ends.items() if end is None]
    if unknown:
        ends.update(consumer.end_offsets(unknown, timeout_ms=remaining_ms()))
    for tp in assigned:
        if tp not in committed:
            committed[tp] = consumer.committed(tp, timeout_ms=remaining_ms())
    never = [tp for tp in assigned if committed[tp] is None]
    starts: dict[TopicPartition, int | None] = dict(ends)
    if never and auto_offset_reset == "earliest":
        starts.update(consumer.beginning_offsets(never, timeout_ms=remaining_ms()))
    lag = {}
    for tp in assigned:
        end, offset = ends[tp], committed[tp]
        start = offset if offset is not None else starts[tp]
        lag[(tp.topic, tp.partition)] = max(0, (end or 0) - (start or 0))
    return lag


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    """kafka-python's rebalance callbacks as ``{(topic, partition)}`` sets for ``on_assigned`` and
    ``on_revoked``; ``moved`` gets the partitions first, both times."""

    def __init__(
        self,
        on_assigned: Callable[[set[tuple[str, int]]], None] | None,
        on_revoked: Callable[[set[tuple[str, int]]], None] | None,
        moved: Callable[[Iterable[TopicPartition]], None] = lambda partitions: None,
    ) -> None:
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self._moved = moved

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        revoked = list(revoked)
        self._moved(revoked)
        if self.on_revoked is not None:
            self.on_revoked({(tp.topic, tp.partition) for tp in revoked})

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        assigned = list(assigned)
        self._moved(assigned)
        if self.on_assigned is not None:
            self.on_assigned({(tp.topic, tp.partition) for tp in assigned})
