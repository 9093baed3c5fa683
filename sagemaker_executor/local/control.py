"""Steering a local SageMaker server from another process: :class:`LocalSageMakerControl`, the small
client of its ``/_local_sagemaker/`` control endpoints (``local.server`` lists them), and
:func:`server_process`, which runs ``python -m sagemaker_executor.local.server`` on a free port.

Used by the integration and component tests, the benchmarks and ``make demo``.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

CONTROL_PREFIX = "/_local_sagemaker/"
SERVER_MODULE = "sagemaker_executor.local.server"


class ControlError(Exception):
    """A control request that cannot be honoured; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class LocalSageMakerControl:
    """Client for the control endpoints of a running local SageMaker server."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, route: str, payload: Mapping[str, Any] | None = None) -> Any:
        data = json.dumps(payload).encode() if payload is not None else None
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__
            f"{self.base_url}{CONTROL_PREFIX}{route}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            detail = json.loads(error.read() or b"{}").get("error", error.reason)
            raise ControlError(error.code, str(detail)) from None

    def health(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def jobs(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "jobs")["jobs"]
        return result

    def job(self, name: str) -> dict[str, Any]:
        """The job named ``name`` (first match over accounts and regions); ``KeyError`` if none."""
        for job in self.jobs():
            if job["name"] == name:
                return job
        raise KeyError(name)

    def default_timeline(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "timeline")
        return result

    def set_default_timeline(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", "timeline", changes)
        return result

    def set_outcome(self, pattern: str, **timeline: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "outcomes", {"pattern": pattern, "timeline": timeline})
        return result

    def clear_outcomes(self) -> None:
        self._call("DELETE", "outcomes")

    def now(self) -> datetime:
        return datetime.fromisoformat(self._call("GET", "clock")["now"])

    def advance(self, seconds: float) -> datetime:
        return datetime.fromisoformat(self._call("POST", "clock/advance", {"seconds": seconds})["now"])

    def faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "faults")
        return result

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", "faults", changes)
        return result

    def set_quotas(self, **quotas: int) -> dict[str, int]:
        """Instance quotas per type (``**{"ml.p3.16xlarge": 0}``), replacing the ones set before."""
        result: dict[str, int] = self._call("PUT", "quotas", quotas)
        return result

    def reset(self) -> None:
        self._call("POST", "reset")

    def prepare_site(self, buckets: Sequence[str], role: str, region: str = "us-east-1") -> None:
        """Create what an Anubis site has before the executor starts: its S3 buckets and the IAM role
        the training jobs assume. Uses dummy credentials: real ones must never be sent here."""
        import boto3

        session = boto3.Session(
            region_name=region,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106
        )
        s3 = session.client("s3", endpoint_url=self.base_url)
        for bucket in buckets:
            s3.create_bucket(Bucket=bucket)
        session.client("iam", endpoint_url=self.base_url).create_role(
            RoleName=role, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )


def ping(url: str) -> None:
    """Raises unless the server at ``url`` answers its health endpoint."""
    LocalSageMakerControl(url, timeout=5).health()


@contextlib.contextmanager
def server_process(
    *, phase_seconds: float = 2.0, log_path: Path | None = None, extra_args: Sequence[str] = ()
) -> Iterator[LocalSageMakerControl]:
    """Run ``python -m sagemaker_executor.local.server`` on a free port in a child process.

    For the integration tests and the demo, which need the endpoint outside their own process. Yields
    a control client whose ``base_url`` is the endpoint; stops the server with SIGTERM on exit.
    """
    import subprocess

    log = open(log_path, "wb") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            SERVER_MODULE,
            "--port",
            "0",
            "--phase-seconds",
            str(phase_seconds),
            *extra_args,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        line = process.stdout.readline().decode() if process.stdout is not None else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"local SageMaker did not start (exit {process.poll()}): {line!r}")
        yield LocalSageMakerControl(line.split()[1])
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        if not isinstance(log, int):
            log.close()
