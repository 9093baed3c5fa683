"""The concurrent loop's bookkeeping: commits never pass an unfinished record, backpressure pauses
fetching, records run at once whatever their client and in order only per action, shutdown commits
what is done."""

from __future__ import annotations

import random
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client import generate_latest

from sagemaker_executor.adapters import sourcedir
from sagemaker_executor.domain.errors import CapacityError, OutageError, PublishError, TransientError
from sagemaker_executor.service.commands import CommandHandler
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.loop import ExecutorLoop, describe_partitions
from sagemaker_executor.service.loopconfig import LoopSettings, RetryPolicy
from sagemaker_executor.service.observability import FAILURE_KINDS, Health, LoopObserver, ServiceMetrics
from sagemaker_executor.service.offsets import OffsetLedger
from sagemaker_executor.service.submission import SubmissionHandler, SubmissionSettings
from tests.builders import SITE, cancel_command, fetcher_event
from tests.fakes import FakeJobs, FakeScripts, FakeSink, FakeSource, record
from tests.harness import CMD, RETURN, Harness

FETCHER = "BAI_APP_FETCHER"


@dataclass
class Held:
    future: Future[Any]
    fn: Callable[..., object]
    args: tuple[Any, ...]


class HeldExecutor(Executor):
    """Queues tasks; the test runs them when and in the order it wants."""

    def __init__(self) -> None:
        self.tasks: list[Held] = []

    def submit(self, fn, /, *args, **kwargs) -> Future[Any]:
        future: Future[Any] = Future()
        self.tasks.append(Held(future, fn, args))
        return future

    def run(self, index: int) -> None:
        held = self.tasks.pop(index)
        held.future.set_result(held.fn(*held.args))


def _loop(tmp_path, records, pool, max_in_flight=16, observer=None):
    sink = FakeSink()
    source = FakeSource(records, sink)
    jobs = FakeJobs()
    emitter = StatusEmitter(sink, status_topic="S", node="n", clock_ms=lambda: 1)
    loop = ExecutorLoop(
        source,
        sink,
        emitter,
        SubmissionHandler(
            jobs,
            FakeScripts(),
            emitter,
            SubmissionSettings(SITE, "E", str(tmp_path), 10**6),
            sources=sourcedir,
        ),
        CommandHandler(jobs, emitter, "R"),
        LoopSettings(FETCHER, "CMD", "DLQ", max_in_flight=max_in_flight),
        pool=pool,
        observer=observer,
    )
    return loop, source, sink


def test_ledger_commits_only_the_finished_prefix() -> None:
    ledger = OffsetLedger()
    p = ("t", 0)
    for offset in (5, 6, 7):
        ledger.started(p, offset)
    ledger.finished(p, 7)
    assert ledger.committable() == {}
    ledger.finished(p, 5)
    assert ledger.committable() == {p: 6}
    ledger.finished(p, 6)
    assert ledger.committable() == {p: 8} and ledger.in_flight() == 0
    ledger.started(p, 8)
    ledger.forget([p])
    assert ledger.in_flight() == 0 and ledger.committable() == {}


def test_records_finishing_out_of_order_commit_only_up_to_the_first_unfinished(tmp_path) -> None:
    events = [fetcher_event(client_id=f"client-{i}") for i in range(3)]
    pool = HeldExecutor()
    loop, source, _ = _loop(
        tmp_path, [record(FETCHER, e, i, key=e["client_id"]) for i, e in enumerate(events)], pool
    )
    loop.run_once()
    assert len(pool.tasks) == 3
    pool.run(2)  # offset 2 finishes first
    loop.run_once()
    assert source.committed == {}
    pool.run(0)  # offset 0
    loop.run_once()
    assert source.committed == {(FETCHER, 0): 1}
    pool.run(0)  # offset 1
    loop.run_once()
    assert source.committed == {(FETCHER, 0): 3}


def test_backpressure_pauses_fetching_at_the_limit_and_resumes_below_it(tmp_path) -> None:
    events = [fetcher_event(client_id=f"c{i}") for i in range(4)]
    pool = HeldExecutor()
    loop, source, _ = _loop(
        tmp_path,
        [record(FETCHER, e, i, key=e["client_id"]) for i, e in enumerate(events)],
        pool,
        max_in_flight=2,
    )
    loop.run_once()
    assert len(pool.tasks) == 2  # never more than the limit started
    loop.run_once()
    assert source.paused and len(pool.tasks) == 2
    pool.run(0)
    loop.run_once()
    assert not source.paused and len(pool.tasks) == 2


def test_records_of_one_client_run_at_once(tmp_path) -> None:
    # A nightly sweep comes from one user: its submissions are independent and must not queue.
    events = [fetcher_event(client_id="same") for _ in range(3)]
    pool = HeldExecutor()
    loop, _, _ = _loop(tmp_path, [record(FETCHER, e, i, key="same") for i, e in enumerate(events)], pool)
    loop.run_once()
    assert len(pool.tasks) == 3


def test_records_about_one_action_run_in_order_and_the_waiting_one_holds_no_slot(tmp_path) -> None:
    event, other = fetcher_event(), fetcher_event()
    pool = HeldExecutor()
    records = [record(FETCHER, event, 0), record(FETCHER, event, 1), record(FETCHER, other, 2)]
    loop, source, _ = _loop(tmp_path, records, pool, max_in_flight=2)
    loop.run_once()
    loop.run_once()
    # the duplicate waits behind offset 0 without a slot: the other action got the second one
    assert [task.args[0].record.offset for task in pool.tasks] == [0, 2]
    pool.run(0)
    loop.run_once()
    assert [task.args[0].record.offset for task in pool.tasks] == [2, 1]
    pool.run(1)
    pool.run(0)
    loop.run_once()
    assert source.committed == {(FETCHER, 0): 3}


def test_a_cancel_waits_for_the_submission_it_targets(tmp_path) -> None:
    event = fetcher_event()
    pool = HeldExecutor()
    records = [record(FETCHER, event, 0), record("CMD", cancel_command(event["action_id"]), 0)]
    loop, _, _ = _loop(tmp_path, records, pool)
    loop.run_once()
    assert [task.args[0].record.topic for task in pool.tasks] == [FETCHER]
    pool.run(0)
    loop.run_once()
    assert [task.args[0].record.topic for task in pool.tasks] == ["CMD"]


def test_a_cancel_behind_a_throttled_submission_stops_the_job_once_it_exists(tmp_path) -> None:
    # The submission is throttled and waits for its retry; the cancel about it, read in the same poll,
    # must wait behind it: run at once it would find no job, answer "not found", and the job created
    # on the retry would run on, uncancelled.
    event = fetcher_event()
    h = Harness(tmp_path, [record(FETCHER, event, 0), record(CMD, cancel_command(event["action_id"]), 0)])
    h.jobs.transient_failures = 1
    h.drain()
    assert h.jobs.create_calls == 2 and h.jobs.stopped == [event["action_id"]]
    assert [r["payload"]["return_code"] for r in h.sink.on(RETURN)] == [0]
    assert h.source.committed == {(FETCHER, 0): 1, (CMD, 0): 1}


def test_shutdown_commits_what_is_done_and_leaves_the_rest(tmp_path) -> None:
    events = [fetcher_event(client_id=f"c{i}") for i in range(2)]
    pool = HeldExecutor()
    loop, source, _ = _loop(
        tmp_path, [record(FETCHER, e, i, key=e["client_id"]) for i, e in enumerate(events)], pool
    )
    loop.run_once()
    pool.run(0)
    loop.stop()
    loop.drain(grace_s=0.2)
    assert source.committed == {(FETCHER, 0): 1} and source.paused


def test_partitions_are_described_per_topic_sorted_and_none_when_empty() -> None:
    # The integration tests read replicas' assignments back from this form.
    assert describe_partitions({("B", 2), ("A", 1), ("B", 0)}) == "A[1] B[0, 2]"
    assert describe_partitions(set()) == "none"


def test_a_revoked_partition_stops_exporting_lag_at_once(tmp_path) -> None:
    # Another replica owns it now and exports its lag; a stale copy here would double it in sums.
    metrics = ServiceMetrics()
    observer = LoopObserver(metrics, Health(), consumer_group="sm-executor")
    loop, _, _ = _loop(tmp_path, [], HeldExecutor(), observer=observer)
    loop.on_assigned({(FETCHER, 0), (FETCHER, 1)})
    observer.report_lag({(FETCHER, 0): 4, (FETCHER, 1): 7})

    loop.on_revoked({(FETCHER, 1)})

    exported = [
        line
        for line in generate_latest(metrics.registry).decode().splitlines()
        if line.startswith("sm_executor_consumer_lag{")
    ]
    assert exported == [
        f'sm_executor_consumer_lag{{group="sm-executor",partition="0",topic="{FETCHER}"}} 4.0'
    ]


def test_a_record_whose_partition_was_revoked_while_it_ran_is_not_retried_here(tmp_path) -> None:
    from sagemaker_executor.domain.errors import TransientError

    event = fetcher_event()
    pool = HeldExecutor()
    loop, _, _ = _loop(tmp_path, [record(FETCHER, event, 0)], pool)
    loop.run_once()
    assert len(pool.tasks) == 1
    loop._attempts._submissions.handle = lambda raw, retry=False: (_ for _ in ()).throw(  # type: ignore[method-assign]
        TransientError("ThrottlingException")
    )
    loop._settings = LoopSettings(FETCHER, "CMD", "DLQ", shutdown_grace_s=0)  # do not wait for it
    loop.on_revoked({(FETCHER, 0)})
    pool.run(0)  # it finishes after the revocation, asking to be retried
    loop.run_once()
    assert loop._parked == [] and pool.tasks == []  # left to the partition's new owner
    loop.on_assigned({(FETCHER, 0)})
    assert (FETCHER, 0) not in loop._revoked


def _waiting_then_revoked(
    tmp_path, *, outage: bool = False
) -> tuple[Harness, dict[str, Any], dict[str, Any]]:
    """Partition 0 and partition 1 each hold a submission whose first create fails and its duplicate,
    waiting behind it. Partition 0's failure is throttling, or with ``outage`` missing credentials.
    Partition 0 is then revoked and the loop runs on."""
    a, c = fetcher_event(), fetcher_event()
    records = [record(FETCHER, a, 0, partition=0), record(FETCHER, a, 1, partition=0)]
    records += [record(FETCHER, c, 0, partition=1), record(FETCHER, c, 1, partition=1)]
    h = Harness(tmp_path, records)
    failures = {a["action_id"]: 1, c["action_id"]: 1}
    create = h.jobs.create

    def fails_once_each(spec, source_dir) -> None:
        if failures.get(spec.job_name):
            failures[spec.job_name] -= 1
            if outage and spec.job_name == a["action_id"]:
                raise OutageError("aws", "AWS credentials: injected", "fix it")
            raise TransientError("ThrottlingException: injected")
        create(spec, source_dir)

    h.jobs.create = fails_once_each  # type: ignore[method-assign]
    h.loop.run_once()
    assert h.jobs.jobs == {}  # both parked, both duplicates behind them
    h.loop.on_revoked({(FETCHER, 0)})
    h.drain()
    return h, a, c


def test_records_that_wait_on_a_revoked_partition_are_left_to_its_next_owner(tmp_path) -> None:
    h, a, c = _waiting_then_revoked(tmp_path)
    # partition 0's parked record and the duplicate behind it never run here; partition 1's both do
    assert set(h.jobs.jobs) == {c["action_id"]}
    assert h.statuses_of(a["action_id"]) == ["PENDING"]
    assert h.statuses_of(c["action_id"]).count("SUCCEEDED") == 2  # the job, then its duplicate
    assert h.source.committed == {(FETCHER, 1): 2}


def test_an_outage_only_a_revoked_record_waited_on_ends_with_it(tmp_path) -> None:
    h, _, c = _waiting_then_revoked(tmp_path, outage=True)
    assert h.observer.outages[-1] is None and not h.source.paused
    assert set(h.jobs.jobs) == {c["action_id"]} and h.source.committed == {(FETCHER, 1): 2}


def test_backoff_doubles_from_its_base_up_to_its_cap_with_full_jitter(monkeypatch) -> None:
    drawn: list[tuple[float, float]] = []

    def highest(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", highest)  # the loop's jitter draws from the random module
    policy = RetryPolicy(base_s=1.0, cap_s=60.0, capacity_cap_s=300.0)
    assert [policy.delay(n) for n in (0, 1, 5, 6, 31, 1000)] == [1, 2, 32, 60, 60, 60]
    assert [policy.delay(n, capacity=True) for n in (6, 8, 9)] == [64, 256, 300]
    assert RetryPolicy(base_s=0.5).delay(2) == 2.0
    assert {low for low, _ in drawn} == {0}  # full jitter: anywhere from no wait at all


def test_outcomes_and_failure_kinds_are_the_metrics_label_values(tmp_path) -> None:
    records = [
        record(FETCHER, fetcher_event(), 0),
        record(CMD, cancel_command("nobody"), 0),
        record(FETCHER, {"action_id": "a", "client_id": "c", "payload": {}}, 1),  # no descriptor
        record(FETCHER, b"{not json", 2),
    ]
    h = Harness(tmp_path, records)
    h.drain(2)
    assert sorted(h.observer.outcomes) == [
        "command-not-found",
        "dead-letter",
        "dead-letter",
        "submission-submitted",
    ]
    assert h.observer.failures == ["dead_letter", "dead_letter"]


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (PublishError("broker down"), "publish"),
        (OutageError("aws", "AWS credentials: injected", "fix it"), "outage"),
        (TransientError("ThrottlingException: injected"), "transient"),
        (CapacityError("ResourceLimitExceeded: injected"), "capacity"),
    ],
)
def test_each_wait_is_counted_under_its_own_failure_kind(tmp_path, failure, kind) -> None:
    h = Harness(tmp_path, [record(FETCHER, fetcher_event(), 0)])
    failures = iter([failure])
    create = h.jobs.create

    def fails_once(spec, source_dir) -> None:
        error = next(failures, None)
        if error is not None:
            raise error
        create(spec, source_dir)

    h.jobs.create = fails_once  # type: ignore[method-assign]
    h.drain()
    assert h.observer.failures == [kind] and kind in FAILURE_KINDS
    assert h.observer.outcomes == ["submission-submitted"]


def test_max_held_counts_parked_records_and_pauses_fetching_at_the_limit(tmp_path) -> None:
    events = [fetcher_event() for _ in range(3)]
    h = Harness(tmp_path, [record(FETCHER, e, i) for i, e in enumerate(events)], max_held=2)
    h.jobs.transient_failures = 10**6  # every record that runs is parked: none runs, all are held
    h.loop.run_once()
    h.loop.run_once()
    assert h.source.position == {(FETCHER, 0): 2} and h.source.paused  # the third is not fetched
    h.jobs.transient_failures = 0
    h.drain()
    assert h.source.committed == {(FETCHER, 0): 3} and len(h.jobs.jobs) == 3


def test_a_record_that_finishes_after_its_partition_was_forgotten_is_ignored() -> None:
    # A record still running when its partition was revoked finishes later: nothing to commit, no error.
    ledger = OffsetLedger()
    ledger.started(("t", 0), 5)
    ledger.forget([("t", 0)])
    ledger.finished(("t", 0), 5)
    ledger.finished(("t", 1), 7)  # never started here
    assert ledger.committable() == {}
    assert ledger.in_flight() == 0
