"""``logs``: an action's training job log, from CloudWatch Logs, as the SageMaker SDK's ``logs=True``
prints it.

Called by ``cli``. The job is found as cancel finds it (``service.commands.find_action_job``: the
name derived from the action id, else the ``anubis-action-id`` tag, only this client's jobs); its log
is read by ``adapters.joblogs`` (every host's stream, interleaved by time). With several hosts each
line starts with the host (``[algo-2]``); on a terminal the prefix is coloured per host.

``--follow`` reads on every :data:`POLL_S` seconds and asks SageMaker whether the job has ended; once
it has, it waits one more interval and reads again, for lines CloudWatch receives after the end (the
SDK's own state machine: TAILING, JOB_COMPLETE, COMPLETE), then exits: 0 when the job completed, 1
when it failed or was stopped. Ctrl-C exits 130 and the job goes on.

stdout holds only the log's lines; what the command says about the job goes to stderr.
"""

from __future__ import annotations

from time import monotonic, sleep
from typing import Any

from sagemaker_executor.adapters.joblogs import JobLogs, LogFollower
from sagemaker_executor.adapters.sagemaker import SageMakerJobs
from sagemaker_executor.client.aws import aws_failure, user_session
from sagemaker_executor.client.errors import ClientError, ExitCode
from sagemaker_executor.client.view import View
from sagemaker_executor.config import Settings
from sagemaker_executor.domain.errors import ExecutorError, JobNotFound
from sagemaker_executor.domain.joblog import log_location
from sagemaker_executor.domain.lifecycle import TERMINAL_JOB_STATUSES
from sagemaker_executor.service.commands import find_action_job

POLL_S = 5.0
RETRY_ATTEMPTS = 3


def logs(
    settings: Settings,
    action_id: str,
    client_id: str,
    *,
    follow: bool,
    timeout_s: float | None,
    view: View,
    poll_s: float = POLL_S,
) -> ExitCode:
    """Print the log of ``action_id``'s job; with ``follow``, until the job has ended."""
    jobs, job_logs, job = _find_job(settings, action_id, client_id)
    name = str(job["TrainingJobName"])
    hosts = _instance_count(job)
    follower = job_logs.follow(name, hosts)
    view.note(f"training job {name}: {_state(job)}; log: {log_location(name)}")
    printed = 0
    try:
        printed += _print_new(follower, view, hosts)
        if not follow:
            if not printed:
                raise _no_log(name, job)
            return ExitCode.OK
        job, more = _follow_to_end(jobs, job, follower, view, hosts, timeout_s, poll_s)
        printed += more
    except KeyboardInterrupt:
        raise ClientError(
            ExitCode.INTERRUPTED, f"interrupted; training job {name} goes on (its log: {log_location(name)})"
        ) from None
    except ExecutorError as error:
        raise aws_failure(error) from error
    if not printed:
        raise _no_log(name, job)
    view.note(f"training job {name}: {_state(job)}")
    return ExitCode.OK if job.get("TrainingJobStatus") == "Completed" else ExitCode.FAILED


def _find_job(
    settings: Settings, action_id: str, client_id: str
) -> tuple[SageMakerJobs, JobLogs, dict[str, Any]]:
    """The wrappers, with the user's identity, and the description of ``action_id``'s job."""
    if not settings.aws_region:
        raise ClientError(
            ExitCode.USAGE, "logs needs AWS_DEFAULT_REGION (or AWS_REGION): the region the job ran in"
        )
    session = user_session(settings.aws_region, f"to read the log of action {action_id}")
    try:
        jobs = SageMakerJobs(session, default_bucket="", retry_attempts=RETRY_ATTEMPTS)
        job_logs = JobLogs(session, RETRY_ATTEMPTS)
        return jobs, job_logs, find_action_job(jobs, action_id, client_id)
    except JobNotFound:
        raise ClientError(
            ExitCode.NOT_FOUND,
            f"no training job for action {action_id}: check the id (submit prints it); only the client "
            f"that submitted it finds it (this one is {client_id}; see --client-id)",
        ) from None
    except ExecutorError as error:
        raise aws_failure(error) from error


def _follow_to_end(
    jobs: SageMakerJobs,
    job: dict[str, Any],
    follower: LogFollower,
    view: View,
    hosts: int,
    timeout_s: float | None,
    poll_s: float,
) -> tuple[dict[str, Any], int]:
    """``--follow``: print new lines every ``poll_s`` until the job has ended, then once more for its
    last moments; the job's last description and how many events were printed."""
    name = str(job["TrainingJobName"])
    printed = 0
    started = monotonic()
    ended_before = _ended(job)
    while not _ended(job):
        if timeout_s is not None and monotonic() - started > timeout_s:
            raise ClientError(
                ExitCode.TIMED_OUT,
                f"training job {name} had not ended within --timeout {timeout_s:g}s; it goes on",
            )
        sleep(poll_s)
        printed += _print_new(follower, view, hosts)
        job = jobs.describe(name)
    if not ended_before:
        sleep(poll_s)  # lines of the job's last moments reach CloudWatch after its end
        printed += _print_new(follower, view, hosts)
    return job, printed


def _print_new(follower: LogFollower, view: View, hosts: int) -> int:
    """Print what the job logged since the last call; returns how many events that was."""
    count = 0
    for event in follower.read():
        several = hosts > 1 or follower.host_count > 1
        for line in event.message.rstrip("\n").split("\n"):
            view.log_line(line, event.host if several else None)
        count += 1
    return count


def _no_log(name: str, job: dict[str, Any]) -> ClientError:
    if _ended(job):
        why = "it most likely failed before its container started"
        return ClientError(
            ExitCode.NOT_FOUND, f"training job {name} ended ({_state(job)}) without writing a log: {why}"
        )
    return ClientError(
        ExitCode.NOT_FOUND,
        f"no log yet for training job {name} ({_state(job)}): a job logs once its container runs; "
        "--follow waits for it",
    )


def _instance_count(job: dict[str, Any]) -> int:
    resources = job.get("ResourceConfig") or {}
    groups = resources.get("InstanceGroups") or []
    if groups:
        return sum(int(group.get("InstanceCount") or 0) for group in groups)
    return int(resources.get("InstanceCount") or 1)


def _ended(job: dict[str, Any]) -> bool:
    return job.get("TrainingJobStatus") in TERMINAL_JOB_STATUSES


def _state(job: dict[str, Any]) -> str:
    status, secondary = job.get("TrainingJobStatus"), job.get("SecondaryStatus")
    state = f"{status}/{secondary}" if secondary and secondary != status else str(status)
    reason = job.get("FailureReason")
    return f"{state}: {' '.join(str(reason).split())}" if reason else state
