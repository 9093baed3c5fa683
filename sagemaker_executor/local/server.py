"""A runnable local SageMaker endpoint: moto's ThreadedMotoServer with the local behaviour layer.

Owns the HTTP side of the local SageMaker: the server process and its JSON control endpoints under
``/_local_sagemaker/``. Fault injection (added latency and retriable errors on AWS calls) is
``local.faults``; ``local.control`` has ``LocalSageMakerControl``, the small client that tests,
benchmarks and the demo use to steer a server running in another process, and ``server_process``
(both still importable from here). The behaviour itself lives in ``sagemaker_executor.local.sagemaker``.

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
import io
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
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

from sagemaker_executor.local.control import CONTROL_PREFIX, ping
from sagemaker_executor.local.control import ControlError as ControlError
from sagemaker_executor.local.control import LocalSageMakerControl as LocalSageMakerControl
from sagemaker_executor.local.control import server_process as server_process
from sagemaker_executor.local.faults import ErrorKind as ErrorKind
from sagemaker_executor.local.faults import FaultInjector as FaultInjector
from sagemaker_executor.local.faults import FaultSettings as FaultSettings
from sagemaker_executor.local.faults import aws_error, json_error
from sagemaker_executor.local.runner import SAGEMAKER_STOP_GRACE_SECONDS, JobRunner
from sagemaker_executor.local.sagemaker import (
    Clock,
    LocalSageMaker,
    ManualClock,
    RealClock,
    Timeline,
    validation_refusal,
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


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
                return aws_error(environ, start_response, error)
            if self._quotas and environ.get("HTTP_X_AMZ_TARGET") == "SageMaker.CreateTrainingJob":
                refusal = self._over_quota(environ)
                if refusal is not None:
                    return json_error(start_response, 400, "ResourceLimitExceeded", refusal)
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


def _parser() -> argparse.ArgumentParser:
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
    return parser


def _checked(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Path]:
    """The ``--image`` directories by name, once the flags are known to fit together."""
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
    return images


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    images = _checked(parser, args)
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
            ping(server.url)
            print(f"READY {server.url}", flush=True)
            stop.wait()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
