"""The executor as a child process: ``python -m sagemaker_executor.cli`` with its output in a log file.

One way to start, watch and stop it for the integration tests (``tests/integration/conftest.py``),
``make bench`` (``bench/throughput.py``) and ``make demo`` (``local.demo``): :meth:`ExecutorProcess.start`,
then wait for a line of its log, find its health port (``HEALTH_PORT=0`` picks a free one and logs
it), ask ``/readyz``, and stop it with SIGTERM as Kubernetes does.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

COMMAND = (sys.executable, "-m", "sagemaker_executor.cli")
_HEALTH_PORT_LINE = re.compile(r"health and metrics on port (\d+)")


@dataclass
class ExecutorProcess:
    process: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, env: Mapping[str, str], log: Path) -> ExecutorProcess:
        """The executor started with exactly ``env``, stdout and stderr into ``log``."""
        with open(log, "wb") as log_file:
            process = subprocess.Popen(
                COMMAND, env=dict(env), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
            )
        return cls(process, log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first match of ``pattern`` in the log; ``RuntimeError`` (with the log's end) when the
        executor exits or ``timeout`` seconds pass first."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.log_text())
            if found:
                return found
            if self.process.poll() is not None:
                raise RuntimeError(f"the executor exited with {self.process.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no {pattern!r} in the executor's log within {timeout:g} s:\n{self.tail()}"
                )
            time.sleep(0.1)

    def tail(self, chars: int = 3000) -> str:
        return self.log_text()[-chars:]

    def health_url(self, timeout: float = 60) -> str:
        """``http://127.0.0.1:PORT`` of the health server, as the executor logged it."""
        return f"http://127.0.0.1:{self.wait_for_log(_HEALTH_PORT_LINE.pattern, timeout)[1]}"

    def readiness(self, timeout: float = 5) -> tuple[int, str]:
        """``GET /readyz``: (HTTP status, body)."""
        return readyz(self.health_url(), timeout)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, as Kubernetes stops a pod; its exit code (``TimeoutExpired`` if it does not exit)."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; the exit code."""
        if self.process.poll() is None:
            try:
                return self.terminate(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def readyz(base_url: str, timeout: float) -> tuple[int, str]:
    """``GET <base_url>/readyz``: (HTTP status, body); ``URLError``/``OSError`` when nothing answers."""
    if not base_url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {base_url!r}")
    try:
        with urllib.request.urlopen(base_url + "/readyz", timeout=timeout) as response:  # noqa: S310 -- checked
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode(errors="replace")
