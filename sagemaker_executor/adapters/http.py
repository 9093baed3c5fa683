"""The HTTP endpoint for the kubelet and Prometheus: ``/healthz``, ``/readyz`` and ``/metrics``.

Owned here: the HTTP side only (routes, status codes, content types), on the standard library's
``ThreadingHTTPServer`` in a daemon thread. ``/metrics`` is prometheus_client's own exposition
(``MetricsHandler``): it negotiates the OpenMetrics format and gzip with the scraper and honours
``name[]`` filters. What "live" and "ready" mean and what the metrics are belong to
``sagemaker_executor.service.observability``; this adapter sees them through the small protocols
below, so it imports nothing from the service layer.

``app`` starts a :class:`HealthServer` before the consumer loop and stops it after. The Kubernetes
manifests (``deploy/base/sm-executor.yml``) point the liveness and readiness probes and the
``prometheus.io/*`` scrape annotations at it.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, MetricsHandler

log = logging.getLogger(__name__)

_TEXT = "text/plain; charset=utf-8"


class HealthView(Protocol):
    def liveness(self) -> tuple[bool, str]: ...
    def readiness(self) -> tuple[bool, str]: ...


class MetricsView(Protocol):
    @property
    def registry(self) -> CollectorRegistry: ...


class HealthServer:
    """Serves ``health`` and ``metrics`` over HTTP until :meth:`stop`; ``port=0`` picks a free port."""

    def __init__(
        self,
        health: HealthView,
        metrics: MetricsView,
        host: str = "0.0.0.0",  # noqa: S104 -- the kubelet and Prometheus reach the pod IP
        port: int = 8080,
    ) -> None:
        self._health = health
        self._metrics = metrics
        self._host = host
        self._requested_port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the chosen one when created with port 0); only valid after start()."""
        if self._server is None:
            raise RuntimeError("HealthServer is not started")
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind and serve in a daemon thread; raises ``OSError`` if the port cannot be bound."""
        if self._server is not None:
            return
        server = ThreadingHTTPServer(
            (self._host, self._requested_port), _handler(self._health, self._metrics)
        )
        server.daemon_threads = True
        self._server = server
        # A short poll interval bounds how long stop() waits for the serving thread.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="health-http", daemon=True
        )
        self._thread.start()
        log.info("health and metrics endpoint on http://%s:%d", self._host, self.port)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(5.0)
        self._server = self._thread = None


def _handler(health: HealthView, metrics: MetricsView) -> type[BaseHTTPRequestHandler]:
    class Handler(MetricsHandler):
        server_version = "sagemaker-executor"
        sys_version = ""
        registry = metrics.registry

        def do_GET(self) -> None:  # http.server dispatches on this name
            path = self.path.split("?", 1)[0]
            try:
                if path == "/healthz":
                    self._probe(*health.liveness())
                elif path == "/readyz":
                    self._probe(*health.readiness())
                elif path == "/metrics":
                    super().do_GET()
                else:
                    self._reply(HTTPStatus.NOT_FOUND, b"not found\n", _TEXT)
            except Exception:
                log.exception("health endpoint failed on %s", path)
                self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error\n", _TEXT)

        def _probe(self, ok: bool, reason: str) -> None:
            status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            self._reply(status, (reason + "\n").encode("utf-8"), _TEXT)

        def _reply(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Probes arrive every few seconds; they belong at DEBUG, not on stderr.
            log.debug("%s %s", self.address_string(), format % args)

    return Handler
