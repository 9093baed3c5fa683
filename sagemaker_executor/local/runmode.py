"""Local SageMaker, run mode as moto sees it: a job the runner runs, reported through moto's job object.

Owns the local SageMaker's side of run mode (``local.sagemaker`` is its one caller; ``local.runner``
does the running): at CreateTrainingJob, whether the job can run here (``has_entrypoint``: a
``ContainerEntrypoint``, since no image is pulled), SageMaker's ``ValidationException`` for a
channel whose S3 prefix holds no object (``check_channels``), and the request rebuilt from moto's
arguments when the call did not come through moto's response class (``request_of``); afterwards
``apply_run``, which writes a ``Run``'s ``RunState`` into moto's job object as ``timeline.apply_plan``
does for a timeline -- statuses and their transitions, times, ``FailureReason``,
``FinalMetricDataList``, ``ModelArtifacts``, and the request's own ``AlgorithmSpecification`` and
``Environment`` (moto rewrites the one and drops the other).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moto.sagemaker.exceptions import AWSValidationException

from sagemaker_executor.local.jobspec import JobSpec, Unsupported, no_objects_message
from sagemaker_executor.local.motoaws import MotoAws, StorageError
from sagemaker_executor.local.runner import RunningJob, RunState
from sagemaker_executor.local.timeline import STATUS_MESSAGES, naive


@dataclass
class Run:
    """A job the runner runs, and the request it was created with."""

    job: Any  # the moto FakeTrainingJob this run reports through
    run: RunningJob
    request: dict[str, Any]  # the CreateTrainingJob request as sent (moto drops or rewrites parts)


def apply_run(job: Any, state: RunState, request: Mapping[str, Any]) -> None:
    """Write a run-mode job's state into moto's object, as ``timeline.apply_plan`` does for a timeline."""
    transitions = []
    for index, (status, entered) in enumerate(state.transitions):
        entry: dict[str, Any] = {"Status": status, "StartTime": naive(entered)}
        if index + 1 < len(state.transitions):
            entry["EndTime"] = naive(state.transitions[index + 1][1])
        elif state.ended:
            entry["EndTime"] = naive(entered)
        entry["StatusMessage"] = STATUS_MESSAGES[status]
        transitions.append(entry)
    start, end = state.training_start, state.training_end
    seconds = int((end - start).total_seconds()) if start is not None and end is not None else None
    algorithm = copy.deepcopy(dict(request.get("AlgorithmSpecification") or {}))
    vars(job).update(
        training_job_status=state.status,
        secondary_status=state.secondary_status,
        secondary_status_transitions=transitions,
        last_modified_time=naive(state.transitions[-1][1]),
        training_start_time=naive(start) if start is not None else None,
        training_end_time=naive(end) if end is not None else None,
        training_time_in_seconds=seconds,
        billable_time_in_seconds=seconds,
        failure_reason=state.failure_reason,
        final_metric_data_list=[
            {"MetricName": m.name, "Value": m.value, "Timestamp": naive(m.timestamp)}
            for m in state.final_metrics
        ]
        or None,
        model_artifacts={"S3ModelArtifacts": state.model_artifacts} if state.model_artifacts else None,
        # As sent: moto replaces MetricDefinitions with its own and keeps no Environment.
        algorithm_specification=algorithm,
        environment=dict(request.get("Environment") or {}) or None,
    )


def request_of(name: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
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


def has_entrypoint(request: Mapping[str, Any]) -> bool:
    """Whether run mode can run the job: the image's own entrypoint is unknown without an image."""
    algorithm = request.get("AlgorithmSpecification")
    return isinstance(algorithm, Mapping) and bool(algorithm.get("ContainerEntrypoint"))


def check_channels(request: Mapping[str, Any], aws: MotoAws) -> None:
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
