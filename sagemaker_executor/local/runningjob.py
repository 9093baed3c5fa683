"""Local SageMaker, run mode: one training job being run, from CreateTrainingJob to its final status.

Owns a ``RunningJob`` (``local.runner``'s ``JobRunner`` starts them; ``local.runmode`` reports each
one's ``RunState`` through moto's job object): on a thread of its own it lays out each host
(``local.hosts``) and downloads the channels from moto's S3 (Downloading), starts the hosts'
commands and copies their merged stdout and stderr line by line to CloudWatch Logs and through
``MetricDefinitions`` (Training), waits for every host to exit 0, one to fail, ``StopTrainingJob``
or ``MaxRuntimeInSeconds``, uploads the outputs (Uploading) and enters the final status, then
removes the job directory. ``RunState`` is the job as DescribeTrainingJob shows it: statuses with
the moments they were entered, ``FailureReason``, training times, final metrics and model artifacts.
"""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sagemaker_executor.domain.joblog import LOG_GROUP
from sagemaker_executor.local import jobspec
from sagemaker_executor.local.hosts import Host, tar_gz
from sagemaker_executor.local.jobspec import JobSpec, MetricParser, MetricValue, Unsupported
from sagemaker_executor.local.motoaws import MotoAws, StorageError

if TYPE_CHECKING:
    from sagemaker_executor.local.runner import JobRunner

log = logging.getLogger(__name__)

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Docker's default PATH
MAX_EVENT_BYTES = 256 * 1024 - 26  # CloudWatch Logs: an event's message plus 26 bytes, at most 256 KiB

IN_PROGRESS = ("Starting", "Downloading", "Training", "Uploading")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RunState:
    """A run-mode job as DescribeTrainingJob reports it; ``transitions`` are (secondary status, start)."""

    status: str
    secondary_status: str
    transitions: tuple[tuple[str, datetime], ...]
    failure_reason: str | None
    training_start: datetime | None
    training_end: datetime | None
    final_metrics: tuple[MetricValue, ...]
    model_artifacts: str | None

    @property
    def ended(self) -> bool:
        return self.status in ("Completed", "Failed", "Stopped")


def _primary(secondary: str) -> str:
    if secondary in IN_PROGRESS:
        return "InProgress"
    return "Stopped" if secondary == "MaxRuntimeExceeded" else secondary


class _Stop(Exception):
    """The job was stopped before its hosts started."""


class RunningJob:
    """One training job being run; thread-safe. ``snapshot()`` is what DescribeTrainingJob shows."""

    def __init__(self, spec: JobSpec | Unsupported, aws: MotoAws, runner: JobRunner) -> None:
        self._spec = spec
        self._aws = aws
        self._runner = runner
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._done = threading.Event()
        self._created = time.monotonic()
        self._transitions: list[tuple[str, datetime]] = [("Starting", _now())]
        self._failure_reason: str | None = None
        self._stop_as: str | None = None  # "Stopped" or "MaxRuntimeExceeded" once stopping
        self._grace = runner.stop_grace_seconds
        self._model_artifacts: str | None = None
        self._metrics = MetricParser(spec.metric_definitions if isinstance(spec, JobSpec) else ())
        self._hosts: list[Host] = []
        self._root: Path | None = None
        self._thread = threading.Thread(target=self._run, name="local-sagemaker-job", daemon=True)

    def start(self) -> None:
        self._thread.start()

    # --- seen from other threads ------------------------------------------------------------------

    def snapshot(self) -> RunState:
        with self._lock:
            transitions = tuple(self._transitions)
            secondary = transitions[-1][0]
            status = _primary(secondary)
            starts = [moment for name, moment in transitions if name == "Downloading"]
            ended = status in ("Completed", "Failed", "Stopped")
            return RunState(
                status=status,
                secondary_status=secondary,
                transitions=transitions,
                failure_reason=self._failure_reason,
                training_start=starts[0] if starts else None,
                training_end=transitions[-1][1] if ended else None,
                final_metrics=tuple(self._metrics.final()) if ended else (),
                model_artifacts=self._model_artifacts,
            )

    def stop(self, as_status: str = "Stopped", grace: float | None = None) -> bool:
        """StopTrainingJob: False when the job is not in progress."""
        with self._lock:
            if self._stop_as is not None or _primary(self._transitions[-1][0]) != "InProgress":
                return False
            self._stop_as = as_status
            if grace is not None:
                self._grace = grace
            self._transitions.append(("Stopping", _now()))
        self._wake.set()
        return True

    def abort(self) -> None:
        """Stop now, with no grace period (the local SageMaker is shutting down or resetting)."""
        if not self.stop(grace=0.0):
            with self._lock:
                self._grace = 0.0
            self._wake.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the job has ended and its processes and directory are gone."""
        return self._done.wait(timeout)

    # --- the job's own thread ---------------------------------------------------------------------

    def _enter(self, secondary: str) -> None:
        with self._lock:
            self._transitions.append((secondary, _now()))

    def _stopping(self) -> bool:
        with self._lock:
            return self._stop_as is not None

    def _run(self) -> None:
        try:
            spec = self._spec
            if isinstance(spec, Unsupported):
                raise spec
            self._enter("Downloading")
            self._prepare(spec)
            if self._stopping():
                raise _Stop
            self._launch(spec)
            failed = self._supervise(spec)
            if failed is not None:
                self._fail(failed.failure_reason())
            else:
                self._finish(spec)
        except _Stop:
            self._finish(None)
        except Unsupported as refusal:
            self._fail(refusal.reason)
        except Exception as error:  # the job fails, the local SageMaker goes on
            log.exception("local SageMaker: running a training job failed")
            self._fail(f"InternalServerError: local SageMaker: {type(error).__name__}: {error}")
        finally:
            for host in self._hosts:
                host.kill()
            for host in self._hosts:
                if host.reader is not None:
                    host.reader.join()
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
            self._done.set()
            self._runner.forget(self)

    def _fail(self, reason: str) -> None:
        with self._lock:
            self._failure_reason = reason
            self._transitions.append(("Failed", _now()))

    def _finish(self, spec: JobSpec | None) -> None:
        """Uploads the outputs (when hosts ran) and enters the final status: Completed or the stop's."""
        if not self._stopping():
            self._enter("Uploading")
        if spec is not None:
            try:
                self._upload(spec)
            except StorageError as error:
                self._fail(
                    f"ClientError: local SageMaker: could not upload the outputs to "
                    f"{spec.output_uri('')}: {error}"
                )
                return
        with self._lock:
            stop_as = self._stop_as
        self._enter(stop_as or "Completed")

    def _prepare(self, spec: JobSpec) -> None:
        self._root = Path(tempfile.mkdtemp(prefix=f"{spec.name}-", dir=self._runner.jobs_dir))
        self._hosts = [Host(self._root, index) for index in range(1, spec.instance_count + 1)]
        hosts_text = "127.0.0.1\tlocalhost\n::1\tlocalhost\n" + "".join(
            f"127.0.0.1\t{name}\n" for name in spec.hosts
        )
        config = {
            "hyperparameters.json": dict(spec.hyperparameters),
            "inputdataconfig.json": jobspec.input_data_config(spec),
        }
        for host in self._hosts:
            host.lay_out(spec, self._runner.images.get(spec.image), hosts_text, config)
        for channel in spec.channels:
            self._download(spec, channel)

    def _download(self, spec: JobSpec, channel: jobspec.Channel) -> None:
        try:
            found = self._aws.objects_under(channel.bucket, channel.prefix)
            objects = {item.key: item.body for item in found}
        except StorageError:
            objects = {}
        placed = {key: jobspec.channel_file(channel, key) for key in objects}
        keys = [key for key, relative in placed.items() if relative is not None]
        if not keys:
            raise Unsupported(
                "ClientError: Data download failed:"
                + jobspec.no_objects_message(channel, self._aws.region, spec.role_arn)
            )
        for host in self._hosts:
            target = host.ml / "input" / "data" / channel.name
            target.mkdir()
            for key in jobspec.objects_for_host(channel, keys, host.index - 1, len(self._hosts)):
                path = target / str(placed[key])
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(objects[key])

    def _launch(self, spec: JobSpec) -> None:
        why = self._runner.cannot_isolate()
        if why is not None:
            raise Unsupported(f"InternalServerError: local SageMaker: {why}")
        self._enter("Training")
        for host in self._hosts:
            started = int(time.time())
            host.stream = f"{spec.name}/{host.name}-{started}"
            self._aws.create_log_stream(LOG_GROUP, host.stream)
            workdir = self._runner.images.get(spec.image)
            files = f", in a copy of {workdir} as its working directory" if workdir is not None else ""
            self._log(
                host,
                f"local SageMaker: image {spec.image} was not pulled (there is no container engine here); "
                f"running ContainerEntrypoint and ContainerArguments as processes on this machine{files}, "
                f"host {host.name} of {len(self._hosts)}",
                metrics=False,
            )
            for note in spec.notes:
                self._log(host, note, metrics=False)
        for host in self._hosts:
            environment = {
                "PATH": DEFAULT_PATH,
                "HOME": str(host.home),
                "TRAINING_JOB_NAME": spec.name,
                "TRAINING_JOB_ARN": spec.arn,
                **spec.environment,
            }
            argv = [
                *self._runner.launcher(),
                str(host.ml),
                str(host.hosts_file),
                host.name,
                str(host.started),
                *spec.command,
            ]
            host.process = subprocess.Popen(
                argv,
                cwd=host.work,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            host.reader = threading.Thread(
                target=self._pump, args=(host,), name=f"local-sagemaker-{host.name}", daemon=True
            )
            host.reader.start()

    def _pump(self, host: Host) -> None:
        """Copies the host's output to its log stream line by line, then records its exit status."""
        process = host.process
        assert process is not None and process.stdout is not None
        stdout = process.stdout
        with stdout:
            for raw in iter(lambda: stdout.readline(MAX_EVENT_BYTES), b""):
                self._log(host, raw.decode("utf-8", "replace").rstrip("\r\n"))
        code = process.wait()
        host.exit_code = code if code >= 0 else 128 - code  # killed by signal n: 128 + n, as Docker
        self._wake.set()

    def _log(self, host: Host, line: str, metrics: bool = True) -> None:
        if not line:
            return  # CloudWatch Logs takes no empty message
        now = time.time()
        host.tail.append(line)
        if metrics:
            with self._lock:
                self._metrics.observe(line, datetime.fromtimestamp(now, UTC))
        try:
            self._aws.put_log_event(LOG_GROUP, host.stream, int(now * 1000), line)
        except Exception:  # moto was reset under the job: the job is being aborted anyway
            log.debug("local SageMaker: log event of %s dropped", host.stream, exc_info=True)

    def _supervise(self, spec: JobSpec) -> Host | None:
        """Waits for the hosts; returns the first that failed, or None when all exited 0 or the job
        was stopped."""
        deadline = None if spec.max_runtime_seconds is None else self._created + spec.max_runtime_seconds
        while True:
            self._wake.clear()
            if self._stopping():
                self._terminate()
                return None
            failed = next((h for h in self._hosts if h.exit_code not in (None, 0)), None)
            if failed is not None:
                for host in self._hosts:
                    host.kill()
                return failed
            if all(host.exit_code == 0 for host in self._hosts):
                return None
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self.stop("MaxRuntimeExceeded")
                continue
            self._wake.wait(remaining)

    def _terminate(self) -> None:
        """SIGTERM to each host's first process, SIGKILL to what is left after the grace period."""
        for host in self._hosts:
            host.signal_first_process(signal.SIGTERM)
        started = time.monotonic()
        while any(host.exit_code is None for host in self._hosts):
            self._wake.clear()
            with self._lock:  # abort() may shorten the grace period meanwhile
                remaining = started + self._grace - time.monotonic()
            if remaining <= 0:
                break
            self._wake.wait(remaining)
        for host in self._hosts:
            host.kill()
        for host in self._hosts:
            if host.reader is not None:
                host.reader.join()

    def _upload(self, spec: JobSpec) -> None:
        if not self._hosts:
            return
        model = tar_gz(host.ml / "model" for host in self._hosts)
        self._aws.put_object(spec.output_bucket, spec.output_key("model.tar.gz"), model)
        with self._lock:
            self._model_artifacts = spec.output_uri("model.tar.gz")
        if any(any((host.ml / "output" / "data").iterdir()) for host in self._hosts):
            output = tar_gz(host.ml / "output" / "data" for host in self._hosts)
            self._aws.put_object(spec.output_bucket, spec.output_key("output.tar.gz"), output)
