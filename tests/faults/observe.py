"""Observing a fault scenario from outside the executor: what reached the output topics, what jobs the
local SageMaker holds, and the counts (sent, jobs created, duplicates, lost, errors) that
``bench.faults.report`` prints and stores. Works for any executor that keeps the process interface
(environment in, topics and SageMaker jobs out), whatever its internal concurrency."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from bench.faults import FaultCounts, report
from tests.integration.conftest import Executor, Pipeline

REPORTED: list[FaultCounts] = []


def drain_all(p: Pipeline, rounds: int = 50) -> None:
    """Read what the output topics hold now (several polls: a burst is more than one poll's worth)."""
    for _ in range(rounds):
        before = sum(len(v) for v in p.seen.values())
        p.drain(timeout_ms=200)
        if sum(len(v) for v in p.seen.values()) == before:
            return


@dataclass
class Seen:
    """The output topics by action (statuses, executor job ids) and by input offset (dead letters)."""

    # Keyed by the event's action_id as read (None: an answer that named none, kept to be seen).
    statuses: dict[str | None, list[str | None]] = field(default_factory=dict)
    messages: dict[str | None, list[str]] = field(default_factory=dict)
    executor_job_ids: dict[str | None, list[str]] = field(default_factory=dict)
    dead_letters: dict[int, list[str]] = field(default_factory=dict)  # input offset -> reasons

    @classmethod
    def of(cls, p: Pipeline) -> Seen:
        seen = cls()
        for e in p.on(p.topics.status):
            payload = e.get("payload") or {}
            seen.statuses.setdefault(e.get("action_id"), []).append(payload.get("status"))
            seen.messages.setdefault(e.get("action_id"), []).append(payload.get("message") or "")
        for e in p.on(p.topics.executor):
            seen.executor_job_ids.setdefault(e.get("action_id"), []).append(e["payload"]["job"]["id"])
        for d in p.on(p.topics.dead_letter):
            if d.get("source", {}).get("topic") == p.topics.fetcher:
                seen.dead_letters.setdefault(d["source"]["offset"], []).append(d.get("reason", ""))
        return seen

    def error_count(self) -> int:
        return sum(s.count("ERROR") for s in self.statuses.values()) + sum(
            len(r) for r in self.dead_letters.values()
        )


def job_names(p: Pipeline) -> list[str]:
    return [j["name"] for j in p.control.jobs()]


@dataclass
class Tally:
    """Per-action outcome of valid submissions: ``expected`` maps action id -> expected job name."""

    expected: dict[str, str]
    created: list[str]  # names of the jobs created since the scenario began
    seen: Seen
    others: frozenset[str] = frozenset()  # names other (hostile but valid) submissions may create

    def jobs_of(self, action: str) -> int:
        return self.created.count(self.expected[action])

    def duplicates(self) -> list[str]:
        """Actions with more than one job or more than one distinct job id in executor events; plus
        every job created that belongs to no action (a second job under another name)."""
        dup = [
            a
            for a in self.expected
            if self.jobs_of(a) > 1 or len(set(self.seen.executor_job_ids.get(a, []))) > 1
        ]
        names = set(self.expected.values()) | self.others
        return dup + [f"unexpected job {n}" for n in self.created if n not in names]

    def lost(self) -> list[str]:
        return [
            a
            for a in self.expected
            if self.jobs_of(a) == 0
            or "SUCCEEDED" not in self.seen.statuses.get(a, [])
            or not self.seen.executor_job_ids.get(a)
        ]

    def repeated_events(self) -> int:
        """Actions whose SUCCEEDED or executor event came more than once (allowed: at-least-once)."""
        return sum(
            1
            for a in self.expected
            if self.seen.statuses.get(a, []).count("SUCCEEDED") > 1
            or len(self.seen.executor_job_ids.get(a, [])) > 1
        )

    def wrong_job_ids(self) -> list[str]:
        return [a for a in self.expected if set(self.seen.executor_job_ids.get(a, [])) - {self.expected[a]}]


def tally(
    p: Pipeline,
    expected: dict[str, str],
    jobs_before: set[str],
    *,
    drain: bool = True,
    others: frozenset[str] = frozenset(),
) -> Tally:
    if drain:
        drain_all(p)
    created = [n for n in job_names(p) if n not in jobs_before]
    return Tally(expected, created, Seen.of(p), others)


OFFSETS: dict[str, Any] = {}


def uncommitted(p: Pipeline, end: int) -> int:
    """Records of the (one-partition) input topic up to ``end`` -- one past the last offset the scenario
    published -- that the executor's group has not committed; the last reading is kept in ``OFFSETS``.
    ``end`` is ours, not the broker's: Tansu's ListOffsets undercounts after batched produces."""
    consumer = KafkaConsumer(bootstrap_servers=p.bootstrap, group_id=p.group, enable_auto_commit=False)
    try:
        committed = consumer.committed(TopicPartition(p.topics.fetcher, 0)) or 0
        OFFSETS.clear()
        OFFSETS.update({"end": end, "committed": committed})
        return end - committed
    finally:
        consumer.close(autocommit=False)


def wait_committed(p: Pipeline, executor: Executor, end: int, timeout: float = 15.0) -> int:
    """The lag after waiting (briefly: commits may trail the last answer) until the group committed
    everything; read once, without waiting, when ``executor`` has exited and can commit no more."""
    if executor.process.poll() is not None:
        return uncommitted(p, end)
    deadline = time.monotonic() + timeout
    lag = uncommitted(p, end)
    while lag and time.monotonic() < deadline:
        time.sleep(0.5)
        lag = uncommitted(p, end)
    return lag


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    *,
    executors: Iterable[Executor] = (),
    every: Callable[[], None] | None = None,
    poll_s: float = 0.25,
    progress: Callable[[], int] | None = None,
    stall_s: float | None = None,
) -> bool:
    """True once ``condition`` holds; False on timeout, when a watched executor process has exited, or
    when ``progress()`` has not changed for ``stall_s`` (the caller reports what it saw, then asserts)."""
    watched = list(executors)
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        if condition():
            return True
        if any(e.process.poll() is not None for e in watched):
            return condition()
        if progress is not None and stall_s is not None:
            now = progress()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since > stall_s:
                return condition()
        if every is not None:
            every()
        time.sleep(poll_s)
    return condition()


def finish(counts: FaultCounts) -> FaultCounts:
    """Print and store the counts; the scenario asserts afterwards, so a failing run still reports."""
    REPORTED.append(counts)
    report(counts)
    return counts


def log_tail(executors: Iterable[Executor], chars: int = 3000) -> str:
    return "\n".join(
        f"--- {e.log.name} (exit {e.process.poll()})\n{e.log_text()[-chars:]}" for e in executors
    )


def stamp(start: float) -> float:
    return round(time.monotonic() - start, 1)


def as_list(values: Iterable[Any], limit: int = 20) -> list[Any]:
    return list(values)[:limit]
