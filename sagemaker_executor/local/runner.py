"""Local SageMaker, run mode: a CreateTrainingJob request executed as processes on this machine.

Owns the execution of training jobs for ``local.sagemaker.LocalSageMaker(run_jobs=True)`` (its one
caller, which reports each job's ``RunState`` through DescribeTrainingJob, ListTrainingJobs and
Search): per job a ``RunningJob`` on a thread of its own that

1. (Starting → Downloading) gives each host ``algo-1``..``algo-N`` a directory ``algo-<n>/`` under a
   fresh job directory, holding ``ml/`` (the host's ``/opt/ml``: ``input/config/`` with
   ``hyperparameters.json``, ``resourceconfig.json`` and ``inputdataconfig.json``,
   ``input/data/<channel>/`` with the channel's objects copied from moto's S3, ``model/``,
   ``output/data/``, ``output/`` for the ``failure`` file), ``work/`` (the working directory) and
   ``home/`` (``$HOME``) -- ``local.jobspec`` says what goes where;
2. (Training) starts each host's command, ``ContainerEntrypoint`` + ``ContainerArguments``, as
   ``setpriv --pdeathsig KILL unshare --mount --uts --pid --fork --kill-child --mount-proc sh -c
   SETUP``: in namespaces of its own SETUP bind-mounts ``ml/`` at ``/opt/ml`` and a hosts file at
   ``/etc/hosts``, names the host ``algo-<n>``, and ``exec``s the command with the job's environment
   only (the request's ``Environment`` over ``PATH``, ``HOME``, ``TRAINING_JOB_NAME`` and
   ``TRAINING_JOB_ARN``). Its stdout and stderr, merged, go line by line to the CloudWatch Logs
   stream ``<job>/algo-<n>-<epoch seconds>`` of ``/aws/sagemaker/TrainingJobs`` as they arrive, and
   through ``MetricDefinitions`` into ``FinalMetricDataList``;
3. ends the job: every host exited 0 → Uploading (the hosts' ``/opt/ml/model`` as one
   ``<S3OutputPath>/<job>/output/model.tar.gz``, ``/opt/ml/output/data`` as ``output.tar.gz`` when
   not empty) → Completed; a host exited non-zero → the others are killed, Failed with
   ``AlgorithmError: <its /opt/ml/output/failure>, exit code: <n>``; ``StopTrainingJob`` or
   ``MaxRuntimeInSeconds`` → Stopping: SIGTERM to each host's first process, SIGKILL to whatever is
   left after the grace period (SageMaker's is 120 s), the model uploaded, Stopped (secondary
   ``Stopped`` or ``MaxRuntimeExceeded``). Then the job directory is removed.

Where it differs from real SageMaker:
- No container: the image is not pulled (each stream's first line says so) and the command runs on
  this machine's file system, as root, with its tools; ``ContainerEntrypoint`` is required (the
  image's ENTRYPOINT and WORKDIR are unknown: the working directory is an empty directory, or a copy
  of the directory ``JobRunner(images={image: dir})`` (``local.server --image NAME=DIR``) gives for
  the request's ``TrainingImage``, standing in for the files of the image's WORKDIR).
  It is no sandbox: the job can read the machine's files and reach its network. All hosts share
  this machine's network; ``/etc/hosts`` maps every ``algo-<n>`` to 127.0.0.1.
- A private ``/opt/ml`` needs root and ``unshare``; without them the job fails with an
  ``InternalServerError`` that says so (running jobs one at a time on the machine's own /opt/ml
  would leak one job's files into the next and is not offered). An empty ``/opt/ml`` is created on
  the machine as the mount point and left there.
- Times are the wall clock's: run mode refuses a ``ManualClock``. ``MaxRuntimeInSeconds`` counts
  from the job's creation. The job ends when every host has exited (or one failed).
- ``ShardedByS3Key`` gives host ``i`` every N-th object in key order; SageMaker documents a split,
  not its rule. Pipe mode, manifests, file systems, heterogeneous clusters, more than
  ``jobspec.MAX_HOSTS`` hosts and uncompressed output are refused with a ``ClientError``.
- A failed job uploads nothing; a stopped one uploads its model.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sagemaker_executor.domain.joblog import LOG_GROUP
from sagemaker_executor.local import jobspec
from sagemaker_executor.local.jobspec import JobSpec, MetricParser, MetricValue, Unsupported
from sagemaker_executor.local.motoaws import MotoAws, StorageError

log = logging.getLogger(__name__)

ML_ROOT = "/opt/ml"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Docker's default PATH
SAGEMAKER_STOP_GRACE_SECONDS = 120.0  # StopTrainingJob: "delays job termination for 120 seconds"
MAX_EVENT_BYTES = 256 * 1024 - 26  # CloudWatch Logs: an event's message plus 26 bytes, at most 256 KiB

# Runs as the first process of the host's namespaces. "$1" is mount(8): the job's own PATH may lack it.
_SETUP = """set -e
"$1" --bind "$2" /opt/ml
"$1" --bind "$3" /etc/hosts
printf '%s\\n' "$4" > /proc/sys/kernel/hostname
: > "$5"
shift 5
exec "$@"
"""

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


class _Host:
    """One host of a job: its directories, its process and what its output said last."""

    def __init__(self, root: Path, index: int) -> None:
        self.index = index
        self.name = f"algo-{index}"
        self.root = root / self.name
        self.ml = self.root / "ml"
        self.work = self.root / "work"
        self.home = self.root / "home"
        self.hosts_file = self.root / "hosts"
        self.started = self.root / "started"  # written by _SETUP just before the command
        self.stream = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.reader: threading.Thread | None = None
        self.exit_code: int | None = None
        self.tail: deque[str] = deque(maxlen=5)

    def signal_first_process(self, signum: int) -> None:
        """Signals the host's first process (PID 1 of its namespace), as ``docker stop`` signals a
        container's; the setpriv/unshare process above it would ignore SIGTERM."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        try:
            children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        except OSError:
            children = []
        try:
            if children:
                os.kill(int(children[0]), signum)
            else:  # not forked yet: the whole group
                os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL to the host's process group; unshare's --kill-child and the end of the PID
        namespace take every other process of the host with it."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


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
        self._hosts: list[_Host] = []
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
                self._fail(self._failure_of(failed))
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
        self._hosts = [_Host(self._root, index) for index in range(1, spec.instance_count + 1)]
        hosts_text = "127.0.0.1\tlocalhost\n::1\tlocalhost\n" + "".join(
            f"127.0.0.1\t{name}\n" for name in spec.hosts
        )
        config = {
            "hyperparameters.json": dict(spec.hyperparameters),
            "inputdataconfig.json": jobspec.input_data_config(spec),
        }
        for host in self._hosts:
            for layout in ("input/config", "input/data", "model", "output/data"):
                (host.ml / layout).mkdir(parents=True)
            workdir = self._runner.images.get(spec.image)
            if workdir is not None:  # the image's WORKDIR, as a directory of this machine
                shutil.copytree(workdir, host.work, symlinks=True)
            else:
                host.work.mkdir()
            host.home.mkdir()
            host.hosts_file.write_text(hosts_text)
            files = config | {"resourceconfig.json": jobspec.resource_config(spec, host.name)}
            for name, content in files.items():
                (host.ml / "input" / "config" / name).write_text(json.dumps(content))
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

    def _pump(self, host: _Host) -> None:
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

    def _log(self, host: _Host, line: str, metrics: bool = True) -> None:
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

    def _supervise(self, spec: JobSpec) -> _Host | None:
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

    def _failure_of(self, host: _Host) -> str:
        assert host.exit_code is not None
        if not host.started.exists():
            said = " | ".join(host.tail) or "no output"
            return (
                f"InternalServerError: local SageMaker: could not give host {host.name} a private "
                f"{ML_ROOT} (unshare and mount --bind, as root): {said}"
            )
        try:
            failure = (host.ml / "output" / "failure").read_text(errors="replace")
        except OSError:
            failure = ""
        return jobspec.algorithm_error(host.exit_code, failure)

    def _upload(self, spec: JobSpec) -> None:
        if not self._hosts:
            return
        model = _tar_gz(host.ml / "model" for host in self._hosts)
        self._aws.put_object(spec.output_bucket, spec.output_key("model.tar.gz"), model)
        with self._lock:
            self._model_artifacts = spec.output_uri("model.tar.gz")
        if any(any((host.ml / "output" / "data").iterdir()) for host in self._hosts):
            output = _tar_gz(host.ml / "output" / "data" for host in self._hosts)
            self._aws.put_object(spec.output_bucket, spec.output_key("output.tar.gz"), output)


def _tar_gz(directories: Iterable[Path]) -> bytes:
    """The directories' contents in one gzipped tar, as SageMaker aggregates several hosts' output."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for directory in directories:
            for entry in sorted(directory.iterdir()):
                archive.add(entry, arcname=entry.name)
    return buffer.getvalue()


class JobRunner:
    """Starts ``RunningJob``s and ends them all on ``shutdown()``; one per ``LocalSageMaker``."""

    def __init__(
        self,
        stop_grace_seconds: float = SAGEMAKER_STOP_GRACE_SECONDS,
        jobs_dir: Path | None = None,
        unshare: str = "unshare",
        images: Mapping[str, Path] | None = None,
    ) -> None:
        """``images``: image name -> a directory whose files a job of that ``TrainingImage`` finds in
        its working directory (a copy per host), standing in for the image's ``WORKDIR``."""
        if stop_grace_seconds < 0:
            raise ValueError("stop_grace_seconds must not be negative")
        self.images = dict(images or {})
        self.stop_grace_seconds = stop_grace_seconds
        self._own_dir = jobs_dir is None
        self.jobs_dir = jobs_dir
        self._unshare = unshare
        self._jobs: set[RunningJob] = set()
        self._lock = threading.Lock()

    def start(self, request: dict[str, Any], arn: str, aws: MotoAws) -> RunningJob:
        """Runs the job ``request`` (a CreateTrainingJob request, as sent) asks for."""
        with self._lock:
            if self.jobs_dir is None:
                self.jobs_dir = Path(tempfile.mkdtemp(prefix="local-sagemaker-jobs-"))
            try:
                spec: JobSpec | Unsupported = JobSpec.from_request(request, arn)
            except Unsupported as refusal:
                spec = refusal
            job = RunningJob(spec, aws, self)
            self._jobs.add(job)
        job.start()
        return job

    def forget(self, job: RunningJob) -> None:
        with self._lock:
            self._jobs.discard(job)

    def running(self) -> int:
        with self._lock:
            return len(self._jobs)

    def abort_all(self, timeout: float = 30.0) -> None:
        """Ends every running job now and waits until their processes and directories are gone."""
        with self._lock:
            jobs = list(self._jobs)
        for job in jobs:
            job.abort()
        for job in jobs:
            job.wait(timeout)

    def shutdown(self) -> None:
        self.abort_all()
        with self._lock:
            if self._own_dir and self.jobs_dir is not None:
                shutil.rmtree(self.jobs_dir, ignore_errors=True)
                self.jobs_dir = None

    def cannot_isolate(self) -> str | None:
        """Why a job cannot get a private /opt/ml here, or None."""
        if os.geteuid() != 0:
            return (
                f"running a training job needs root here, for a private {ML_ROOT} per host (unshare and "
                f"mount --bind); this process runs as uid {os.geteuid()}"
            )
        if shutil.which(self._unshare) is None or shutil.which("mount") is None:
            return f"running a training job needs {self._unshare} and mount, for a private {ML_ROOT} per host"
        try:
            os.makedirs(ML_ROOT, exist_ok=True)
        except OSError as error:
            return f"cannot create the mount point {ML_ROOT}: {error}"
        return None

    def launcher(self) -> Sequence[str]:
        """The command line before a host's arguments (``_SETUP``'s "$2".."$5") and its command."""
        unshare = [self._unshare, "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc"]
        unshare += ["--propagation", "private"]
        setpriv = shutil.which("setpriv")
        # If this process dies, setpriv's parent-death signal kills unshare and --kill-child the rest.
        prefix = [setpriv, "--pdeathsig", "KILL"] if setpriv else []
        mount = shutil.which("mount") or "mount"
        return [*prefix, *unshare, "/bin/sh", "-c", _SETUP, "local-sagemaker-setup", mount]
