"""Local SageMaker: the clock it reads and the ``Timeline`` a simulated training job follows on it.

Owns the job statuses of the local SageMaker (``local.sagemaker``) when it does not run the job: the
``Clock`` (``RealClock``, or a ``ManualClock`` that tests move), a job's ``Timeline`` (seconds spent
in Starting, Downloading, Training and Uploading, then Completed or Failed, and in Stopping once
stopped), the ``Plan`` that ties a timeline to moto's job object, and ``apply_plan``, which writes
the job's statuses as of a moment into that object: ``TrainingJobStatus``, ``SecondaryStatus``,
``SecondaryStatusTransitions`` (with SageMaker's status messages), the training and billable times
and, when completed, one ``train:progress`` metric. Nothing runs in the background: statuses are
computed from the clock when asked for.

Also the ``local-sagemaker:outcome`` tag or hyperparameter of a CreateTrainingJob request
(``outcome_override``: ``complete``, ``fail`` or ``fail:<reason>``; the tag wins over the
hyperparameter; JSON quotes are stripped) and the timeline it chooses (``apply_override``).

moto stores naive UTC datetimes and the wire carries milliseconds: ``naive`` converts a moment for
moto's objects, ``aware`` reads one back (``local.runmode`` and ``local.queries`` use both too, and
``STATUS_MESSAGES``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from moto.sagemaker.exceptions import AWSValidationException

OUTCOME_KEY = "local-sagemaker:outcome"
DEFAULT_FAILURE_REASON = "AlgorithmError: ExecuteUserScriptError: training script exited with exit code 1"

_IN_PROGRESS_PHASES = ("Starting", "Downloading", "Training", "Uploading")
STATUS_MESSAGES = {
    "Starting": "Preparing the instances for training",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: it ran longer than MaxRuntimeInSeconds",
}


class Clock(Protocol):
    """Where the local SageMaker reads the time; ``now`` is timezone-aware UTC."""

    def now(self) -> datetime: ...


class RealClock:
    """The wall clock, for the HTTP server and the demo."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to, for tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = aware(start) if start is not None else datetime.now(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


class EndStatus(StrEnum):
    """The ``TrainingJobStatus`` a simulated job ends in."""

    COMPLETED = "Completed"
    FAILED = "Failed"


@dataclass(frozen=True)
class Timeline:
    """How one job unfolds: seconds spent in each secondary status, then its outcome."""

    starting: float = 2.0
    downloading: float = 2.0
    training: float = 2.0
    uploading: float = 2.0
    stopping: float = 1.0
    outcome: EndStatus = EndStatus.COMPLETED
    failure_reason: str = DEFAULT_FAILURE_REASON

    def __post_init__(self) -> None:
        for name in ("starting", "downloading", "training", "uploading", "stopping"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        object.__setattr__(self, "outcome", EndStatus(self.outcome))

    @classmethod
    def uniform(cls, seconds: float, stopping: float | None = None) -> Timeline:
        """Every phase lasts ``seconds``; stopping lasts ``stopping`` (default: ``seconds``)."""
        stop = seconds if stopping is None else stopping
        return cls(seconds, seconds, seconds, seconds, stop)

    def failing(self, reason: str = DEFAULT_FAILURE_REASON) -> Timeline:
        return replace(self, outcome=EndStatus.FAILED, failure_reason=reason)

    def completing(self) -> Timeline:
        return replace(self, outcome=EndStatus.COMPLETED)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"outcome": self.outcome.value}

    def merged(self, changes: Mapping[str, Any]) -> Timeline:
        """This timeline with the given JSON fields replaced; unknown fields raise ``ValueError``."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown timeline fields: {sorted(unknown)}")
        for name, value in changes.items():
            if name in ("outcome", "failure_reason"):
                if not isinstance(value, str):
                    raise ValueError(f"{name} must be a string")
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number of seconds")
        return replace(self, **dict(changes))


@dataclass
class Plan:
    """A job that follows a timeline: when it was created and, once asked, when it was stopped."""

    job: Any  # the moto FakeTrainingJob this plan drives
    created_at: datetime
    timeline: Timeline
    stop_requested_at: datetime | None = None


@dataclass
class _State:
    secondary_status: str
    transitions: list[dict[str, Any]] = field(default_factory=list)
    last_modified: datetime | None = None
    training_start: datetime | None = None
    training_end: datetime | None = None


def aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def naive(moment: datetime) -> datetime:
    # moto stores and compares naive UTC datetimes; keep its convention inside its objects. The wire
    # carries milliseconds, so store no finer: a time read back from a response then compares equal.
    moment = aware(moment)
    return moment.replace(tzinfo=None, microsecond=moment.microsecond // 1000 * 1000)


def _events(plan: Plan) -> list[tuple[str, datetime]]:
    """Every secondary status the job will pass through, with the moment it is entered."""
    timeline = plan.timeline
    phases = [("Starting", timeline.starting), ("Downloading", timeline.downloading)]
    phases.append(("Training", timeline.training))
    if timeline.outcome is EndStatus.COMPLETED:
        phases.append(("Uploading", timeline.uploading))
    events: list[tuple[str, datetime]] = []
    moment = plan.created_at
    for status, seconds in phases:
        events.append((status, moment))
        moment += timedelta(seconds=seconds)
    events.append((timeline.outcome.value, moment))
    stop = plan.stop_requested_at
    if stop is not None:
        events = [event for event in events if event[1] <= stop]
        events += [("Stopping", stop), ("Stopped", stop + timedelta(seconds=timeline.stopping))]
    return events


def _state_at(plan: Plan, now: datetime) -> _State:
    visible = [event for event in _events(plan) if event[1] <= now] or _events(plan)[:1]
    state = _State(secondary_status=visible[-1][0], last_modified=visible[-1][1])
    for index, (status, start) in enumerate(visible):
        entry: dict[str, Any] = {"Status": status, "StartTime": naive(start)}
        if index + 1 < len(visible):
            entry["EndTime"] = naive(visible[index + 1][1])
        elif status not in _IN_PROGRESS_PHASES and status != "Stopping":
            entry["EndTime"] = naive(start)
            state.training_end = start
        entry["StatusMessage"] = STATUS_MESSAGES[status]
        state.transitions.append(entry)
        if status == "Downloading":
            state.training_start = start
    return state


def _primary_status(secondary: str) -> str:
    return "InProgress" if secondary in _IN_PROGRESS_PHASES else secondary


def outcome_override(
    tags: list[dict[str, str]] | None, hyper_parameters: dict[str, str] | None
) -> str | None:
    for tag in tags or []:
        if tag.get("Key") == OUTCOME_KEY:
            return tag.get("Value", "")
    value = (hyper_parameters or {}).get(OUTCOME_KEY)
    if value is None:
        return None
    try:
        decoded = json.loads(value)
    except ValueError:
        return value
    return decoded if isinstance(decoded, str) else value


def apply_override(timeline: Timeline, override: str) -> Timeline:
    keyword, _, reason = override.partition(":")
    keyword = keyword.strip().lower()
    if keyword in ("complete", "completed"):
        return timeline.completing()
    if keyword in ("fail", "failed"):
        return timeline.failing(reason.strip() or DEFAULT_FAILURE_REASON)
    raise AWSValidationException(
        f"Value '{override}' of {OUTCOME_KEY} must be 'complete', 'fail' or 'fail:<reason>'"
    )


def apply_plan(job: Any, plan: Plan, now: datetime) -> None:
    """Write the job's status as of ``now`` into moto's object, which moto then serialises."""
    state = _state_at(plan, now)
    status = _primary_status(state.secondary_status)
    start, end = state.training_start, state.training_end
    seconds = int((end - start).total_seconds()) if start is not None and end is not None else None
    completed = status == EndStatus.COMPLETED.value
    # moto builds DescribeTrainingJob from the job's __dict__ (BaseObject.gen_response_object),
    # so attribute names are the snake_case of response fields and None values are left out.
    vars(job).update(
        training_job_status=status,
        secondary_status=state.secondary_status,
        secondary_status_transitions=state.transitions,
        last_modified_time=naive(state.last_modified or plan.created_at),
        training_start_time=naive(start) if start is not None else None,
        training_end_time=naive(end) if end is not None else None,
        training_time_in_seconds=seconds,
        billable_time_in_seconds=seconds,
        failure_reason=plan.timeline.failure_reason if status == EndStatus.FAILED.value else None,
        final_metric_data_list=(
            [{"MetricName": "train:progress", "Value": 100.0, "Timestamp": naive(end)}]
            if completed and end is not None
            else None
        ),
    )
