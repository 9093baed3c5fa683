"""What the consumer loop (``service.loop``) is built with: the ports it is given, and its settings.

The loop reaches the broker and its observer only through these Protocols: :class:`Source` (the
consumer it polls and commits through, ``adapters.kafka.Subscriber``), :class:`Sink` (the producer it
publishes and flushes through) and :class:`Observer` (metrics and health,
``service.observability.LoopObserver``; :class:`NullObserver` reports nothing). Partitions are
``(topic, partition)`` pairs; offsets are Kafka's, the next to read. :class:`LoopSettings` are the
loop's topics and limits (``app`` builds them from the settings); :class:`RetryPolicy` is how long a
record that has to wait is parked: capped exponential backoff (``service.backoff``) with full jitter,
in seconds. Nothing here raises.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sagemaker_executor.domain.errors import OutageError
from sagemaker_executor.domain.limits import DEFAULT_MAX_REQUEST_BYTES
from sagemaker_executor.service.backoff import capped_exponential
from sagemaker_executor.service.emitter import RecordSink
from sagemaker_executor.service.records import InboundRecord


class Source(Protocol):
    """The consumer the loop polls and commits through (``adapters.kafka.Subscriber``)."""

    def poll(self, timeout_ms: int, max_records: int) -> Sequence[InboundRecord]: ...
    def commit_offsets(self, offsets: Mapping[tuple[str, int], int]) -> None: ...
    def pause_all(self) -> None: ...
    def resume_all(self) -> None: ...


class Sink(RecordSink, Protocol):
    def flush(self, timeout_s: float = 60.0) -> None: ...


class Observer(Protocol):
    """What the loop reports for metrics and health (``service.observability.LoopObserver``)."""

    def heartbeat(self) -> None: ...
    def joined(self, joined: bool) -> None: ...
    def consumed(self, outcome: str, latency_s: float | None) -> None: ...
    def failure(self, kind: str) -> None: ...
    def set_in_flight(self, count: int) -> None: ...
    def set_tracked(self, count: int) -> None: ...
    def report_lag(self, lag: dict[tuple[str, int], int]) -> None: ...
    def forget_lag(self, partitions: set[tuple[str, int]]) -> None: ...
    def outage(self, error: OutageError | None) -> None: ...


class NullObserver:
    def heartbeat(self) -> None:
        pass

    def joined(self, joined: bool) -> None:
        pass

    def consumed(self, outcome: str, latency_s: float | None) -> None:
        pass

    def failure(self, kind: str) -> None:
        pass

    def set_in_flight(self, count: int) -> None:
        pass

    def set_tracked(self, count: int) -> None:
        pass

    def report_lag(self, lag: dict[tuple[str, int], int]) -> None:
        pass

    def forget_lag(self, partitions: set[tuple[str, int]]) -> None:
        pass

    def outage(self, error: OutageError | None) -> None:
        pass


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter; giving up turns a transient failure into an ERROR.

    Times in seconds. Outages use ``cap_s`` and never give up; quotas use ``capacity_cap_s``.
    """

    base_s: float = 1.0
    cap_s: float = 60.0
    capacity_cap_s: float = 300.0
    give_up_s: float = 3600.0

    def delay(self, attempt: int, *, capacity: bool = False) -> float:
        cap = self.capacity_cap_s if capacity else self.cap_s
        return random.uniform(0, capped_exponential(self.base_s, cap, attempt))  # noqa: S311 -- jitter


@dataclass(frozen=True)
class LoopSettings:
    consumer_topic: str
    cmd_submit_topic: str
    dead_letter_topic: str
    max_in_flight: int = 16
    max_held: int = 0  # records held at once (running, waiting, parked); 0: 16 x max_in_flight
    poll_timeout_ms: int = 200
    max_records: int = 100
    shutdown_grace_s: float = 30.0
    retry: RetryPolicy = RetryPolicy()
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES  # a dead letter over this goes out minimal

    @property
    def held_limit(self) -> int:
        return self.max_held or 16 * self.max_in_flight
