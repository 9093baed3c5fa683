"""What operators see of the dependency probes, readiness and the metrics they alert on, where mutation
testing found it unchecked: readiness reasons word for word, series exported from the start, the probe's
log of transitions, and a probe that never holds up shutdown."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from sagemaker_executor.adapters.kafka import KafkaOutage
from sagemaker_executor.domain.errors import FIX_BROKER, OutageError
from sagemaker_executor.service.observability import DependencyProbe, Health, LoopObserver, ServiceMetrics
from tests.unit.test_observability import samples

pytestmark = pytest.mark.timeout(30)


def outage_series(metrics: ServiceMetrics) -> dict[str, float]:
    got = samples(metrics)
    return {
        dict(labels)["dependency"]: value
        for (name, labels), value in got.items()
        if name == "sm_executor_outage"
    }


def test_outage_series_start_at_zero_for_each_dependency_and_no_outage_raises_none() -> None:
    metrics = ServiceMetrics()
    assert outage_series(metrics) == {"aws": 0, "kafka": 0, "disk": 0}
    metrics.set_outage("aws")
    assert outage_series(metrics) == {"aws": 1, "kafka": 0, "disk": 0}
    metrics.set_outage(None)
    assert outage_series(metrics) == {"aws": 0, "kafka": 0, "disk": 0}


def test_an_outage_of_another_dependency_gets_a_series_of_its_own() -> None:
    metrics = ServiceMetrics()
    metrics.set_outage("s3")
    assert outage_series(metrics) == {"aws": 0, "kafka": 0, "disk": 0, "s3": 1}


def test_metrics_go_to_the_registry_given() -> None:
    registry = CollectorRegistry()
    ServiceMetrics(registry).set_tracked(4)
    assert registry.get_sample_value("sm_executor_tracked_jobs") == 4


def test_the_observer_passes_failures_tracked_jobs_and_joining_on() -> None:
    metrics, health = ServiceMetrics(), Health(dependencies=())
    observer = LoopObserver(metrics, health, consumer_group="g")
    observer.failure("capacity")
    observer.set_tracked(7)
    got = samples(metrics)
    assert got[("sm_executor_failures_total", (("kind", "capacity"),))] == 1
    assert got[("sm_executor_tracked_jobs", ())] == 7
    assert health.readiness() == (False, "not joined to the consumer group")
    observer.joined(True)
    assert health.readiness() == (True, "ok")


def test_forgetting_the_lag_of_a_partition_never_reported_is_no_error() -> None:
    metrics = ServiceMetrics()
    observer = LoopObserver(metrics, Health(), consumer_group="g")
    observer.forget_lag({("BAI_APP_FETCHER", 9)})
    metrics.forget_lag("BAI_APP_FETCHER", 3, group="g")
    assert not [key for key in samples(metrics) if key[0] == "sm_executor_consumer_lag"]


def test_readiness_gives_every_reason_in_order() -> None:
    health = Health(dependencies=("kafka", "aws"))
    health.set_outage("outage of disk, records wait: disk full")
    assert health.readiness() == (
        False,
        "not joined to the consumer group; AWS not reachable: not checked yet; "
        "Kafka brokers not reachable: not checked yet; outage of disk, records wait: disk full",
    )


def test_an_outage_without_a_fix_is_reported_as_it_is_and_a_long_one_is_cut() -> None:
    health = Health(dependencies=())
    health.set_joined(True)
    observer = LoopObserver(ServiceMetrics(), health)
    observer.outage(OutageError("disk", "no space left on /tmp"))
    assert health.readiness() == (False, "outage of disk, records wait: no space left on /tmp")
    health.set_outage("x" * 1000)
    assert health.readiness() == (False, "x" * 600)


def test_a_probed_dependency_is_not_ready_before_its_first_check() -> None:
    # The app's Health names aws and kafka; a probe of anything else adds it, unchecked.
    health = Health(dependencies=())
    health.set_joined(True)
    DependencyProbe(health, lambda: None, name="kafka")
    DependencyProbe(health, lambda: None, name="disk")
    assert health.readiness() == (
        False,
        "disk not reachable: not checked yet; Kafka brokers not reachable: not checked yet",
    )


def test_a_failed_check_gives_the_error_and_its_fix_in_readiness() -> None:
    health = Health(dependencies=())
    health.set_joined(True)

    def check() -> None:
        raise KafkaOutage("Kafka brokers not answering: KafkaTimeoutError()")

    assert DependencyProbe(health, check, name="kafka").probe_once() is False
    assert health.readiness() == (
        False,
        "Kafka brokers not reachable: KafkaOutage: Kafka brokers not answering: KafkaTimeoutError() "
        f"(fix: {FIX_BROKER})",
    )


def test_the_probe_logs_each_change_once(caplog: pytest.LogCaptureFixture) -> None:
    outcomes = iter([None, None, OSError("refused"), OSError("refused again"), None])

    def check() -> None:
        error = next(outcomes)
        if error is not None:
            raise error

    probe = DependencyProbe(Health(), check, name="aws")
    with caplog.at_level(logging.INFO, logger="sagemaker_executor.service.observability"):
        for _ in range(5):
            probe.probe_once()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "AWS reachable"),
        ("WARNING", "AWS not reachable: OSError: refused"),
        ("INFO", "AWS reachable"),
    ]


def test_a_probe_that_fails_unexpectedly_says_so_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenHealth(Health):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0
            self.twice = threading.Event()

        def set_dependency(self, name: str, ok: bool, detail: str = "") -> None:
            self.calls += 1
            if self.calls >= 2:
                self.twice.set()
            if self.calls == 1:
                raise RuntimeError("a bug")

    health = BrokenHealth()
    probe = DependencyProbe(health, lambda: None, interval_s=0.01, name="aws")
    with caplog.at_level(logging.ERROR, logger="sagemaker_executor.service.observability"):
        probe.start()
        try:
            assert health.twice.wait(10)
        finally:
            probe.stop()
    assert [r.getMessage() for r in caplog.records] == ["aws probe failed unexpectedly"]
    assert caplog.records[0].exc_info is not None


def test_stopping_waits_no_longer_than_asked_for_a_hung_check() -> None:
    release = threading.Event()

    def hung() -> None:
        release.wait(20)

    probe = DependencyProbe(Health(), hung, interval_s=3600)
    probe.start()
    try:
        started = time.monotonic()
        probe.stop(timeout_s=0.2)
        assert time.monotonic() - started < 5
    finally:
        release.set()


def test_a_stopped_probe_can_be_started_again() -> None:
    checks: list[int] = []
    checked = threading.Semaphore(0)

    def check() -> None:
        checks.append(1)
        checked.release()

    probe = DependencyProbe(Health(), check, interval_s=3600)
    probe.start()
    assert checked.acquire(timeout=10)
    probe.stop()
    probe.start()
    try:
        assert checked.acquire(timeout=10)
    finally:
        probe.stop()
    assert len(checks) == 2


def test_a_running_probe_does_not_keep_the_process_alive() -> None:
    # A probe that was never stopped (start-up failed after it began) must not hold up the exit: the
    # interpreter waits for every thread that is not a daemon.
    before = set(threading.enumerate())
    probe = DependencyProbe(Health(), lambda: None, interval_s=3600)
    probe.start()
    try:
        (thread,) = set(threading.enumerate()) - before
        assert thread.daemon
    finally:
        probe.stop()
