"""Which offsets may be committed while records of a partition finish out of order.

``service.loop`` starts records concurrently; a partition's committed offset may only move past a record
once it and every record before it on that partition are finished, or a crash would skip the unfinished
ones. :class:`OffsetLedger` keeps, per partition, the offsets in flight and the finished ones, and says
how far each partition may be committed. Pure bookkeeping: no Kafka, no threads (the loop calls it
from its own thread only).
"""

from __future__ import annotations

from collections.abc import Iterable

Partition = tuple[str, int]


class OffsetLedger:
    def __init__(self) -> None:
        self._started: dict[Partition, list[int]] = {}  # offsets in the order they were started
        self._finished: dict[Partition, set[int]] = {}

    def started(self, partition: Partition, offset: int) -> None:
        self._started.setdefault(partition, []).append(offset)

    def finished(self, partition: Partition, offset: int) -> None:
        if offset in self._started.get(partition, ()):
            self._finished.setdefault(partition, set()).add(offset)

    def in_flight(self) -> int:
        return sum(len(offsets) for offsets in self._started.values()) - sum(
            len(done) for done in self._finished.values()
        )

    def committable(self) -> dict[Partition, int]:
        """Per partition, the offset to commit now (one past the last finished prefix), if it moved."""
        moves: dict[Partition, int] = {}
        for partition, offsets in self._started.items():
            done = self._finished.get(partition, set())
            prefix = 0
            while prefix < len(offsets) and offsets[prefix] in done:
                prefix += 1
            if prefix == 0:
                continue
            moves[partition] = offsets[prefix - 1] + 1
            for offset in offsets[:prefix]:
                done.discard(offset)
            del offsets[:prefix]
        return moves

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Drop the partitions' state (they were revoked; their new owner starts from the commit)."""
        for partition in set(partitions):
            self._started.pop(partition, None)
            self._finished.pop(partition, None)
