"""Local SageMaker: moto's training jobs made to behave like the real service, on a controllable clock.

Owns the behaviour layer put under the executor by component tests, integration tests and the demo,
and its patching into moto's classes: SageMaker's input validation on every request
(``domain.constraints``: every limit of botocore's SageMaker model and the API reference's rules,
answered as ``ValidationException`` in SageMaker's words, before moto sees the request), unique job
names (``ResourceInUse``), ``StopTrainingJob``, statuses that move along a per-job ``Timeline``
(``local.timeline``, whose names are still importable from here), ``ListTrainingJobs`` filtering
before pagination, and a ``Search`` on training jobs that honours every filter (``local.queries``).
Used in-process (inside ``moto.mock_aws()`` or next to a ``ThreadedMotoServer``) and by
``sagemaker_executor.local.server``, which serves it over HTTP.

Statuses are computed lazily from the clock whenever a job is described, listed, searched or stopped;
nothing runs in the background, so a ``ManualClock`` gives tests full control of time.

Run mode (``LocalSageMaker(run_jobs=True)``, or ``runner=JobRunner(...)``; the server's ``--run-jobs``)
executes instead each job that has a ``ContainerEntrypoint`` and that no rule, tag or hyperparameter
below gives a timeline: ``local.runner`` runs its ``ContainerEntrypoint`` as processes on this
machine, in real time (no ``ManualClock``), and its status is whatever the running job has reached
(``local.runmode`` writes it into moto's job object).
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
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any

# moto internals relied on: the backend class and its per-account/region registry, the response class
# that dispatches "StopTrainingJob" to a method named stop_training_job, and its exception types.
from moto.core.responses import ActionResult, BaseResponse, EmptyResult
from moto.sagemaker.exceptions import AWSValidationException, ResourceInUseException, ValidationError
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

from sagemaker_executor.domain import constraints, violation
from sagemaker_executor.local.motoaws import MotoAws
from sagemaker_executor.local.queries import JobSnapshot as JobSnapshot
from sagemaker_executor.local.queries import list_page, search_predicate
from sagemaker_executor.local.runmode import Run, apply_run, check_channels, has_entrypoint, request_of
from sagemaker_executor.local.runner import JobRunner
from sagemaker_executor.local.timeline import DEFAULT_FAILURE_REASON as DEFAULT_FAILURE_REASON
from sagemaker_executor.local.timeline import OUTCOME_KEY as OUTCOME_KEY
from sagemaker_executor.local.timeline import Clock as Clock
from sagemaker_executor.local.timeline import EndStatus as EndStatus
from sagemaker_executor.local.timeline import ManualClock as ManualClock
from sagemaker_executor.local.timeline import Plan, apply_override, apply_plan, naive, outcome_override
from sagemaker_executor.local.timeline import RealClock as RealClock
from sagemaker_executor.local.timeline import Timeline as Timeline

# The CreateTrainingJob request being served on this thread, as sent: moto passes on neither
# Environment nor MetricDefinitions, and run mode needs both.
_REQUEST = threading.local()


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
        self._runs: dict[str, Run] = {}
        self._initial_timeline = default_timeline if default_timeline is not None else Timeline()
        self._default_timeline = self._initial_timeline
        self._rules: list[tuple[str, Timeline]] = []
        self._plans: dict[str, Plan] = {}
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
            override = outcome_override(tags, hyper_parameters)
            if override is not None:
                return apply_override(self._default_timeline, override)
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
                        snapshots.append(JobSnapshot.of(job))
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
            request = getattr(_REQUEST, "body", None) or request_of(name, kwargs)
            run = self.runner is not None and chosen is None and has_entrypoint(request)
            aws = MotoAws(backend.account_id, backend.region_name)
            if run:
                check_channels(request, aws)
            original = self._original(SageMakerModelBackend, "create_training_job")
            job = original(backend, training_job_name=name, **kwargs)
            now = self.clock.now()
            job.creation_time = naive(now)
            if self.runner is not None and run:
                started = self.runner.start(copy.deepcopy(request), job.arn, aws)
                self._runs[job.arn] = Run(job=job, run=started, request=request)
            else:
                timeline = chosen if chosen is not None else self._default_timeline
                self._plans[job.arn] = Plan(job=job, created_at=now, timeline=timeline)
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

    def _list(self, backend: Any, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            now = self.clock.now()
            jobs = list(backend.training_jobs.values())
            for job in jobs:
                self._refresh(job, now)
            return list_page(jobs, **kwargs)

    def _search(self, backend: Any, resource: Any, search_expression: Any) -> Any:
        if resource != "TrainingJob":
            return self._original(SageMakerModelBackend, "search")(backend, resource, search_expression)
        matches = search_predicate(search_expression)
        with self._lock:
            now = self.clock.now()
            results = []
            for job in list(backend.training_jobs.values()):
                self._refresh(job, now)
                job_fields = job.response_object
                if matches(job_fields):
                    results.append({"TrainingJob": job_fields})
            return {"Results": results, "NextToken": None}

    def _refresh(self, job: Any, now: datetime) -> None:
        """Write the job's status as of ``now`` into moto's object, which moto then serialises."""
        run = self._runs.get(job.arn)
        if run is not None and run.job is job:
            apply_run(job, run.run.snapshot(), run.request)
            return
        plan = self._plans.get(job.arn)
        if plan is None or plan.job is not job:
            return  # created before install(): leave moto's own (Completed) job alone
        apply_plan(job, plan, now)


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
