"""Metrics, liveness/readiness and the AWS probe: what is exported after each call, and when the service
counts as live and ready (fake clock; the probe's thread is awaited on events, never slept on)."""

from __future__ import annotations

import platform
import threading
from dataclasses import replace

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sagemaker_executor import __version__
from sagemaker_executor.service.observability import (
    FAILURE_KINDS,
    DependencyProbe,
    Health,
    LoopObserver,
    ServiceMetrics,
)
from tests.builders import cancel_command, fetcher_event, minimal_contents
from tests.fakes import record
from tests.harness import CMD, FETCHER, Harness


def samples(metrics: ServiceMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every exported sample as {(name, sorted labels): value}, parsed back from the text format."""
    out = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_metric_is_exported_with_its_labels_after_the_calls() -> None:
    metrics = ServiceMetrics()
    metrics.consumed("submission-created")
    metrics.consumed("submission-created")
    metrics.consumed("dead-letter")
    metrics.submitted()
    metrics.failure("transient")
    metrics.set_in_flight(3)
    metrics.observe_submission(0.07)
    metrics.observe_submission(45.0)
    metrics.set_lag("BAI_APP_FETCHER", 2, 17, group="sm-executor")
    metrics.set_tracked(5)

    got = samples(metrics)
    assert got[("sm_executor_messages_consumed_total", (("outcome", "submission-created"),))] == 2
    assert got[("sm_executor_messages_consumed_total", (("outcome", "dead-letter"),))] == 1
    assert got[("sm_executor_jobs_submitted_total", ())] == 1
    assert got[("sm_executor_failures_total", (("kind", "transient"),))] == 1
    assert got[("sm_executor_in_flight", ())] == 3
    assert got[("sm_executor_submission_latency_seconds_count", ())] == 2
    assert got[("sm_executor_submission_latency_seconds_sum", ())] == pytest.approx(45.07)
    assert got[("sm_executor_submission_latency_seconds_bucket", (("le", "0.1"),))] == 1
    assert got[("sm_executor_submission_latency_seconds_bucket", (("le", "60.0"),))] == 2
    assert (
        got[
            (
                "sm_executor_consumer_lag",
                (("group", "sm-executor"), ("partition", "2"), ("topic", "BAI_APP_FETCHER")),
            )
        ]
        == 17
    )
    assert got[("sm_executor_tracked_jobs", ())] == 5


def test_failure_kinds_are_exported_at_zero_before_the_first_failure() -> None:
    got = samples(ServiceMetrics())
    for kind in FAILURE_KINDS:
        assert got[("sm_executor_failures_total", (("kind", kind),))] == 0


def test_latency_buckets_span_50ms_to_two_minutes() -> None:
    metrics = ServiceMetrics()
    metrics.observe_submission(1.0)
    bounds = [
        float(dict(labels)["le"])
        for (name, labels) in samples(metrics)
        if name == "sm_executor_submission_latency_seconds_bucket"
    ]
    finite = [b for b in bounds if b != float("inf")]
    assert min(finite) == 0.05 and max(finite) == 120.0


def test_each_instance_has_its_own_registry() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()
    first.submitted()
    assert samples(first)[("sm_executor_jobs_submitted_total", ())] == 1
    assert samples(second)[("sm_executor_jobs_submitted_total", ())] == 0


def lags(metrics: ServiceMetrics) -> dict[tuple[str, str, str], float]:
    """The exported lag series as {(group, topic, partition): value}."""
    return {
        (dict(labels)["group"], dict(labels)["topic"], dict(labels)["partition"]): value
        for (name, labels), value in samples(metrics).items()
        if name == "sm_executor_consumer_lag"
    }


def test_a_revoked_partitions_lag_is_no_longer_exported() -> None:
    metrics = ServiceMetrics()
    metrics.set_lag("T", 0, 4, group="g")
    metrics.set_lag("T", 1, 9, group="g")
    metrics.forget_lag("T", 0, group="g")
    metrics.forget_lag("T", 7, group="g")  # never reported: no error
    assert lags(metrics) == {("g", "T", "1"): 9}


def test_the_observer_labels_lag_with_the_group_and_drops_what_it_no_longer_owns() -> None:
    metrics = ServiceMetrics()
    observer = LoopObserver(metrics, Health(), consumer_group="sm-executor")

    observer.report_lag({("IN", 0): 5, ("IN", 1): 2, ("CMD", 0): 0})
    assert lags(metrics) == {
        ("sm-executor", "IN", "0"): 5,
        ("sm-executor", "IN", "1"): 2,
        ("sm-executor", "CMD", "0"): 0,
    }

    observer.forget_lag({("IN", 1)})  # revoked
    assert lags(metrics) == {("sm-executor", "IN", "0"): 5, ("sm-executor", "CMD", "0"): 0}

    observer.report_lag({("IN", 0): 1})  # a partition missing from a report is not owned any more
    assert lags(metrics) == {("sm-executor", "IN", "0"): 1}


def test_the_conventional_series_are_exported_and_no_created_ones() -> None:
    got = samples(ServiceMetrics())
    names = {name for name, _ in got}

    assert {
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    } <= names
    assert {"python_info", "python_gc_collections_total"} <= names
    build = {labels: value for (name, labels), value in got.items() if name == "sm_executor_build_info"}
    assert build == {(("python", platform.python_version()), ("version", __version__)): 1.0}
    assert not [name for name in names if name.endswith("_created")]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_live_during_the_start_up_grace_period_then_only_while_the_loop_beats() -> None:
    clock = FakeClock()
    health = Health(stale_after_s=60, clock=clock)
    assert health.liveness() == (True, "ok")
    clock.now += 61
    live, reason = health.liveness()
    assert not live and "no heartbeat for 61s" in reason
    health.heartbeat()
    assert health.liveness() == (True, "ok")
    assert health.liveness(now=clock.now + 60)[0]
    assert not health.liveness(now=clock.now + 60.5)[0]


def test_ready_needs_both_the_group_and_aws_and_says_what_is_missing() -> None:
    health = Health(clock=FakeClock())
    ready, reason = health.readiness()
    assert not ready
    assert "not joined to the consumer group" in reason and "AWS not reachable: not checked yet" in reason

    health.set_joined(True)
    ready, reason = health.readiness()
    assert not ready and "consumer group" not in reason and "AWS" in reason

    health.set_dependency("aws", True, "")
    assert health.readiness() == (True, "ok")

    health.set_dependency("aws", False, "EndpointConnectionError: Could not connect")
    assert health.readiness() == (False, "AWS not reachable: EndpointConnectionError: Could not connect")

    health.set_dependency("aws", True)
    health.set_joined(False)  # a rebalance took every partition away, or the consumer left
    assert health.readiness() == (False, "not joined to the consumer group")


class RecordingHealth(Health):
    """A Health that lets the test wait for the probe's n-th report."""

    def __init__(self) -> None:
        super().__init__()
        self.reports: list[tuple[bool, str]] = []
        self.reported = threading.Condition()

    def set_dependency(self, name: str, ok: bool, detail: str = "") -> None:
        super().set_dependency(name, ok, detail)
        with self.reported:
            self.reports.append((ok, detail))
            self.reported.notify_all()

    def wait_for(self, n: int) -> list[tuple[bool, str]]:
        with self.reported:
            assert self.reported.wait_for(lambda: len(self.reports) >= n, timeout=10), self.reports
            return list(self.reports)


def test_probe_checks_at_once_then_every_interval_and_follows_the_outcome() -> None:
    health = RecordingHealth()
    health.set_joined(True)
    outcomes = iter([None, RuntimeError("throttled"), None])
    failed = threading.Event()

    def check() -> None:
        error = next(outcomes, None)
        if error is not None:
            failed.set()
            raise error

    probe = DependencyProbe(health, check, interval_s=0.01)
    probe.start()
    try:
        reports = health.wait_for(3)
    finally:
        probe.stop()
    assert failed.is_set()
    assert reports[:3] == [(True, ""), (False, "RuntimeError: throttled"), (True, "")]
    assert health.readiness() == (True, "ok")


def test_probe_stops_promptly_even_with_a_long_interval() -> None:
    health = RecordingHealth()
    probe = DependencyProbe(health, lambda: None, interval_s=3600)
    probe.start()
    health.wait_for(1)  # the first check runs at once
    probe.stop(timeout_s=5)
    assert "aws-probe" not in [t.name for t in threading.enumerate()]


def test_probe_once_records_the_exception_text() -> None:
    health = Health()

    def unreachable() -> None:
        raise ConnectionError("could not connect to sagemaker.us-east-1.amazonaws.com")

    assert DependencyProbe(health, unreachable).probe_once() is False
    assert health.readiness()[1].endswith(
        "ConnectionError: could not connect to sagemaker.us-east-1.amazonaws.com"
    )


def test_a_broker_probe_failure_makes_readiness_false_with_the_fix_and_exports_it() -> None:
    from sagemaker_executor.adapters.kafka import KafkaOutage

    health = Health(dependencies=("aws", "kafka"))
    health.set_joined(True)
    health.set_dependency("aws", True)
    metrics = ServiceMetrics()
    broker_up = {"ok": False}

    def check() -> None:
        if not broker_up["ok"]:
            raise KafkaOutage("Kafka brokers not answering: KafkaTimeoutError()")

    probe = DependencyProbe(health, check, name="kafka", metrics=metrics)
    assert probe.probe_once() is False
    ready, reason = health.readiness()
    assert (
        not ready and reason.startswith("Kafka brokers not reachable") and "KAFKA_BOOTSTRAP_SERVERS" in reason
    )
    assert 'sm_executor_dependency_up{dependency="kafka"} 0.0' in generate_latest(metrics.registry).decode()
    broker_up["ok"] = True
    assert probe.probe_once() is True
    assert health.readiness() == (True, "ok")
    assert 'sm_executor_dependency_up{dependency="kafka"} 1.0' in generate_latest(metrics.registry).decode()


def test_an_outage_the_loop_waits_on_is_in_readiness_and_the_outage_gauge_until_it_ends() -> None:
    from sagemaker_executor.domain.errors import OutageError
    from sagemaker_executor.service.observability import LoopObserver

    health, metrics = Health(dependencies=()), ServiceMetrics()
    health.set_joined(True)
    observer = LoopObserver(metrics, health)
    observer.outage(OutageError("aws", "AWS credentials: expired", "renew them"))
    ready, reason = health.readiness()
    assert not ready and "outage of aws" in reason and "renew them" in reason
    exported = generate_latest(metrics.registry).decode()
    assert 'sm_executor_outage{dependency="aws"} 1.0' in exported
    assert 'sm_executor_outage{dependency="kafka"} 0.0' in exported
    observer.outage(None)
    assert health.readiness() == (True, "ok")
    assert 'sm_executor_outage{dependency="aws"} 0.0' in generate_latest(metrics.registry).decode()


def test_the_loop_counts_each_job_created_or_adopted_and_nothing_else(tmp_path) -> None:
    """``sm_executor_jobs_submitted_total`` as the loop drives it: one job created, the same record
    redelivered (the job adopted), an invalid descriptor and a cancel (no job): two submissions."""
    event = fetcher_event()
    invalid = fetcher_event(minimal_contents(hardware=None))
    metrics = ServiceMetrics()
    stamped = [
        replace(record(FETCHER, event, 0), timestamp_ms=1),
        replace(record(FETCHER, event, 1), timestamp_ms=1),
        record(FETCHER, invalid, 2),
        record(CMD, cancel_command(event["action_id"]), 0),
    ]
    h = Harness(tmp_path, stamped, observer=LoopObserver(metrics, Health()))
    h.drain(3)

    got = samples(metrics)
    assert len(h.jobs.jobs) == 1 and h.jobs.stopped == [event["action_id"]]
    assert got[("sm_executor_jobs_submitted_total", ())] == 2
    assert got[("sm_executor_messages_consumed_total", (("outcome", "submission-submitted"),))] == 1
    assert got[("sm_executor_messages_consumed_total", (("outcome", "submission-already-submitted"),))] == 1
    assert got[("sm_executor_messages_consumed_total", (("outcome", "submission-error"),))] == 1
    # the two submissions that reached a job, both stamped by the producer
    assert got[("sm_executor_submission_latency_seconds_count", ())] == 2
