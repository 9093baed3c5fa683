"""What a SageMaker training job's state means to an Anubis user: the status and message to publish.

Pure rules, no I/O and no clock: ``service.tracker`` feeds in what ``ListTrainingJobs`` /
``DescribeTrainingJob`` say and publishes what :func:`report_for` returns when it differs from the
last report. Which states end tracking is data (:data:`TERMINAL_JOB_STATUSES`), not code paths.

SageMaker's ``TrainingJobStatus`` says whether a job is over; its ``SecondaryStatus`` says what it is
doing. A secondary status SageMaker adds later, or one not listed here, is reported as a non-final
status carrying its name -- the job goes on being tracked until ``TrainingJobStatus`` is terminal.
(The original watcher treated any status it did not know as final and failed.)

A failure's message is its headline (SageMaker's reason, on one line, secrets masked) and, below it,
the last lines of the job's log or why they could not be read (``domain.joblog``), so a reader of the
first line alone still reads a one-line status.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sagemaker_executor.domain.events import Status
from sagemaker_executor.domain.joblog import LOG_GROUP, REASON_BYTES, LogTail, Masker, tail_text
from sagemaker_executor.domain.limits import bound_text

TERMINAL_JOB_STATUSES = frozenset({"Completed", "Failed", "Stopped"})

# SecondaryStatus → (Anubis status, what the user reads) while the job is in progress.
_IN_PROGRESS: dict[str, tuple[Status, str]] = {
    "Starting": (Status.PENDING, "SageMaker is starting the training job"),
    "Pending": (Status.PENDING, "The training job is waiting for capacity"),
    "LaunchingMLInstances": (Status.INITIALIZING, "SageMaker is launching the instances"),
    "PreparingTrainingStack": (Status.INITIALIZING, "SageMaker is preparing the training stack"),
    "Downloading": (Status.INITIALIZING, "SageMaker is downloading the input data"),
    "DownloadingTrainingImage": (Status.INITIALIZING, "SageMaker is downloading the training image"),
    "Training": (Status.RUNNING, "The benchmark is running"),
    "Uploading": (Status.RUNNING, "The benchmark has finished; SageMaker is uploading its output"),
    "Stopping": (Status.RUNNING, "The training job is being stopped"),
    "Restarting": (Status.RUNNING, "SageMaker is restarting the training job"),
    "Updating": (Status.RUNNING, "SageMaker is updating the training job"),
}
# Secondary statuses that explain a terminal primary status as a failure.
_FAILED_SECONDARY = {
    "MaxRuntimeExceeded": "the job ran longer than its maximum runtime",
    "MaxWaitTimeExceeded": "the spot job waited longer than its maximum wait time",
    "Interrupted": "the spot instances were interrupted",
}


@dataclass(frozen=True)
class JobState:
    """The part of a SageMaker answer the rules need; from a summary or a full description."""

    name: str
    status: str
    secondary: str

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

    def to_json(self) -> dict[str, str]:
        return {"status": self.status, "secondary": self.secondary}

    @classmethod
    def of(cls, answer: Mapping[str, Any]) -> JobState:
        """From a ``TrainingJobSummary`` or a ``DescribeTrainingJob`` response."""
        return cls(
            name=str(answer["TrainingJobName"]),
            status=str(answer.get("TrainingJobStatus", "")),
            secondary=str(answer.get("SecondaryStatus") or ""),
        )


@dataclass(frozen=True)
class Report:
    status: Status
    message: str
    final: bool


def needs_description(state: JobState) -> bool:
    """A summary suffices for in-progress states; endings need ``FailureReason``, times and metrics."""
    return state.ended


def is_failure(state: JobState) -> bool:
    """Whether ``state`` is reported ``FAILED``: the job failed, or was stopped by a limit, not a user."""
    return state.ended and (state.status == "Failed" or state.secondary in _FAILED_SECONDARY)


def report_for(
    state: JobState, description: Mapping[str, Any] | None, region: str, log_tail: LogTail | None = None
) -> Report:
    """The status event for ``state``; ``description`` (DescribeTrainingJob) is given when it ended.

    ``log_tail``: for a failure (:func:`is_failure`), the end of the job's log, shown below the
    headline.
    """
    name = state.name
    if not state.ended:
        status, text = _IN_PROGRESS.get(state.secondary, (Status.RUNNING, "SageMaker reports"))
        label = f"{state.status}/{state.secondary}" if state.secondary else state.status
        message = f"{text} (training job {name}: {label})"
        if state.secondary == "Training":
            message += f". Logs: {log_location(name, region)}"
        return Report(status, message, final=False)

    details = description or {}
    timing = _timing(details)
    if is_failure(state):
        why = details.get("FailureReason") or _FAILED_SECONDARY.get(state.secondary) or "no reason given"
        # SageMaker's reasons often span lines (a traceback's end): the headline stays one line.
        why = bound_text(Masker.of_job(details).mask(" ".join(str(why).split())), REASON_BYTES)
        message = f"Benchmark failed: {why} (training job {name} {state.status}{timing})"
        if log_tail is not None:
            message += "\n" + tail_text(log_tail)
        return Report(Status.FAILED, message, True)
    if state.status == "Stopped":
        return Report(Status.CANCELED, f"Benchmark cancelled: training job {name} stopped{timing}", True)
    return Report(Status.SUCCEEDED, f"Benchmark finished: training job {name} completed{timing}", True)


def log_location(job_name: str, region: str) -> str:
    """Where the job's CloudWatch logs are: the log group, the stream prefix and a console link."""
    return (
        f"CloudWatch log group {LOG_GROUP}, streams {job_name}/algo-*: "
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}"
        f"#logStream:group={LOG_GROUP};prefix={job_name}/"
    )


def _timing(details: Mapping[str, Any]) -> str:
    parts = []
    start, end = details.get("TrainingStartTime"), details.get("TrainingEndTime")
    if isinstance(start, datetime) and isinstance(end, datetime) and end >= start:
        parts.append(f"wall time {_duration((end - start).total_seconds())}")
    billable = details.get("BillableTimeInSeconds")
    if isinstance(billable, int | float):
        parts.append(f"billable time {_duration(float(billable))}")
    return "; " + ", ".join(parts) if parts else ""


def _duration(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def final_metrics(description: Mapping[str, Any]) -> list[tuple[str, float, int]]:
    """``(name, value, timestamp ms)`` for each entry of ``FinalMetricDataList``."""
    metrics = []
    for item in description.get("FinalMetricDataList") or []:
        stamp = item.get("Timestamp")
        millis = int(stamp.timestamp() * 1000) if isinstance(stamp, datetime) else 0
        metrics.append((str(item["MetricName"]), float(item["Value"]), millis))
    return metrics
