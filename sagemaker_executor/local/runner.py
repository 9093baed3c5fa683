"""Local SageMaker, run mode: a CreateTrainingJob request executed as processes on this machine.

Owns the execution of training jobs for ``local.sagemaker.LocalSageMaker(run_jobs=True)`` (which
reports each job's ``RunState`` through DescribeTrainingJob, ListTrainingJobs and Search, by
``local.runmode``; ``local.server`` builds the runner for it, and ``local.demo`` asks it whether this
machine can isolate a job): ``JobRunner`` starts per job a ``RunningJob`` (``local.runningjob``;
each of its hosts is a ``local.hosts.Host``) on a thread of its own that

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

import shutil
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sagemaker_executor.local import hosts
from sagemaker_executor.local.jobspec import JobSpec, Unsupported
from sagemaker_executor.local.motoaws import MotoAws
from sagemaker_executor.local.runningjob import MAX_EVENT_BYTES as MAX_EVENT_BYTES
from sagemaker_executor.local.runningjob import RunningJob as RunningJob
from sagemaker_executor.local.runningjob import RunState as RunState

SAGEMAKER_STOP_GRACE_SECONDS = 120.0  # StopTrainingJob: "delays job termination for 120 seconds"


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
        return hosts.cannot_isolate(self._unshare)

    def launcher(self) -> Sequence[str]:
        """The command line before a host's arguments and its command (``local.hosts``)."""
        return hosts.launcher(self._unshare)
