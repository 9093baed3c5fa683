"""A runnable local SageMaker endpoint: moto's ThreadedMotoServer with the local behaviour layer.

Owns the HTTP side of the local SageMaker: the server process, its JSON control endpoints under
``/_local_sagemaker/``, fault injection (added latency and retriable errors on AWS calls), and
``LocalSageMakerControl``, the small client that tests, benchmarks and the demo use to steer a server
running in another process. The behaviour itself lives in ``sagemaker_executor.local.sagemaker``.

Run: ``python -m sagemaker_executor.local.server --port P [--host 127.0.0.1] [--manual-clock]
[--phase-seconds 2] [--stop-seconds 1] [--run-jobs [--stop-grace-seconds 120] [--jobs-dir DIR]
[--image NAME=DIR ...]]``.
``--port 0`` picks a free port. ``--run-jobs`` runs each training job that no outcome rule, tag or
hyperparameter gives a timeline as processes on this machine (``local.runner``; needs root; not with
``--manual-clock``), with ``--stop-grace-seconds`` between SIGTERM and SIGKILL when a job is stopped,
and the jobs' directories under ``--jobs-dir`` (default: a new temporary directory, removed at exit);
a job of image NAME finds a copy of DIR as its working directory (the image's WORKDIR).
Prints ``READY <url>`` on stdout once it answers requests and serves until SIGTERM or SIGINT. Clients
point boto3 at the URL (``endpoint_url`` or ``AWS_ENDPOINT_URL``) with dummy credentials.

Control endpoints (JSON in and out; errors are ``{"error": ...}`` with 400, 404, 405 or 409):
- ``GET  health``                      → ``{"status": "ok", "manual_clock": bool, "run_jobs": bool}``
- ``GET  jobs``                        → ``{"jobs": [{name, arn, status, secondary_status, ...}]}``
- ``GET|PUT timeline``                 → the default timeline; PUT replaces the fields given
- ``POST outcomes {"pattern", "timeline"}`` → jobs named like ``pattern`` (fnmatch) follow the current default
  timeline with the given fields replaced (e.g. ``{"outcome": "Failed", "failure_reason": "..."}``);
  ``DELETE outcomes`` forgets every such rule
- ``GET  clock`` → ``{"now", "manual"}``; ``POST clock/advance {"seconds"}`` (409 without --manual-clock)
- ``GET|PUT faults`` → ``{"latency_ms", "error_rate", "error_kind", "seed", "stats"}``; PUT replaces
  the fields given. ``error_kind`` is ``throttling`` (400 ThrottlingException) or ``internal``
  (500 InternalFailure). Faults apply to every AWS call, never to control or ``/moto-api`` paths.
- ``GET|PUT quotas`` → ``{"ml.p3.16xlarge": 0, ...}``: the account's instance quota per instance
  type for training jobs; PUT replaces them all. A CreateTrainingJob asking for more instances of a
  type than its quota is answered ``ResourceLimitExceeded`` in SageMaker's wording (a running job does
  not count against it: the local SageMaker models the limit, not the utilisation).
- ``POST reset`` → ends running jobs (``--run-jobs``), empties every moto backend, forgets rules and
  plans, restores the startup default timeline and turns faults off.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import random
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from moto.moto_api._internal.models import moto_api_backend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import get_input_stream

from sagemaker_executor.local.runner import SAGEMAKER_STOP_GRACE_SECONDS, JobRunner
from sagemaker_executor.local.sagemaker import (
    Clock,
    LocalSageMaker,
    ManualClock,
    RealClock,
    Timeline,
    validation_refusal,
)

CONTROL_PREFIX = "/_local_sagemaker/"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class ErrorKind(StrEnum):
    THROTTLING = "throttling"
    INTERNAL = "internal"


_ERRORS = {
    ErrorKind.THROTTLING: (400, "ThrottlingException", "Rate exceeded"),
    ErrorKind.INTERNAL: (500, "InternalFailure", "We encountered an internal error. Please try again."),
}


@dataclass(frozen=True)
class FaultSettings:
    """Latency added to every AWS call and the fraction of calls answered with a retriable error."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_kind: ErrorKind = ErrorKind.THROTTLING
    seed: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.latency_ms, bool) or not isinstance(self.latency_ms, int | float):
            raise ValueError("latency_ms must be a number")
        if isinstance(self.error_rate, bool) or not isinstance(self.error_rate, int | float):
            raise ValueError("error_rate must be a number")
        if self.latency_ms < 0 or not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("latency_ms must be >= 0 and error_rate within [0, 1]")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValueError("seed must be an integer or null")
        object.__setattr__(self, "error_kind", ErrorKind(self.error_kind))

    def merged(self, changes: Mapping[str, Any]) -> FaultSettings:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return replace(self, **dict(changes))

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "error_kind": self.error_kind.value,
            "seed": self.seed,
        }


class FaultInjector:
    """Decides, per AWS call, how long to delay it and whether to answer it with an error."""

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self._sleep = sleep
        self._lock = threading.Lock()
        self._settings = FaultSettings()
        self._random = random.Random()  # noqa: S311 - fault injection, not cryptography
        self._stats = {"calls": 0, "delayed": 0, "errors": 0}

    @property
    def settings(self) -> FaultSettings:
        with self._lock:
            return self._settings

    def configure(self, settings: FaultSettings) -> None:
        with self._lock:
            self._settings = settings
            self._random = random.Random(settings.seed)  # noqa: S311 - fault injection, not cryptography

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def reset(self) -> None:
        self.configure(FaultSettings())
        with self._lock:
            self._stats = dict.fromkeys(self._stats, 0)

    def before_call(self) -> ErrorKind | None:
        """Wait out the added latency, then return the error to answer with, if any."""
        with self._lock:
            settings = self._settings
            fail = settings.error_rate > 0 and self._random.random() < settings.error_rate
            self._stats["calls"] += 1
            self._stats["delayed"] += settings.latency_ms > 0
            self._stats["errors"] += fail
        if settings.latency_ms > 0:
            self._sleep(settings.latency_ms / 1000)
        return settings.error_kind if fail else None


def _aws_error(environ: dict[str, Any], start_response: Callable[..., Any], kind: ErrorKind) -> list[bytes]:
    get_input_stream(environ).read()  # drain the request so a kept-alive connection stays in step
    status, code, message = _ERRORS[kind]
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id), ("x-amz-request-id", request_id)]
    if environ.get("HTTP_X_AMZ_TARGET"):  # JSON protocols (SageMaker, ...) name the operation here
        body = json.dumps({"__type": code, "message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code)]
    else:  # query and REST-XML protocols (S3, STS, ...) all parse this shape
        body = (
            f"<ErrorResponse><Error><Type>{'Sender' if status < 500 else 'Receiver'}</Type>"
            f"<Code>{code}</Code><Message>{message}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers.append(("Content-Type", "text/xml"))
    reason = "Bad Request" if status == 400 else "Internal Server Error"
    start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


def _json_error(start_response: Callable[..., Any], status: int, code: str, message: str) -> list[bytes]:
    """An error of a JSON-protocol API (SageMaker) as botocore parses it."""
    body = json.dumps({"__type": code, "message": message}).encode()
    request_id = str(uuid.uuid4())
    start_response(
        f"{status} Bad Request",
        [
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", code),
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


class ControlError(Exception):
    """A control request that cannot be honoured; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class LocalSageMakerApp:
    """WSGI app in front of moto's: control paths are answered here, AWS calls get faults, then moto."""

    def __init__(self, moto_app: WsgiApp, local: LocalSageMaker, faults: FaultInjector) -> None:
        self._moto_app = moto_app
        self._local = local
        self._faults = faults
        self._routes: dict[str, dict[str, Callable[[Any], Any]]] = {
            "health": {"GET": self._health},
            "jobs": {"GET": lambda _: {"jobs": [job.to_json() for job in self._local.jobs()]}},
            "timeline": {"GET": self._get_timeline, "PUT": self._put_timeline},
            "outcomes": {"POST": self._add_outcome, "DELETE": self._clear_outcomes},
            "clock": {"GET": self._clock},
            "clock/advance": {"POST": self._advance},
            "faults": {"GET": self._get_faults, "PUT": self._put_faults},
            "quotas": {"GET": lambda _: dict(self._quotas), "PUT": self._put_quotas},
            "reset": {"POST": self._reset},
        }
        self._quotas: dict[str, int] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(CONTROL_PREFIX):
            return self._control(environ, start_response)
        if not path.startswith("/moto-api"):
            error = self._faults.before_call()
            if error is not None:
                return _aws_error(environ, start_response, error)
            if self._quotas and environ.get("HTTP_X_AMZ_TARGET") == "SageMaker.CreateTrainingJob":
                refusal = self._over_quota(environ)
                if refusal is not None:
                    return _json_error(start_response, 400, "ResourceLimitExceeded", refusal)
        return self._moto_app(environ, start_response)

    def _over_quota(self, environ: dict[str, Any]) -> str | None:
        """SageMaker's ResourceLimitExceeded text when the request asks for more than a quota; the body
        is put back for moto either way."""
        body = get_input_stream(environ).read()
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        if validation_refusal("CreateTrainingJob", body) is not None:
            return None  # SageMaker validates a request before it looks at quotas
        try:
            config = json.loads(body).get("ResourceConfig") or {}
            instance_type, count = str(config["InstanceType"]), int(config.get("InstanceCount", 1))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        limit = self._quotas.get(instance_type)
        if limit is None or count <= limit:
            return None
        return (
            f"The account-level service limit '{instance_type} for training job usage' is {limit} "
            f"Instances, with current utilization of 0 Instances and a request delta of {count} "
            "Instances. Please use AWS Service Quotas to request an increase for this quota. If AWS "
            "Service Quotas is not available, contact AWS support to request an increase for this quota."
        )

    def _put_quotas(self, payload: dict[str, Any]) -> dict[str, Any]:
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in payload.values()):
            raise ControlError(400, "quotas are instance counts: non-negative integers")
        self._quotas = {str(k): int(v) for k, v in payload.items()}
        return dict(self._quotas)

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        route = request.path[len(CONTROL_PREFIX) :].strip("/")
        try:
            handlers = self._routes.get(route)
            if handlers is None:
                raise ControlError(404, f"no control endpoint {route!r}")
            handler = handlers.get(request.method)
            if handler is None:
                raise ControlError(405, f"{request.method} not allowed on {route!r}")
            payload = json.loads(request.get_data() or b"{}")
            if not isinstance(payload, dict):
                raise ControlError(400, "the request body must be a JSON object")
            status, body = 200, handler(payload)
        except ControlError as error:
            status, body = error.status, {"error": str(error)}
        except (ValueError, TypeError) as error:
            status, body = 400, {"error": str(error)}
        response = Response(json.dumps(body), status=status, mimetype="application/json")
        return response(environ, start_response)

    def _health(self, _: Any) -> dict[str, Any]:
        return {
            "status": "ok",
            "manual_clock": isinstance(self._local.clock, ManualClock),
            "run_jobs": self._local.run_jobs,
        }

    def _get_timeline(self, _: Any) -> dict[str, Any]:
        return self._local.default_timeline.to_json()

    def _put_timeline(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._local.default_timeline = self._local.default_timeline.merged(payload)
        return self._local.default_timeline.to_json()

    def _add_outcome(self, payload: dict[str, Any]) -> dict[str, Any]:
        pattern = payload.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise ControlError(400, "pattern must be a non-empty string")
        timeline = self._local.default_timeline.merged(payload.get("timeline") or {})
        self._local.set_outcome(pattern, timeline)
        return {"pattern": pattern, "timeline": timeline.to_json()}

    def _clear_outcomes(self, _: Any) -> dict[str, Any]:
        self._local.clear_outcomes()
        return {}

    def _clock(self, _: Any) -> dict[str, Any]:
        clock = self._local.clock
        return {"now": clock.now().isoformat(), "manual": isinstance(clock, ManualClock)}

    def _advance(self, payload: dict[str, Any]) -> dict[str, Any]:
        clock = self._local.clock
        if not isinstance(clock, ManualClock):
            raise ControlError(409, "the server was not started with --manual-clock")
        seconds = payload.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ControlError(400, "seconds must be a number")
        return {"now": clock.advance(seconds).isoformat(), "manual": True}

    def _get_faults(self, _: Any) -> dict[str, Any]:
        return self._faults.settings.to_json() | {"stats": self._faults.stats()}

    def _put_faults(self, payload: dict[str, Any]) -> dict[str, Any]:
        self._faults.configure(self._faults.settings.merged(payload))
        return self._get_faults(payload)

    def _reset(self, _: Any) -> dict[str, Any]:
        self._local.reset()  # first: running jobs still write to moto's S3 and logs
        moto_api_backend.reset()  # what moto's own /moto-api/reset does
        self._faults.reset()
        self._quotas = {}
        return {}


class LocalSageMakerServer(ThreadedMotoServer):
    """moto's ThreadedMotoServer with ``LocalSageMakerApp`` wrapped around its WSGI app."""

    def __init__(
        self,
        local: LocalSageMaker,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultInjector | None = None,
    ) -> None:
        super().__init__(ip_address=host, port=port, verbose=False)
        self.local = local
        self.faults = faults if faults is not None else FaultInjector()
        self._start_error: BaseException | None = None

    def _server_entry(self) -> None:
        # Mirrors ThreadedMotoServer._server_entry of moto 5.2.5 (its private attributes included); the
        # only change is the app, and a bind failure is reported to start() instead of hanging it.
        app = LocalSageMakerApp(DomainDispatcherApplication(create_backend_app), self.local, self.faults)
        try:
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
        except BaseException as error:
            self._start_error = error
            self._server_ready_event.set()
            return
        self._server_ready_event.set()
        self._server.serve_forever()

    def start(self) -> None:
        super().start()
        if self._start_error is not None:
            raise self._start_error

    @property
    def url(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"


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


def _ping(url: str) -> None:
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
        [sys.executable, "-m", __name__, "--port", "0", "--phase-seconds", str(phase_seconds), *extra_args],
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--manual-clock", action="store_true", help="time moves only via clock/advance")
    parser.add_argument("--phase-seconds", type=float, default=2.0, help="default seconds per phase")
    parser.add_argument("--stop-seconds", type=float, default=1.0, help="default seconds in Stopping")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    parser.add_argument(
        "--run-jobs",
        action="store_true",
        help="run training jobs as processes on this machine (needs root) instead of on a timeline",
    )
    parser.add_argument(
        "--stop-grace-seconds",
        type=float,
        default=SAGEMAKER_STOP_GRACE_SECONDS,
        help="with --run-jobs: seconds from SIGTERM to SIGKILL when a job is stopped (SageMaker: 120)",
    )
    parser.add_argument(
        "--jobs-dir",
        type=Path,
        help="with --run-jobs: where job directories are made (default: a new temporary directory)",
    )
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="with --run-jobs: a job of image NAME finds the files of DIR in its working directory "
        "(standing in for the image's WORKDIR); repeatable",
    )
    args = parser.parse_args(argv)
    images: dict[str, Path] = {}
    for item in args.image:
        name, sep, directory = item.partition("=")
        if not sep or not name or not Path(directory).is_dir():
            parser.error(f"--image takes NAME=DIR with an existing directory, got {item!r}")
        images[name] = Path(directory)
    if args.run_jobs and args.manual_clock:
        parser.error("--run-jobs runs processes in real time: it cannot take --manual-clock")
    if args.stop_grace_seconds < 0:
        parser.error("--stop-grace-seconds must not be negative")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    clock: Clock = ManualClock() if args.manual_clock else RealClock()
    runner = JobRunner(args.stop_grace_seconds, args.jobs_dir, images=images) if args.run_jobs else None
    local = LocalSageMaker(clock, Timeline.uniform(args.phase_seconds, args.stop_seconds), runner=runner)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with local:
        server = LocalSageMakerServer(local, host=args.host, port=args.port)
        server.start()
        try:
            _ping(server.url)
            print(f"READY {server.url}", flush=True)
            stop.wait()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
