"""Local SageMaker: moto's training jobs made to behave like the real service, on a controllable clock.

Owns the behaviour layer put under the executor by component tests, integration tests and the demo:
SageMaker's input validation on every request (``domain.constraints``: every limit of botocore's
SageMaker model and the API reference's rules, answered as ``ValidationException`` in SageMaker's
words, before moto sees the request), unique job names (``ResourceInUse``), ``StopTrainingJob``,
statuses that move along a per-job ``Timeline``, ``ListTrainingJobs`` filtering before pagination,
and a ``Search`` on training jobs that honours every filter. Used in-process (inside
``moto.mock_aws()`` or next to a ``ThreadedMotoServer``) and by ``sagemaker_executor.local.server``,
which serves it over HTTP.

Statuses are computed lazily from the clock whenever a job is described, listed, searched or stopped;
nothing runs in the background, so a ``ManualClock`` gives tests full control of time.

Run mode (``LocalSageMaker(run_jobs=True)``, or ``runner=JobRunner(...)``; the server's ``--run-jobs``)
executes instead each job that has a ``ContainerEntrypoint`` and that no rule, tag or hyperparameter
below gives a timeline: ``local.runner`` runs its ``ContainerEntrypoint`` as processes on this
machine, in real time (no ``ManualClock``), and its status is whatever the running job has reached.
DescribeTrainingJob then shows the request's own ``AlgorithmSpecification`` and ``Environment`` (moto
rewrites the one and drops the other), and CreateTrainingJob answers SageMaker's
``ValidationException`` for a channel whose S3 prefix holds no object. A job without
``ContainerEntrypoint`` (script mode, an image's own program) cannot run here, since the image is not
pulled: it follows the default timeline, as without run mode.

Choosing a job's timeline, first match wins:
1. a rule set with ``LocalSageMaker.set_outcome(pattern, timeline)`` (``fnmatch`` on the job name; the
   newest rule is tried first);
2. a tag or hyperparameter ``local-sagemaker:outcome`` on the CreateTrainingJob request: ``complete``,
   ``fail`` or ``fail:<reason>`` (the tag wins over the hyperparameter; JSON quotes are stripped);
3. the default timeline.

Choices where real SageMaker was not copied exactly:
- Validation comes before authentication (moto's, off by default), and a request of several
  violations of the model is answered with all of them; a value of the wrong JSON type is a
  ``ValidationException`` too (SageMaker answers ``SerializationException``).
- StopTrainingJob on an unknown job answers ``ValidationException`` "Requested resource not found.";
  DescribeTrainingJob keeps moto's message ("Could not find training job '<arn>'.").
- A failing job goes Starting → Downloading → Training → Failed (no Uploading).
- ListTrainingJobs ignores ``SortBy``/``SortOrder`` (creation order) and returns everything when
  ``MaxResults`` is absent; Search ignores ``MaxResults``/``SortBy`` and rejects nested filters.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol

# moto internals relied on: the backend class and its per-account/region registry, the response class
# that dispatches "StopTrainingJob" to a method named stop_training_job, and its exception types.
from moto.core.responses import ActionResult, BaseResponse, EmptyResult
from moto.sagemaker.exceptions import AWSValidationException, ResourceInUseException, ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

from sagemaker_executor.domain import constraints, violation
from sagemaker_executor.local.jobspec import JobSpec, Unsupported, no_objects_message
from sagemaker_executor.local.motoaws import MotoAws, StorageError
from sagemaker_executor.local.runner import JobRunner, RunningJob, RunState

OUTCOME_KEY = "local-sagemaker:outcome"
DEFAULT_FAILURE_REASON = "AlgorithmError: ExecuteUserScriptError: training script exited with exit code 1"

_IN_PROGRESS_PHASES = ("Starting", "Downloading", "Training", "Uploading")
_STATUS_MESSAGES = {
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
        self._now = _aware(start) if start is not None else datetime.now(UTC)
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


@dataclass(frozen=True)
class JobSnapshot:
    """A training job as the local SageMaker currently reports it."""

    name: str
    arn: str
    status: str
    secondary_status: str
    failure_reason: str | None
    creation_time: datetime
    last_modified_time: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "status": self.status,
            "secondary_status": self.secondary_status,
            "failure_reason": self.failure_reason,
            "creation_time": self.creation_time.isoformat(),
            "last_modified_time": self.last_modified_time.isoformat(),
        }


@dataclass
class _Plan:
    job: Any  # the moto FakeTrainingJob this plan drives
    created_at: datetime
    timeline: Timeline
    stop_requested_at: datetime | None = None


@dataclass
class _Run:
    job: Any  # the moto FakeTrainingJob this run reports through
    run: RunningJob
    request: dict[str, Any]  # the CreateTrainingJob request as sent (moto drops or rewrites parts)


# The CreateTrainingJob request being served on this thread, as sent: moto passes on neither
# Environment nor MetricDefinitions, and run mode needs both.
_REQUEST = threading.local()


@dataclass
class _State:
    secondary_status: str
    transitions: list[dict[str, Any]] = field(default_factory=list)
    last_modified: datetime | None = None
    training_start: datetime | None = None
    training_end: datetime | None = None


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _naive(moment: datetime) -> datetime:
    # moto stores and compares naive UTC datetimes; keep its convention inside its objects. The wire
    # carries milliseconds, so store no finer: a time read back from a response then compares equal.
    moment = _aware(moment)
    return moment.replace(tzinfo=None, microsecond=moment.microsecond // 1000 * 1000)


def _events(plan: _Plan) -> list[tuple[str, datetime]]:
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


def _state_at(plan: _Plan, now: datetime) -> _State:
    visible = [event for event in _events(plan) if event[1] <= now] or _events(plan)[:1]
    state = _State(secondary_status=visible[-1][0], last_modified=visible[-1][1])
    for index, (status, start) in enumerate(visible):
        entry: dict[str, Any] = {"Status": status, "StartTime": _naive(start)}
        if index + 1 < len(visible):
            entry["EndTime"] = _naive(visible[index + 1][1])
        elif status not in _IN_PROGRESS_PHASES and status != "Stopping":
            entry["EndTime"] = _naive(start)
            state.training_end = start
        entry["StatusMessage"] = _STATUS_MESSAGES[status]
        state.transitions.append(entry)
        if status == "Downloading":
            state.training_start = start
    return state


def _primary_status(secondary: str) -> str:
    return "InProgress" if secondary in _IN_PROGRESS_PHASES else secondary


def _outcome_override(
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


def _apply_override(timeline: Timeline, override: str) -> Timeline:
    keyword, _, reason = override.partition(":")
    keyword = keyword.strip().lower()
    if keyword in ("complete", "completed"):
        return timeline.completing()
    if keyword in ("fail", "failed"):
        return timeline.failing(reason.strip() or DEFAULT_FAILURE_REASON)
    raise AWSValidationException(
        f"Value '{override}' of {OUTCOME_KEY} must be 'complete', 'fail' or 'fail:<reason>'"
    )


def _search_value(job_fields: Mapping[str, Any], name: str) -> Any:
    if name.startswith("Tags."):
        key = name[len("Tags.") :]
        return next((tag["Value"] for tag in job_fields.get("Tags", []) if tag["Key"] == key), None)
    value: Any = job_fields
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _filter_matches(job_fields: Mapping[str, Any], search_filter: Mapping[str, Any]) -> bool:
    actual = _search_value(job_fields, search_filter["Name"])
    operator = str(search_filter.get("Operator", "Equals"))
    expected = str(search_filter.get("Value", ""))
    if operator == "Exists":
        return actual is not None
    if operator == "NotExists":
        return actual is None
    if actual is None:
        return operator == "NotEquals"
    text = actual.isoformat() if isinstance(actual, datetime) else str(actual)
    if operator == "Equals":
        return text == expected
    if operator == "NotEquals":
        return text != expected
    if operator == "Contains":
        return expected in text
    raise AWSValidationException(f"Search operator {operator} is not supported by the local SageMaker")


class LocalSageMaker:
    """The behaviour layer; ``install()`` patches moto's SageMaker classes until ``uninstall()``."""

    _installed: LocalSageMaker | None = None

    def __init__(
        self,
        clock: Clock | None = None,
        default_timeline: Timeline | None = None,
        *,
        run_jobs: bool = False,
        runner: JobRunner | None = None,
    ) -> None:
        """``run_jobs`` (or a ``runner``, which implies it) runs each job that no outcome rule, tag or
        hyperparameter gives a timeline as processes on this machine (``local.runner``)."""
        self.clock: Clock = clock if clock is not None else RealClock()
        self.runner = runner if runner is not None else JobRunner() if run_jobs else None
        if self.runner is not None and isinstance(self.clock, ManualClock):
            raise ValueError("run_jobs runs processes in real time: it cannot take a ManualClock")
        self._runs: dict[str, _Run] = {}
        self._initial_timeline = default_timeline if default_timeline is not None else Timeline()
        self._default_timeline = self._initial_timeline
        self._rules: list[tuple[str, Timeline]] = []
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.RLock()
        self._originals: dict[tuple[type, str], Any] = {}

    # --- steering -------------------------------------------------------------------------------

    @property
    def default_timeline(self) -> Timeline:
        with self._lock:
            return self._default_timeline

    @default_timeline.setter
    def default_timeline(self, timeline: Timeline) -> None:
        with self._lock:
            self._default_timeline = timeline

    def set_outcome(self, pattern: str, timeline: Timeline) -> None:
        """Jobs created from now on whose name matches ``pattern`` (fnmatch) follow ``timeline``."""
        with self._lock:
            self._rules.insert(0, (pattern, timeline))

    def clear_outcomes(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def run_jobs(self) -> bool:
        return self.runner is not None

    def timeline_for(
        self,
        job_name: str,
        tags: list[dict[str, str]] | None = None,
        hyper_parameters: dict[str, str] | None = None,
    ) -> Timeline:
        chosen = self._chosen_timeline(job_name, tags, hyper_parameters)
        return chosen if chosen is not None else self.default_timeline

    def _chosen_timeline(
        self, job_name: str, tags: list[dict[str, str]] | None, hyper_parameters: dict[str, str] | None
    ) -> Timeline | None:
        """The timeline a rule, tag or hyperparameter chooses for the job; None when none does."""
        with self._lock:
            for pattern, timeline in self._rules:
                if fnmatch.fnmatchcase(job_name, pattern):
                    return timeline
            override = _outcome_override(tags, hyper_parameters)
            if override is not None:
                return _apply_override(self._default_timeline, override)
            return None

    def wait(self, job_name: str, timeout: float | None = None) -> bool:
        """Waits until the run-mode job ``job_name`` has ended and its processes and files are gone;
        False on timeout. A timeline job has nothing to wait for: True."""
        with self._lock:
            runs = [run.run for run in self._runs.values() if run.job.training_job_name == job_name]
        return all(run.wait(timeout) for run in runs)

    def reset(self) -> None:
        """Forget rules and jobs' plans; the default timeline returns to the constructor's. Running
        jobs are ended at once (no grace period)."""
        if self.runner is not None:
            self.runner.abort_all()
        with self._lock:
            self._rules.clear()
            self._plans.clear()
            self._runs.clear()
            self._default_timeline = self._initial_timeline

    def jobs(self) -> list[JobSnapshot]:
        """Every training job in every moto account and region, with its status as of now."""
        snapshots = []
        with self._lock:
            now = self.clock.now()
            for account_id in list(sagemaker_backends.keys()):
                for backend in list(sagemaker_backends[account_id].values()):
                    for job in list(backend.training_jobs.values()):
                        self._refresh(job, now)
                        snapshots.append(
                            JobSnapshot(
                                name=job.training_job_name,
                                arn=job.arn,
                                status=job.training_job_status,
                                secondary_status=job.secondary_status,
                                failure_reason=getattr(job, "failure_reason", None),
                                creation_time=_aware(job.creation_time),
                                last_modified_time=_aware(job.last_modified_time),
                            )
                        )
        return snapshots

    # --- installing into moto -------------------------------------------------------------------

    def install(self) -> None:
        with self._lock:
            if LocalSageMaker._installed is not None:
                raise RuntimeError("a LocalSageMaker is already installed")
            local = self

            def create_training_job(backend: Any, training_job_name: str, **kwargs: Any) -> Any:
                return local._create(backend, training_job_name, kwargs)

            def describe_training_job(backend: Any, training_job_name: str) -> dict[str, Any]:
                return local._describe(backend, training_job_name)

            def list_training_jobs(backend: Any, **kwargs: Any) -> dict[str, Any]:
                return local._list(backend, **kwargs)

            def search(backend: Any, resource: Any = None, search_expression: Any = None) -> Any:
                return local._search(backend, resource, search_expression)

            def stop_training_job(backend: Any, training_job_name: str) -> None:
                local._stop(backend, training_job_name)

            def call_action(response: Any) -> Any:
                action = response._get_action()
                refusal = validation_refusal(action, response.body)
                if refusal is None:
                    _REQUEST.body = json.loads(response.body) if action == "CreateTrainingJob" else None
                    try:
                        return BaseResponse.call_action(response)
                    finally:
                        _REQUEST.body = None
                status, headers, body = response.serialized(ActionResult(refusal))
                return (status, *response._enrich_response(headers, body))

            def stop_training_job_response(response: Any) -> ActionResult:
                response.sagemaker_backend.stop_training_job(response._get_param("TrainingJobName"))
                return EmptyResult()

            patches: dict[tuple[type, str], Callable[..., Any]] = {
                (SageMakerModelBackend, "create_training_job"): create_training_job,
                (SageMakerModelBackend, "describe_training_job"): describe_training_job,
                (SageMakerModelBackend, "list_training_jobs"): list_training_jobs,
                (SageMakerModelBackend, "search"): search,
                (SageMakerModelBackend, "stop_training_job"): stop_training_job,
                (SageMakerResponse, "stop_training_job"): stop_training_job_response,
                (SageMakerResponse, "call_action"): call_action,
            }
            for (cls, name), function in patches.items():
                self._originals[(cls, name)] = cls.__dict__.get(name)
                setattr(cls, name, function)
            LocalSageMaker._installed = self

    def uninstall(self) -> None:
        """Restores moto's classes; in run mode, ends every running job first."""
        if self.runner is not None:
            self.runner.shutdown()
        with self._lock:
            if LocalSageMaker._installed is not self:
                return
            for (cls, name), original in self._originals.items():
                if original is None:
                    delattr(cls, name)
                else:
                    setattr(cls, name, original)
            self._originals.clear()
            LocalSageMaker._installed = None

    def __enter__(self) -> LocalSageMaker:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.uninstall()

    # --- behaviour behind the patched moto methods ----------------------------------------------

    def _original(self, cls: type, name: str) -> Any:
        return self._originals[(cls, name)]

    def _create(self, backend: Any, name: str, kwargs: dict[str, Any]) -> Any:
        with self._lock:
            existing = backend.training_jobs.get(name)
            if existing is not None:
                raise ResourceInUseException(
                    "Training job names must be unique within an AWS account and region, and a training "
                    f"job with this name already exists ({existing.arn})"
                )
            chosen = self._chosen_timeline(name, kwargs.get("tags"), kwargs.get("hyper_parameters"))
            request = getattr(_REQUEST, "body", None) or _request_of(name, kwargs)
            run = self.runner is not None and chosen is None and _has_entrypoint(request)
            aws = MotoAws(backend.account_id, backend.region_name)
            if run:
                _check_channels(request, aws)
            original = self._original(SageMakerModelBackend, "create_training_job")
            job = original(backend, training_job_name=name, **kwargs)
            now = self.clock.now()
            job.creation_time = _naive(now)
            if self.runner is not None and run:
                started = self.runner.start(copy.deepcopy(request), job.arn, aws)
                self._runs[job.arn] = _Run(job=job, run=started, request=request)
            else:
                timeline = chosen if chosen is not None else self._default_timeline
                self._plans[job.arn] = _Plan(job=job, created_at=now, timeline=timeline)
            self._refresh(job, now)
            return job

    def _describe(self, backend: Any, name: str) -> dict[str, Any]:
        with self._lock:
            job = backend.training_jobs.get(name)
            if job is not None:
                self._refresh(job, self.clock.now())
            result: dict[str, Any] = self._original(SageMakerModelBackend, "describe_training_job")(
                backend, name
            )
            return result

    def _stop(self, backend: Any, name: str) -> None:
        with self._lock:
            job = backend.training_jobs.get(name)
            if job is None:
                raise ValidationError(message="Requested resource not found.")
            now = self.clock.now()
            self._refresh(job, now)
            run = self._runs.get(job.arn)
            if run is not None and run.job is job:
                if not run.run.stop():
                    self._refresh(job, now)
                    raise ValidationError(
                        message=f"The request was rejected because the training job is in status "
                        f"{job.training_job_status}."
                    )
                self._refresh(job, now)
                return
            plan = self._plans.get(job.arn)
            if plan is None or plan.job is not job or job.training_job_status != "InProgress":
                raise ValidationError(
                    message=f"The request was rejected because the training job is in status "
                    f"{job.training_job_status}."
                )
            plan.stop_requested_at = now
            self._refresh(job, now)

    def _list(
        self,
        backend: Any,
        next_token: str | None = None,
        max_results: int | None = None,
        creation_time_after: datetime | None = None,
        creation_time_before: datetime | None = None,
        last_modified_time_after: datetime | None = None,
        last_modified_time_before: datetime | None = None,
        name_contains: str | None = None,
        status_equals: str | None = None,
    ) -> dict[str, Any]:
        def within(moment: datetime, after: datetime | None, before: datetime | None) -> bool:
            return (after is None or _aware(moment) > _aware(after)) and (
                before is None or _aware(moment) < _aware(before)
            )

        with self._lock:
            now = self.clock.now()
            jobs = list(backend.training_jobs.values())
            for job in jobs:
                self._refresh(job, now)
            matching = [
                job
                for job in jobs
                if (name_contains is None or name_contains in job.training_job_name)
                and (status_equals is None or job.training_job_status == status_equals)
                and within(job.creation_time, creation_time_after, creation_time_before)
                and within(job.last_modified_time, last_modified_time_after, last_modified_time_before)
            ]
            start = _page_start(next_token, len(matching))
            end = len(matching) if not max_results else start + max_results
            return {
                "TrainingJobSummaries": [_summary(job) for job in matching[start:end]],
                "NextToken": str(end) if end < len(matching) else None,
            }

    def _search(self, backend: Any, resource: Any, search_expression: Any) -> Any:
        if resource != "TrainingJob":
            return self._original(SageMakerModelBackend, "search")(backend, resource, search_expression)
        expression = search_expression or {}
        unsupported = set(expression) - {"Filters", "Operator"}
        if unsupported:
            raise AWSValidationException(
                f"Search expression fields {sorted(unsupported)} are not supported by the local SageMaker"
            )
        filters = expression.get("Filters") or []
        combine = any if expression.get("Operator") == "Or" else all
        with self._lock:
            now = self.clock.now()
            results = []
            for job in list(backend.training_jobs.values()):
                self._refresh(job, now)
                job_fields = job.response_object
                if not filters or combine(_filter_matches(job_fields, f) for f in filters):
                    results.append({"TrainingJob": job_fields})
            return {"Results": results, "NextToken": None}

    def _refresh(self, job: Any, now: datetime) -> None:
        """Write the job's status as of ``now`` into moto's object, which moto then serialises."""
        run = self._runs.get(job.arn)
        if run is not None and run.job is job:
            _apply_run(job, run.run.snapshot(), run.request)
            return
        plan = self._plans.get(job.arn)
        if plan is None or plan.job is not job:
            return  # created before install(): leave moto's own (Completed) job alone
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
            last_modified_time=_naive(state.last_modified or plan.created_at),
            training_start_time=_naive(start) if start is not None else None,
            training_end_time=_naive(end) if end is not None else None,
            training_time_in_seconds=seconds,
            billable_time_in_seconds=seconds,
            failure_reason=plan.timeline.failure_reason if status == EndStatus.FAILED.value else None,
            final_metric_data_list=(
                [{"MetricName": "train:progress", "Value": 100.0, "Timestamp": _naive(end)}]
                if completed and end is not None
                else None
            ),
        )


def _apply_run(job: Any, state: RunState, request: Mapping[str, Any]) -> None:
    """Write a run-mode job's state into moto's object, as ``_refresh`` does for a timeline."""
    transitions = []
    for index, (status, entered) in enumerate(state.transitions):
        entry: dict[str, Any] = {"Status": status, "StartTime": _naive(entered)}
        if index + 1 < len(state.transitions):
            entry["EndTime"] = _naive(state.transitions[index + 1][1])
        elif state.ended:
            entry["EndTime"] = _naive(entered)
        entry["StatusMessage"] = _STATUS_MESSAGES[status]
        transitions.append(entry)
    start, end = state.training_start, state.training_end
    seconds = int((end - start).total_seconds()) if start is not None and end is not None else None
    algorithm = copy.deepcopy(dict(request.get("AlgorithmSpecification") or {}))
    vars(job).update(
        training_job_status=state.status,
        secondary_status=state.secondary_status,
        secondary_status_transitions=transitions,
        last_modified_time=_naive(state.transitions[-1][1]),
        training_start_time=_naive(start) if start is not None else None,
        training_end_time=_naive(end) if end is not None else None,
        training_time_in_seconds=seconds,
        billable_time_in_seconds=seconds,
        failure_reason=state.failure_reason,
        final_metric_data_list=[
            {"MetricName": m.name, "Value": m.value, "Timestamp": _naive(m.timestamp)}
            for m in state.final_metrics
        ]
        or None,
        model_artifacts={"S3ModelArtifacts": state.model_artifacts} if state.model_artifacts else None,
        # As sent: moto replaces MetricDefinitions with its own and keeps no Environment.
        algorithm_specification=algorithm,
        environment=dict(request.get("Environment") or {}) or None,
    )


def _request_of(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A CreateTrainingJob request rebuilt from moto's arguments, for a call that did not come through
    moto's response class (a direct backend call): it has no Environment."""
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": copy.deepcopy(kwargs.get("algorithm_specification") or {}),
        "RoleArn": kwargs.get("role_arn") or "",
        "HyperParameters": kwargs.get("hyper_parameters") or {},
        "InputDataConfig": kwargs.get("input_data_config") or [],
        "OutputDataConfig": kwargs.get("output_data_config") or {},
        "ResourceConfig": kwargs.get("resource_config") or {},
        "StoppingCondition": kwargs.get("stopping_condition") or {},
    }


def _has_entrypoint(request: Mapping[str, Any]) -> bool:
    """Whether run mode can run the job: the image's own entrypoint is unknown without an image."""
    algorithm = request.get("AlgorithmSpecification")
    return isinstance(algorithm, Mapping) and bool(algorithm.get("ContainerEntrypoint"))


def _check_channels(request: Mapping[str, Any], aws: MotoAws) -> None:
    """SageMaker's ValidationException for a channel whose S3 prefix holds no object. A request the
    runner cannot run at all is let through: its job fails with the reason."""
    try:
        spec = JobSpec.from_request(request, arn="")
    except Unsupported:
        return
    for channel in spec.channels:
        try:
            objects = aws.objects_under(channel.bucket, channel.prefix)
            found = any(not item.key.endswith("/") for item in objects)
        except StorageError:
            found = False
        if not found:
            raise AWSValidationException(no_objects_message(channel, aws.region, spec.role_arn))


def validation_refusal(operation: str, body: bytes | str | None) -> AWSValidationException | None:
    """SageMaker's ``ValidationException`` for a request of ``operation`` whose JSON ``body`` breaks the
    service model or a documented rule (``domain.constraints``); None when SageMaker would take it."""
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return AWSValidationException("Start of structure or map found where not expected.")
    if not isinstance(params, dict):
        return AWSValidationException("Start of structure or map found where not expected.")
    found = constraints.validate(operation, params)
    return AWSValidationException(violation.validation_exception_message(found)) if found else None


def _page_start(next_token: str | None, total: int) -> int:
    if not next_token:
        return 0
    try:
        start = int(next_token)
    except ValueError:
        start = -1
    if not 0 <= start <= total:
        raise AWSValidationException(f'Invalid pagination token because "{next_token}".')
    return start


def _summary(job: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": job.training_job_name,
        "TrainingJobArn": job.arn,
        "CreationTime": job.creation_time,
        "TrainingEndTime": job.training_end_time,
        "LastModifiedTime": job.last_modified_time,
        "TrainingJobStatus": job.training_job_status,
        "SecondaryStatus": job.secondary_status,
    }
