"""The HTTP endpoint on a real socket: the probes follow Health (200/503 with the reason), /metrics
serves the Prometheus text format (or OpenMetrics, gzip'd, when the scraper asks), anything else is 404,
and requests are not logged to stderr."""

from __future__ import annotations

import gzip
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sagemaker_executor.adapters.http import HealthServer
from sagemaker_executor.service.observability import Health, ServiceMetrics


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def health(clock: FakeClock) -> Health:
    return Health(stale_after_s=60, clock=clock)


@pytest.fixture
def metrics() -> ServiceMetrics:
    return ServiceMetrics()


@pytest.fixture
def server(health: Health, metrics: ServiceMetrics) -> Iterator[HealthServer]:
    server = HealthServer(health, metrics, host="127.0.0.1", port=0)
    server.start()
    yield server
    server.stop()


def get(server: HealthServer, path: str) -> tuple[int, str, str]:
    """(status, content type, body) of GET path, for any status."""
    url = f"http://127.0.0.1:{server.port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers["Content-Type"], error.read().decode()


def test_port_zero_picks_a_free_port(server: HealthServer) -> None:
    assert server.port > 0


def test_liveness_follows_the_loop_heartbeat(server: HealthServer, health: Health, clock: FakeClock) -> None:
    assert get(server, "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
    clock.now += 90
    status, _, body = get(server, "/healthz")
    assert status == 503 and "no heartbeat for 90s" in body
    health.heartbeat()
    assert get(server, "/healthz")[0] == 200


def test_readiness_needs_the_group_and_aws(server: HealthServer, health: Health) -> None:
    status, _, body = get(server, "/readyz")
    assert status == 503
    assert "not joined to the consumer group" in body and "AWS not reachable" in body
    health.set_joined(True)
    health.set_dependency("aws", True)
    assert get(server, "/readyz") == (200, "text/plain; charset=utf-8", "ok\n")
    health.set_dependency("aws", False, "ClientError: ExpiredToken")
    assert get(server, "/readyz")[:2] == (503, "text/plain; charset=utf-8")
    assert "ExpiredToken" in get(server, "/readyz")[2]


def test_metrics_are_served_in_the_prometheus_text_format(
    server: HealthServer, metrics: ServiceMetrics
) -> None:
    metrics.consumed("submission-created")
    metrics.set_lag("BAI_APP_FETCHER", 0, 3, group="sm-executor")
    status, content_type, body = get(server, "/metrics")
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    names = {family.name for family in text_string_to_metric_families(body)}
    assert {"sm_executor_messages_consumed", "sm_executor_consumer_lag", "sm_executor_in_flight"} <= names
    assert 'sm_executor_consumer_lag{group="sm-executor",partition="0",topic="BAI_APP_FETCHER"} 3.0' in body


def test_metrics_negotiate_openmetrics_and_gzip_with_the_scraper(server: HealthServer) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0", "Accept-Encoding": "gzip"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        content_type, encoding, body = (
            response.headers["Content-Type"],
            response.headers["Content-Encoding"],
            response.read(),
        )
    assert content_type.startswith("application/openmetrics-text")
    assert encoding == "gzip"
    text = gzip.decompress(body).decode()
    assert text.endswith("# EOF\n")
    assert "sm_executor_in_flight" in text


def test_metrics_carry_the_process_and_build_series_and_no_created_ones(server: HealthServer) -> None:
    _, _, body = get(server, "/metrics")
    series = [line.split("{")[0].split(" ")[0] for line in body.splitlines() if not line.startswith("#")]

    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "python_info"} <= set(series)
    assert "sm_executor_build_info" in series
    assert re.search(r'^sm_executor_build_info\{python="[0-9.]+",version="[^"]+"\} 1\.0$', body, re.M)
    assert not [name for name in series if name.endswith("_created")]


@pytest.mark.parametrize("path", ["/", "/health", "/ready", "/metrics/x", "/favicon.ico"])
def test_anything_else_is_404(server: HealthServer, path: str) -> None:
    assert get(server, path)[0] == 404


def test_a_query_string_is_ignored(server: HealthServer) -> None:
    assert get(server, "/healthz?verbose=1")[0] == 200


def test_a_failing_view_is_a_500_not_a_dead_server(metrics: ServiceMetrics) -> None:
    class Broken:
        def liveness(self) -> tuple[bool, str]:
            raise RuntimeError("bug")

        def readiness(self) -> tuple[bool, str]:
            return True, "ok"

    server = HealthServer(Broken(), metrics, host="127.0.0.1", port=0)
    server.start()
    try:
        assert get(server, "/healthz")[0] == 500
        assert get(server, "/readyz")[0] == 200
    finally:
        server.stop()


def test_requests_are_logged_at_debug_not_on_stderr(
    server: HealthServer, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="sagemaker_executor.adapters.http"):
        get(server, "/healthz")
        server.stop()  # joins the serving thread, so the request's log call has happened
    assert capfd.readouterr().err == ""
    assert any("GET /healthz" in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records)


def test_stop_releases_the_port(health: Health, metrics: ServiceMetrics) -> None:
    first = HealthServer(health, metrics, host="127.0.0.1", port=0)
    first.start()
    port = first.port
    first.stop()
    second = HealthServer(health, metrics, host="127.0.0.1", port=port)
    second.start()
    try:
        assert get(second, "/healthz")[0] == 200
    finally:
        second.stop()
    with pytest.raises(RuntimeError):
        _ = second.port
