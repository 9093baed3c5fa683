"""The concurrent loop's bookkeeping: commits never pass an unfinished record, backpressure pauses
fetching, records of one client on a partition keep their order, shutdown commits what is done."""

from __future__ import annotations

from concurrent.futures import Executor, Future

from sagemaker_executor.service.commands import CommandHandler
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.loop import ExecutorLoop, LoopSettings, describe_partitions
from sagemaker_executor.service.offsets import OffsetLedger
from sagemaker_executor.service.submission import SubmissionHandler, SubmissionSettings
from tests.builders import SITE, fetcher_event
from tests.fakes import FakeJobs, FakeScripts, FakeSink, FakeSource, record

FETCHER = "BAI_APP_FETCHER"


class HeldExecutor(Executor):
    """Queues tasks; the test runs them when and in the order it wants."""

    def __init__(self) -> None:
        self.tasks: list[tuple[Future, object, tuple]] = []

    def submit(self, fn, /, *args, **kwargs) -> Future:  # type: ignore[override]
        future: Future = Future()
        self.tasks.append((future, fn, args))
        return future

    def run(self, index: int) -> None:
        future, fn, args = self.tasks.pop(index)
        future.set_result(fn(*args))


def _loop(tmp_path, records, pool, max_in_flight=16):
    sink = FakeSink()
    source = FakeSource(records, sink)
    jobs = FakeJobs()
    emitter = StatusEmitter(sink, status_topic="S", node="n", clock_ms=lambda: 1)
    loop = ExecutorLoop(
        source,
        sink,
        emitter,
        SubmissionHandler(jobs, FakeScripts(), emitter, SubmissionSettings(SITE, "E", str(tmp_path), 10**6)),
        CommandHandler(jobs, emitter, "R"),
        LoopSettings(FETCHER, "CMD", "DLQ", max_in_flight=max_in_flight),
        pool=pool,
        sleep=lambda s: None,
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


def test_records_of_one_client_on_a_partition_keep_their_order(tmp_path) -> None:
    first, second = fetcher_event(client_id="same"), fetcher_event(client_id="same")
    pool = HeldExecutor()
    loop, _, _ = _loop(
        tmp_path, [record(FETCHER, first, 0, key="same"), record(FETCHER, second, 1, key="same")], pool
    )
    loop.run_once()
    # the second task was given the first's future: it must wait for it before running
    assert pool.tasks[1][2][1] is pool.tasks[0][0]


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
