"""What the service tells its operators: Prometheus metrics, liveness and readiness, and the AWS probe.

Owned here: the names, labels and buckets of the ``sm_executor_*`` metrics (:class:`ServiceMetrics`,
with prometheus_client's process, platform and GC collectors, a build-info gauge, and no ``*_created``
series),
what "live" and "ready" mean (:class:`Health`), and the background checks that AWS and the Kafka
brokers answer (:class:`DependencyProbe`). Nothing here does I/O of its own except the probes'
``check``, which the caller supplies.

``app`` builds one of each at start-up and hands them to the consumer loop, which reports what it does
(``consumed``, ``submitted``, ``failure``, ``heartbeat``, ``set_joined`` ...), and to
:class:`sagemaker_executor.adapters.http.HealthServer`, which serves ``/healthz``, ``/readyz`` and
``/metrics`` to the kubelet and to Prometheus.

* Live = the loop has called :meth:`Health.heartbeat` within ``stale_after_s``. A loop stuck in a call
  that never returns stops beating, and the kubelet restarts the pod. The grace period starts when the
  :class:`Health` is created, so start-up (importing the SDK, joining the group) is not a failure.
* Ready = the consumer has joined its group, the last check of each dependency (AWS, the brokers)
  succeeded, and the loop reports no outage. Otherwise ``/readyz`` gives every reason, with the fix
  for an outage. The brokers are checked every half session timeout with a session-timeout bound on
  each check, so losing them turns readiness false within two session timeouts.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import threading
import time
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from sagemaker_executor import __version__
from sagemaker_executor.domain.errors import OutageError

log = logging.getLogger(__name__)

# The failure kinds the loop reports; each is exported (at 0) from the start so that rate() and
# alerts work before the first failure of that kind.
FAILURE_KINDS: tuple[str, ...] = (
    "transient",
    "capacity",
    "outage",
    "permanent",
    "internal",
    "publish",
    "dead_letter",
)
# What an outage can be of (``OutageError.dependency``); each is exported (at 0) from the start.
DEPENDENCIES: tuple[str, ...] = ("aws", "kafka", "disk")

# From a quick CreateTrainingJob (~50 ms) to a submission that downloads and uploads large scripts.
SUBMISSION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)

_MAX_DETAIL = 300  # characters of an AWS error kept for /readyz and the logs


def _register_process_and_build(r: CollectorRegistry) -> None:
    """prometheus_client's process, platform and GC collectors, and ``sm_executor_build_info``."""
    ProcessCollector(registry=r)
    PlatformCollector(registry=r)
    GCCollector(registry=r)
    Info("sm_executor_build", "The executor's version and Python's", registry=r).info(
        {"version": __version__, "python": platform.python_version()}
    )


class ServiceMetrics:
    """The service's Prometheus metrics, in a registry of their own (so tests can make several).

    Besides the ``sm_executor_*`` metrics the registry holds prometheus_client's default collectors
    (``process_*``: CPU seconds, resident memory, open file descriptors, start time; ``python_info``;
    ``python_gc_*``) and ``sm_executor_build_info{version, python}`` = 1. Counters export no
    ``*_created`` series: prometheus_client's switch for that is process-wide, and this is the
    process's only registry.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        _register_process_and_build(self.registry)
        self._register_work(self.registry)
        self._register_state(self.registry)

    def _register_work(self, r: CollectorRegistry) -> None:
        """What the loop did: records consumed, jobs submitted, failures, records in flight, latency."""
        self._consumed = Counter(
            "sm_executor_messages_consumed",
            "Records consumed and committed, by how they ended",
            ["outcome"],
            registry=r,
        )
        self._submitted = Counter(
            "sm_executor_jobs_submitted",
            "Training jobs created (or adopted from an earlier attempt)",
            registry=r,
        )
        self._failures = Counter(
            "sm_executor_failures", "Failures by kind: " + ", ".join(FAILURE_KINDS), ["kind"], registry=r
        )
        for kind in FAILURE_KINDS:
            self._failures.labels(kind=kind)
        self._in_flight = Gauge("sm_executor_in_flight", "Records being handled right now", registry=r)
        self._latency = Histogram(
            "sm_executor_submission_latency_seconds",
            "Time from picking up a benchmark to its training job being created",
            buckets=SUBMISSION_BUCKETS,
            registry=r,
        )

    def _register_state(self, r: CollectorRegistry) -> None:
        """Where things stand: lag, tracked jobs, outages and the dependencies' last checks."""
        self._lag = Gauge(
            "sm_executor_consumer_lag",
            "Records between the consumer group's committed offset and the end of the partition, "
            "per partition this replica owns",
            ["topic", "partition", "group"],
            registry=r,
        )
        self._tracked = Gauge(
            "sm_executor_tracked_jobs", "Training jobs being tracked until they end", registry=r
        )
        self._outage = Gauge(
            "sm_executor_outage",
            "1 while the executor's own set-up fails (records wait, fetching is paused), by dependency",
            ["dependency"],
            registry=r,
        )
        self._up = Gauge(
            "sm_executor_dependency_up",
            "1 when the last readiness check of a dependency (aws, kafka) succeeded",
            ["dependency"],
            registry=r,
        )
        for dependency in DEPENDENCIES:
            self._outage.labels(dependency=dependency)

    def consumed(self, outcome: str) -> None:
        self._consumed.labels(outcome=outcome).inc()

    def submitted(self) -> None:
        self._submitted.inc()

    def failure(self, kind: str) -> None:
        self._failures.labels(kind=kind).inc()

    def set_in_flight(self, n: int) -> None:
        self._in_flight.set(n)

    def observe_submission(self, seconds: float) -> None:
        self._latency.observe(seconds)

    def set_lag(self, topic: str, partition: int, lag: int, *, group: str) -> None:
        """Export ``group``'s lag on a partition: records (end offset - committed offset)."""
        self._lag.labels(topic=topic, partition=str(partition), group=group).set(lag)

    def forget_lag(self, topic: str, partition: int, *, group: str) -> None:
        """Stop exporting a partition's lag (it was revoked: another replica reports it now)."""
        with contextlib.suppress(KeyError):
            self._lag.remove(topic, str(partition), group)

    def set_tracked(self, n: int) -> None:
        self._tracked.set(n)

    def set_dependency_up(self, dependency: str, up: bool) -> None:
        self._up.labels(dependency=dependency).set(1 if up else 0)

    def set_outage(self, dependency: str | None) -> None:
        """Mark ``dependency`` as out (the others as fine); ``None``: no outage."""
        for name in {*DEPENDENCIES, *([dependency] if dependency else [])}:
            self._outage.labels(dependency=name).set(1 if name == dependency else 0)


class Health:
    """Liveness and readiness, written by the loop and the probes, read by the HTTP server's threads."""

    def __init__(
        self,
        stale_after_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        dependencies: Iterable[str] = ("aws",),
    ) -> None:
        self._stale_after_s = stale_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._last_beat = clock()  # the grace period for start-up
        self._joined = False
        self._dependencies = {name: (False, "not checked yet") for name in dependencies}
        self._outage = ""

    def heartbeat(self) -> None:
        now = self._clock()
        with self._lock:
            self._last_beat = now

    def set_joined(self, joined: bool) -> None:
        with self._lock:
            self._joined = joined

    def expect(self, name: str, detail: str = "not checked yet") -> None:
        """Readiness also needs dependency ``name`` (``aws``, ``kafka``) to pass its check."""
        with self._lock:
            self._dependencies.setdefault(name, (False, detail))

    def set_dependency(self, name: str, ok: bool, detail: str = "") -> None:
        with self._lock:
            self._dependencies[name] = (ok, detail[:_MAX_DETAIL])

    def set_outage(self, reason: str) -> None:
        """What the loop is waiting on (an outage of its own set-up, with the fix); "" when none."""
        with self._lock:
            self._outage = reason[: _MAX_DETAIL * 2]

    def liveness(self, now: float | None = None) -> tuple[bool, str]:
        """(live, reason): live while the loop's last heartbeat is at most ``stale_after_s`` old."""
        now = self._clock() if now is None else now
        with self._lock:
            age = now - self._last_beat
        if age <= self._stale_after_s:
            return True, "ok"
        return False, f"consumer loop stalled: no heartbeat for {age:.0f}s (limit {self._stale_after_s:.0f}s)"

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason): ready once joined, with every dependency answering and no outage."""
        with self._lock:
            joined, dependencies, outage = self._joined, dict(self._dependencies), self._outage
        missing = []
        if not joined:
            missing.append("not joined to the consumer group")
        for name, (ok, detail) in sorted(dependencies.items()):
            if not ok:
                what = _UNREACHABLE.get(name, f"{name} not reachable")
                missing.append(f"{what}: {detail}" if detail else what)
        if outage:
            missing.append(outage)
        if missing:
            return False, "; ".join(missing)
        return True, "ok"


_UNREACHABLE = {"aws": "AWS not reachable", "kafka": "Kafka brokers not reachable"}


class DependencyProbe:
    """Calls ``check`` every ``interval_s`` in a daemon thread and records the result in ``health``
    under ``name``.

    ``check`` returns on success and raises on failure; the exception's text (and an ``OutageError``'s
    fix) becomes the readiness reason. It should be bounded by its client's own timeouts: a check
    that hangs delays the next one but never the consumer loop.
    """

    def __init__(
        self,
        health: Health,
        check: Callable[[], None],
        interval_s: float = 30.0,
        *,
        name: str = "aws",
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self._health = health
        self._metrics = metrics
        self._check = check
        self._interval_s = interval_s
        self._name = name
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_ok: bool | None = None
        health.expect(name)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"{self._name}-probe", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def probe_once(self) -> bool:
        """Run the check now and record the result; True if the dependency answered."""
        try:
            self._check()
        except Exception as error:
            detail = f"{type(error).__name__}: {error}"
            fix = getattr(error, "fix", "")
            if fix:
                detail += f" (fix: {fix})"
            ok = False
        else:
            detail, ok = "", True
        self._health.set_dependency(self._name, ok, detail)
        if self._metrics is not None:
            self._metrics.set_dependency_up(self._name, ok)
        if ok != self._last_ok:  # log transitions, not every probe
            unreachable = _UNREACHABLE.get(self._name, f"{self._name} not reachable")
            if ok:
                log.info("%s", unreachable.replace("not reachable", "reachable"))
            else:
                log.warning("%s: %s", unreachable, detail[:_MAX_DETAIL])
        self._last_ok = ok
        return ok

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.probe_once()
            except Exception:  # a bug in the probe must not end it silently
                log.exception("%s probe failed unexpectedly", self._name)
            self._stopping.wait(self._interval_s)


class LoopObserver:
    """What the consumer loop reports, fanned out to the metrics and the health state.

    ``consumer_group`` labels the lag; only the partitions of the latest report (and never a revoked
    one) have a lag series, so a replica never exports a value another replica owns.
    """

    def __init__(self, metrics: ServiceMetrics, health: Health, consumer_group: str = "") -> None:
        self._metrics = metrics
        self._health = health
        self._group = consumer_group
        self._lag_partitions: set[tuple[str, int]] = set()

    def heartbeat(self) -> None:
        self._health.heartbeat()

    def joined(self, joined: bool) -> None:
        self._health.set_joined(joined)

    def consumed(self, outcome: str, latency_s: float | None) -> None:
        self._metrics.consumed(outcome)
        if outcome in ("submission-submitted", "submission-already-submitted"):
            self._metrics.submitted()
            if latency_s is not None:
                self._metrics.observe_submission(latency_s)

    def failure(self, kind: str) -> None:
        self._metrics.failure(kind)

    def set_in_flight(self, count: int) -> None:
        self._metrics.set_in_flight(count)

    def set_tracked(self, count: int) -> None:
        self._metrics.set_tracked(count)

    def report_lag(self, lag: dict[tuple[str, int], int]) -> None:
        """The lag of every partition owned now, ``{(topic, partition): records}``; the series of a
        partition missing from it are removed."""
        self.forget_lag(self._lag_partitions - set(lag))
        for (topic, partition), value in lag.items():
            self._metrics.set_lag(topic, partition, value, group=self._group)
        self._lag_partitions = set(lag)

    def forget_lag(self, partitions: set[tuple[str, int]]) -> None:
        """Remove the lag series of ``partitions`` (revoked from this replica)."""
        for topic, partition in partitions:
            self._metrics.forget_lag(topic, partition, group=self._group)
        self._lag_partitions -= partitions

    def outage(self, error: OutageError | None) -> None:
        self._metrics.set_outage(error.dependency if error is not None else None)
        if error is None:
            self._health.set_outage("")
        else:
            fix = f" (fix: {error.fix})" if error.fix else ""
            self._health.set_outage(f"outage of {error.dependency}, records wait: {error}{fix}")
