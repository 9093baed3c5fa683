"""The pre-flight check: the final CreateTrainingJob request, checked before any AWS call against all
SageMaker would refuse, each problem named by what produced it and the limit it breaks.

Called by ``service.submission`` (:func:`check`) after translation and before the job's source dir is
built or anything is uploaded; ``service.submission.preflight_errors`` runs the same steps for the
``submit`` client. The rules are ``domain.constraints``': every limit of botocore's SageMaker model
(length, pattern, range, list and map sizes, integer widths) and the API reference's rules the model
cannot express (28 days of run time, spot's wait). This module owns the way back, from a member of
the request to the descriptor field, event field or setting that produced it, so the user reads
``descriptor field 'custom_params.hyper_params.classes': SageMaker accepts at most 2500 characters,
got 3902`` instead of SageMaker's ``hyperParameters`` after the source was uploaded. A value the
executor chose (the SDK's default max run of 86,400 s, its own hyperparameters and tags) is named as
such.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagemaker_executor.domain import constraints
from sagemaker_executor.domain.descriptor import field_path
from sagemaker_executor.domain.errors import PermanentError
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.request import create_training_job_request, source_uri
from sagemaker_executor.domain.sections import Framework
from sagemaker_executor.domain.translation import (
    TAG_ACTION_ID,
    TAG_CLIENT_ID,
    TAG_PARENT_ACTION_ID,
    TrainingJobSpec,
    job_name_for,
)
from sagemaker_executor.domain.violation import Rule, Violation

OPERATION = "CreateTrainingJob"
_OWN_TAGS = {TAG_ACTION_ID: "action_id", TAG_CLIENT_ID: "client_id", TAG_PARENT_ACTION_ID: "parent_action_id"}
_MPI_SOURCES = {
    "sagemaker_mpi_enabled": "hardware.strategy",
    "sagemaker_mpi_num_of_processes_per_host": "hardware.distributed.processes_per_instance",
    "sagemaker_mpi_custom_mpi_options": "custom_params.custom_mpi_options",
}


@dataclass(frozen=True)
class Problem:
    """``source``: ``descriptor field 'x'``, ``event field 'x'``, ``setting X`` or, for what the executor
    alone decides, ``the executor's own request field 'x'``; ``reason``: the limit and the value."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class PreflightError(PermanentError, ValueError):
    """SageMaker would refuse the request. Permanent: the user's ERROR status says every problem."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = tuple(problems)


def check(spec: TrainingJobSpec, event: FetcherBenchmarkEvent, region: str) -> dict[str, Any]:
    """The CreateTrainingJob request for ``spec`` as it will be sent (its source archive named where
    ``adapters.sagemaker`` will upload it), checked. ``region``: ``AWS_DEFAULT_REGION``.

    Raises :class:`PreflightError` when SageMaker would refuse it, and
    ``domain.request.RequestRefused`` for what the SDK refuses to build.
    """
    request = create_training_job_request(spec, source_uri(spec), region)
    problems = request_problems(request, spec, event)
    if problems:
        raise PreflightError(problems)
    return request


def request_problems(
    request: Mapping[str, Any], spec: TrainingJobSpec, event: FetcherBenchmarkEvent
) -> list[Problem]:
    """What SageMaker would refuse in ``request`` (built from ``spec``, translated from ``event``), one
    problem per source: the model's in request order, then the API reference's rules. Of two
    violations of one source the first is kept, except that an integer's width gives way to a tighter
    rule (28 days before 2,147,483,647 seconds)."""
    by_source: dict[str, list[tuple[Violation, Problem]]] = {}
    for violation in constraints.validate(OPERATION, request):
        problem = _trace(violation, request, spec, event)
        by_source.setdefault(problem.source, []).append((violation, problem))
    problems = []
    for found in by_source.values():
        tight = [problem for violation, problem in found if not violation.width]
        problems.append(tight[0] if tight else found[0][1])
    return problems


# ---------------------------------------------------------------- from a request member to its source


def _descriptor(path: str) -> str:
    return f"descriptor field '{path}'"


def _event(path: str) -> str:
    return f"event field '{path}'"


def _setting(name: str) -> str:
    return f"setting {name}"


def _trace(
    v: Violation, request: Mapping[str, Any], spec: TrainingJobSpec, event: FetcherBenchmarkEvent
) -> Problem:
    """The problem ``v`` is, said of the descriptor field, event field or setting that produced it."""
    tracer = _TRACERS.get(str(v.path[0])) if v.path else None
    problem = tracer(v, request, spec, event) if tracer is not None else None
    return problem or Problem(f"the executor's own request field '{v.wire_path()}'", v.limit_text())


# One tracer per top-level member of the request; None: the executor's own value, not traced further.
_Tracer = Callable[[Violation, Mapping[str, Any], TrainingJobSpec, FetcherBenchmarkEvent], Problem | None]


def _trace_job_name(v: Violation, _r: Mapping[str, Any], spec: TrainingJobSpec, _e: object) -> Problem | None:
    return Problem(_job_name_source(spec), v.limit_text()) if len(v.path) == 1 else None


def _job_name_source(spec: TrainingJobSpec) -> str:
    custom = spec.job_name != job_name_for(spec.action_id)
    return _descriptor("custom_params.sagemaker_job_name") if custom else _event("action_id")


def _trace_hyperparameters(
    v: Violation, request: Mapping[str, Any], spec: TrainingJobSpec, _e: object
) -> Problem | None:
    match v.path:
        case ("HyperParameters",):
            own = len(request["HyperParameters"]) - len(spec.hyperparameters)
            note = f" ({own} of them the executor's own)" if own else ""
            return Problem(_descriptor("custom_params.hyper_params"), v.limit_text("hyperparameters") + note)
        case ("HyperParameters", str(key)):
            return _hyperparameter(v, key, spec)
    return None


def _trace_algorithm(v: Violation, _r: Mapping[str, Any], _s: object, _e: object) -> Problem | None:
    reason = v.limit_text()
    match v.path:
        case ("AlgorithmSpecification", "TrainingImage"):
            return Problem(_descriptor("env.docker_image"), reason)
        case ("AlgorithmSpecification", "MetricDefinitions"):
            return Problem(_descriptor("output.metrics"), v.limit_text("metrics"))
        case ("AlgorithmSpecification", "MetricDefinitions", int(index), "Name" | "Regex" as member):
            what = "name" if member == "Name" else "pattern"
            return Problem(_descriptor(f"output.metrics[{index}].{what}"), reason)
        case ("AlgorithmSpecification", "ContainerArguments"):
            return Problem(_descriptor("ml.args"), v.limit_text("arguments"))
        case ("AlgorithmSpecification", "ContainerArguments", int(index)):
            return Problem(_descriptor("ml.args"), f"its argument {index + 1}: {reason}")
    return None


def _trace_inputs(
    v: Violation, _r: Mapping[str, Any], spec: TrainingJobSpec, event: FetcherBenchmarkEvent
) -> Problem | None:
    reason = v.limit_text()
    match v.path:
        case ("InputDataConfig",) if event.payload.datasets:
            note = f" and the executor's code channel {spec.code_channel!r}" if spec.code_channel else ""
            what = f"input channels (one per data source{note})"
            return Problem(_descriptor("data.sources"), v.limit_text(what))
        case ("InputDataConfig", int(index), *_) if spec.code_channel and index == 0:
            return Problem(_setting("SAGEMAKER_OUTPUT_BUCKET"), f"in the code channel's location: {reason}")
        case ("InputDataConfig", int(index), "ChannelName") if event.payload.datasets:
            index -= 1 if spec.code_channel else 0
            return Problem(_descriptor(f"data.sources[{index}].id"), f"becomes a channel name: {reason}")
        case ("InputDataConfig", int(index), "DataSource", "S3DataSource", "S3Uri"):
            index -= 1 if spec.code_channel else 0
            if event.payload.datasets:
                return Problem(_event(f"payload.datasets[{index}].dst"), reason)
            return Problem(_setting("SAGEMAKER_NODATASET"), reason)
    return None


def _trace_resources(
    v: Violation, _r: Mapping[str, Any], _s: object, event: FetcherBenchmarkEvent
) -> Problem | None:
    reason = v.limit_text()
    match v.path:
        case ("ResourceConfig", "InstanceType"):
            return Problem(_descriptor("hardware.instance_type"), reason)
        case ("ResourceConfig", "InstanceCount"):
            return Problem(_descriptor("hardware.distributed.num_instances"), reason)
        case ("ResourceConfig", "VolumeSizeInGB"):
            return Problem(_volume_source(event), f"the training volume in GB estimated from it: {reason}")
    return None


def _trace_vpc(v: Violation, _r: Mapping[str, Any], _s: object, _e: object) -> Problem | None:
    match v.path:
        case ("VpcConfig", "Subnets", *_):
            return Problem(_setting("SAGEMAKER_SUBNETS"), v.limit_text("subnets"))
        case ("VpcConfig", "SecurityGroupIds", *_):
            return Problem(_setting("SAGEMAKER_SECURITY_GROUP_IDS"), v.limit_text("security groups"))
    return None


def _trace_stopping(v: Violation, _r: Mapping[str, Any], spec: TrainingJobSpec, _e: object) -> Problem | None:
    match v.path:
        case ("StoppingCondition", "MaxRuntimeInSeconds"):
            return Problem(_descriptor("custom_params.max_run_seconds"), v.limit_text() + _default_run(spec))
        case ("StoppingCondition", "MaxWaitTimeInSeconds"):
            return Problem(_descriptor("custom_params.max_wait_seconds"), _wait_reason(v, spec))
    return None


def _trace_tags(v: Violation, request: Mapping[str, Any], _s: object, _e: object) -> Problem | None:
    match v.path:
        case ("Tags",):
            own_tags = [tag["Key"] for tag in request["Tags"] if tag["Key"] in _OWN_TAGS]
            note = f" (the executor's own {len(own_tags)} included: {', '.join(own_tags)})"
            return Problem(_descriptor("custom_params.tags"), v.limit_text("tags") + note)
        case ("Tags", int(index), "Key" | "Value" as member):
            key = request["Tags"][index]["Key"]
            if key in _OWN_TAGS:
                return Problem(_event(_OWN_TAGS[key]), f"copied into the tag {key}: {v.limit_text()}")
            what = "its key" if member == "Key" else "its value"
            path = field_path(("custom_params", "tags", key))
            return Problem(_descriptor(path), f"{what}: {v.limit_text()}")
    return None


def _trace_environment(v: Violation, _r: Mapping[str, Any], _s: object, _e: object) -> Problem | None:
    match v.path:
        case ("Environment",):
            return Problem(_descriptor("env.vars"), v.limit_text("variables"))
        case ("Environment", str(name)):
            what = "its name: " if v.in_key else ""
            return Problem(_descriptor(field_path(("env", "vars", name))), what + v.limit_text())
    return None


def _trace_member(source: str) -> _Tracer:
    """A tracer for a top-level member that one descriptor field or setting gives as it is."""

    def trace(v: Violation, _r: Mapping[str, Any], _s: object, _e: object) -> Problem | None:
        return Problem(source, v.limit_text()) if len(v.path) == 1 else None

    return trace


def _trace_output(v: Violation, _r: Mapping[str, Any], _s: object, _e: object) -> Problem | None:
    if v.path == ("OutputDataConfig", "S3OutputPath"):
        return Problem(_setting("SAGEMAKER_OUTPUT_BUCKET"), v.limit_text())
    return None


def _trace_checkpoint(v: Violation, _r: Mapping[str, Any], _s: object, _e: object) -> Problem | None:
    if v.path == ("CheckpointConfig", "S3Uri"):
        return Problem(_descriptor("custom_params.checkpoint_s3_uri"), v.limit_text())
    return None


_TRACERS: dict[str, _Tracer] = {
    "TrainingJobName": _trace_job_name,
    "HyperParameters": _trace_hyperparameters,
    "AlgorithmSpecification": _trace_algorithm,
    "RoleArn": _trace_member(_setting("SAGEMAKER_ROLE")),
    "InputDataConfig": _trace_inputs,
    "OutputDataConfig": _trace_output,
    "ResourceConfig": _trace_resources,
    "VpcConfig": _trace_vpc,
    "StoppingCondition": _trace_stopping,
    "EnableManagedSpotTraining": _trace_member(_descriptor("custom_params.use_spot_instances")),
    "Tags": _trace_tags,
    "CheckpointConfig": _trace_checkpoint,
    "Environment": _trace_environment,
}


def _hyperparameter(v: Violation, key: str, spec: TrainingJobSpec) -> Problem:
    reason = ("its name: " if v.in_key else "") + v.limit_text()
    own_model_dir = key == "model_dir" and spec.framework is Framework.TENSORFLOW
    if key in spec.hyperparameters and not own_model_dir:
        return Problem(_descriptor(field_path(("custom_params", "hyper_params", key))), reason)
    if key in _MPI_SOURCES:
        return Problem(_descriptor(_MPI_SOURCES[key]), f"becomes the hyperparameter {key}: {reason}")
    if key == "sagemaker_job_name":
        return Problem(_job_name_source(spec), f"becomes the hyperparameter {key}: {reason}")
    if key in ("sagemaker_submit_directory", "model_dir"):
        return Problem(_setting("SAGEMAKER_OUTPUT_BUCKET"), f"becomes the hyperparameter {key}: {reason}")
    return Problem(f"the executor's own hyperparameter '{key}'", reason)


def _volume_source(event: FetcherBenchmarkEvent) -> str:
    """The dataset whose size weighs most in the volume estimate (``translation.volume_size_gb``)."""
    sizes = [
        (dataset.size_info.total_size, index)
        for index, dataset in enumerate(event.payload.datasets)
        if dataset.size_info is not None
    ]
    if not sizes:
        return "the executor's own request field 'resourceConfig.volumeSizeInGB'"
    _, index = max(sizes)
    return _event(f"payload.datasets[{index}].size_info.total_size")


def _default_run(spec: TrainingJobSpec) -> str:
    if spec.max_run_seconds is not None:
        return ""
    return ", the SDK's default max run (custom_params.max_run_seconds is not set)"


def _wait_reason(v: Violation, spec: TrainingJobSpec) -> str:
    """Spot's rules (API reference, StoppingCondition.MaxWaitTimeInSeconds), for the user."""
    if v.rule is not Rule.DOCUMENTED:
        return v.limit_text()
    if v.value is None:
        run = f", so at least the maximum run time, {v.limit} seconds{_default_run(spec)}" if v.limit else ""
        return (
            "SageMaker requires it with use_spot_instances = true: how long to wait for spot capacity "
            f"plus the run time{run}"
        )
    if v.bound == "min":
        return (
            f"SageMaker needs it to be at least the maximum run time, {v.limit} seconds"
            f"{_default_run(spec)}, got {v.actual}"
        )
    return "is only allowed with use_spot_instances = true"
