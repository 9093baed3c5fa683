"""Descriptor + fetcher event -> :class:`TrainingJobSpec`: what to ask SageMaker for, in one pure function.

Called by the submission handler (``service.submission``) before anything touches AWS;
``domain.request`` turns the spec into the CreateTrainingJob request (the SDK Estimator path in
``adapters.sagemaker_sdk`` into an Estimator). No I/O, no clock, no globals: the README's descriptor
table is the mapping, pinned by ``tests/component/test_golden.py`` and ``tests/unit/test_request.py``.

Which way the container runs the benchmark:
* ``ml.framework`` set: **script mode**; the framework image's training toolkit runs the generated
  ``anubis_entry.py`` (``domain.entrypoint``) from the source archive;
* no ``ml.framework``, ``ml.benchmark_code`` set: **command mode** (``domain.command``); any image with a
  POSIX ``sh`` runs the bootstrap (``domain.bootstrap``) from the ``anubis_code`` input channel, which
  holds it and the unpacked scripts, as the Kubernetes executor runs the command;
* neither: the image's own entrypoint, with ``ml.args`` as its ``ContainerArguments``.

Where this differs from the original engine, on purpose (CONTRACT §10):
* one instance unless ``hardware.distributed.num_instances`` asks for more (the original forced 2);
* ``processes_per_instance = "gpus"`` resolves from the ``ml.*`` instance's GPU count;
* Horovod gets MPI for every framework, and for the generic Estimator through the ``sagemaker_mpi_*``
  hyperparameters (the SDK silently drops ``distribution=`` there);
* the job name is always a valid SageMaker name derived from the action, so a redelivered event
  finds the job it created before; the ids copied into the executor's tags are always valid tag values
  (:func:`tag_value_for`), so cancel and redelivery find the job by them too.

Which job names and tag values SageMaker accepts is ``domain.constraints``' to say (the model's
``TrainingJobName`` and ``TagValue``); what the descriptor asks beyond SageMaker's limits is found by
``domain.preflight`` in the request built from the spec, not here.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sagemaker_executor.domain import bootstrap, constraints
from sagemaker_executor.domain.command import CommandMode, command_mode
from sagemaker_executor.domain.descriptor import channel_name
from sagemaker_executor.domain.entrypoint import ENTRY_POINT, render_entry_files
from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.instances import gpus_per_instance
from sagemaker_executor.domain.s3location import SCHEME as S3_SCHEME
from sagemaker_executor.domain.sections import CustomParams, Descriptor, Framework, Strategy

GIB = 1024**3
MIN_VOLUME_GB = 30

# Tags the executor puts on every job it creates; cancel and redelivery find jobs by them.
TAG_ACTION_ID = "anubis-action-id"
TAG_CLIENT_ID = "anubis-client-id"
TAG_PARENT_ACTION_ID = "anubis-parent-action-id"

# The original's options for TensorFlow + Horovod, now the default for every framework.
DEFAULT_MPI_OPTIONS = (
    "-x HOROVOD_HIERARCHICAL_ALLREDUCE=1 -x HOROVOD_FUSION_THRESHOLD=16777216 -x TF_CPP_MIN_LOG_LEVEL=0"
)


@dataclass(frozen=True)
class ExecutorSite:
    """What the deployment decides (configuration), as opposed to what the descriptor asks for.

    Each field is the setting of the same name: ``SAGEMAKER_OUTPUT_BUCKET``, ``SAGEMAKER_NODATASET``,
    ``SAGEMAKER_ROLE`` (as an ARN), ``AWS_DEFAULT_REGION``, ``SAGEMAKER_SUBNETS`` and
    ``SAGEMAKER_SECURITY_GROUP_IDS``.
    """

    output_bucket: str
    nodata_uri: str
    role_arn: str
    region: str
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class MpiDistribution:
    processes_per_host: int
    custom_mpi_options: str

    def as_sdk_distribution(self) -> dict[str, Any]:
        """The framework estimators' ``distribution=`` argument."""
        return {
            "mpi": {
                "enabled": True,
                "processes_per_host": self.processes_per_host,
                "custom_mpi_options": self.custom_mpi_options,
            }
        }

    def as_hyperparameters(self) -> dict[str, Any]:
        """The same request for the generic ``Estimator``, which drops ``distribution=`` silently."""
        return {
            "sagemaker_mpi_enabled": True,
            "sagemaker_mpi_num_of_processes_per_host": self.processes_per_host,
            "sagemaker_mpi_custom_mpi_options": self.custom_mpi_options,
        }


@dataclass(frozen=True)
class TrainingJobSpec:
    """Everything needed to create one training job, in the SDK Estimator's terms (``domain.request``)."""

    job_name: str
    action_id: str
    client_id: str
    image_uri: str
    framework: Framework
    framework_version: str | None
    py_version: str
    instance_type: str
    instance_count: int
    volume_size_gb: int
    inputs: dict[str, str]
    output_path: str
    role_arn: str
    hyperparameters: dict[str, Any]
    metric_definitions: list[dict[str, str]]
    tags: dict[str, str]
    distribution: MpiDistribution | None = None
    entry_point: str | None = ENTRY_POINT  # script mode: the toolkit's ``sagemaker_program``
    entry_files: dict[str, str] = field(default_factory=dict)  # generated files at the source root
    code_channel: str | None = None  # command mode: the input channel that holds the source dir
    scripts_dir: str = ""  # where in the source dir the --script tarballs are unpacked ("": its root)
    container_entrypoint: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()
    script_uris: tuple[str, ...] = ()
    environment: dict[str, str] = field(default_factory=dict)
    container_arguments: tuple[str, ...] = ()
    max_run_seconds: int | None = None
    use_spot_instances: bool = False
    max_wait_seconds: int | None = None
    checkpoint_s3_uri: str | None = None
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()

    @property
    def has_source(self) -> bool:
        """Whether the job needs a source dir: script mode's archive or command mode's code channel."""
        return self.entry_point is not None or self.code_channel is not None

    @property
    def sdk_hyperparameters(self) -> dict[str, Any]:
        """Hyperparameters as passed to the SDK: the generic Estimator carries MPI settings here."""
        if self.distribution is not None and self.framework is Framework.NONE:
            return {**self.hyperparameters, **self.distribution.as_hyperparameters()}
        return dict(self.hyperparameters)


def job_name_for(action_id: str, custom_name: str | None = None) -> str:
    """The training job name for an action: the custom name, else the action id if it is a valid name.

    An action id that is not a valid SageMaker name (``constraints.TRAINING_JOB_NAME``: the BFF sends
    uuid4s, but the field is not checked anywhere upstream; it may be 81 characters long, or end in a
    newline) maps to ``anubis-<32 hex digits of its SHA-256>``, itself always valid: deterministic, so a
    redelivered event and a later cancel find the same job. The custom name is returned as given; the
    descriptor's validation and ``domain.preflight`` refuse an invalid one.
    """
    if custom_name:
        return custom_name
    if constraints.is_valid(constraints.TRAINING_JOB_NAME, action_id):
        return action_id
    return "anubis-" + hashlib.sha256(action_id.encode("utf-8")).hexdigest()[:32]


def tag_value_for(text: str) -> str:
    """``text`` (an action or client id) as the value of one of the executor's own tags.

    As is when SageMaker accepts it as a tag value (``constraints.TAG_VALUE``: at most 256 letters,
    digits, spaces and ``_.:/=+-@``), as every uuid4 and SHA-1 the Anubis client sends is; otherwise
    ``b64:`` and its UTF-8 bytes in URL-safe base64 when that fits, else ``sha256:`` and the hex digest
    of those bytes. Deterministic, so cancel and redelivery find a job by its tag with the same function
    (``service.commands``, ``service.submission``).
    """
    if constraints.is_valid(constraints.TAG_VALUE, text):
        return text
    data = text.encode("utf-8", "surrogatepass")
    encoded = "b64:" + base64.urlsafe_b64encode(data).decode("ascii")
    if constraints.is_valid(constraints.TAG_VALUE, encoded):
        return encoded
    return "sha256:" + hashlib.sha256(data).hexdigest()


def volume_size_gb(event: FetcherBenchmarkEvent) -> int:
    """The original's estimate: ``max(30, int(1.1 * ceil(total dataset bytes / GiB)))``.

    In integers: the same result for every size below 600 EiB, and an absurd ``size_info`` (a
    400-digit ``total_size`` is valid JSON) gives a volume SageMaker refuses instead of an
    ``OverflowError`` in float division.
    """
    total = sum(ds.size_info.total_size for ds in event.payload.datasets if ds.size_info is not None)
    return max(MIN_VOLUME_GB, -(-total // GIB) * 11 // 10)


def input_channels(event: FetcherBenchmarkEvent, nodata_uri: str | None) -> dict[str, str]:
    """One channel per dataset, named by its ``id`` or ``src<index>``; the no-data channel if none
    and ``nodata_uri`` is given (command mode has its code channel, so it needs none).

    Raises :class:`DescriptorError` for two channels of one name (SageMaker needs them distinct) and a
    dataset the fetcher gave no S3 location.
    """
    channels: dict[str, str] = {}
    for index, dataset in enumerate(event.payload.datasets):
        where = f"payload.datasets[{index}]"
        name = channel_name(index, dataset.id or None)  # SageMaker's ChannelName limits: domain.preflight
        if name in channels:
            raise DescriptorError(f"data.sources[{index}].id", f"duplicate data source id {name!r}")
        # Only that there is one: SageMaker's own S3Uri pattern is domain.preflight's to apply.
        if not dataset.dst or not dataset.dst.startswith(S3_SCHEME):
            raise DescriptorError(where + ".dst", f"the fetcher gave no S3 location for {dataset.src!r}")
        channels[name] = dataset.dst
    if not channels and nodata_uri is not None:
        return {"src0": nodata_uri}
    return channels


def _processes_per_host(descriptor: Descriptor) -> int:
    """``processes_per_instance``; "gpus" was checked against the instance by ``check_sagemaker_support``."""
    distributed = descriptor.hardware.distributed
    requested = distributed.processes_per_instance if distributed is not None else "1"
    if requested == "gpus":
        return gpus_per_instance(descriptor.hardware.instance_type)
    return int(requested)


def _hyperparameters(descriptor: Descriptor) -> dict[str, Any]:
    params = dict(descriptor.custom_params.hyper_params) if descriptor.custom_params else {}
    for key in params:
        if key.startswith("sagemaker_"):
            raise DescriptorError(
                f"custom_params.hyper_params.{key}",
                "names starting with 'sagemaker_' are reserved for the SageMaker containers",
            )
    return params  # SageMaker's HyperParameters limits, the executor's own included: domain.preflight


def _metric_definitions(descriptor: Descriptor) -> list[dict[str, str]]:
    """SageMaker's limits on these (``MetricDefinitionList``) are ``domain.preflight``'s to check."""
    metrics = descriptor.output.metrics if descriptor.output else []
    return [{"Name": m.name, "Regex": m.pattern} for m in metrics]


def _tags(descriptor: Descriptor, event: FetcherBenchmarkEvent) -> dict[str, str]:
    tags = dict(descriptor.custom_params.tags) if descriptor.custom_params else {}
    tags[TAG_ACTION_ID] = tag_value_for(event.action_id)
    tags[TAG_CLIENT_ID] = tag_value_for(event.client_id)
    if event.parent_action_id:
        tags[TAG_PARENT_ACTION_ID] = tag_value_for(event.parent_action_id)
    return tags


@dataclass(frozen=True)
class _Launch:
    """How the job starts: its channels, the files the executor adds to its sources, and either the
    framework toolkit's entry point (script mode) or the image's own entrypoint (command mode)."""

    inputs: dict[str, str]
    entry_files: dict[str, str]
    entry_point: str | None = None
    code_channel: str | None = None
    scripts_dir: str = ""
    command: CommandMode | None = None


def _launch(descriptor: Descriptor, event: FetcherBenchmarkEvent, site: ExecutorSite) -> _Launch:
    ml = descriptor.ml
    framework = ml.framework if ml is not None else Framework.NONE
    benchmark_code = ml.benchmark_code if ml is not None else None
    params = descriptor.custom_params
    command_code = framework is Framework.NONE and bool(benchmark_code)
    inputs = input_channels(event, None if command_code else site.nodata_uri)
    if framework is not Framework.NONE:
        if not benchmark_code:
            raise DescriptorError("ml.benchmark_code", f"is required to run a {framework.value} benchmark")
        # Script mode: the framework image's training toolkit runs the generated entry point.
        return _Launch(
            inputs, render_entry_files(benchmark_code, descriptor.env.vars), entry_point=ENTRY_POINT
        )
    if not benchmark_code and (event.payload.scripts or (params is not None and params.requirements)):
        field_name = "ml.script" if event.payload.scripts else "custom_params.requirements"
        raise DescriptorError(field_name, "needs ml.benchmark_code to say how to run the benchmark")
    command = command_mode(descriptor, event, list(inputs))
    if command.bootstrap is None:
        return _Launch(inputs, {}, command=command)
    # Command mode: any image with a POSIX sh runs benchmark_code, as on the Kubernetes executor.
    return _Launch(
        inputs,
        {bootstrap.BOOTSTRAP: command.bootstrap},
        code_channel=bootstrap.CODE_CHANNEL,
        scripts_dir=bootstrap.SCRIPTS_DIR,
        command=command,
    )


def _distribution(descriptor: Descriptor) -> MpiDistribution | None:
    if descriptor.hardware.strategy is not Strategy.HOROVOD:
        return None
    params = descriptor.custom_params
    mpi_options = (params.custom_mpi_options if params is not None else None) or DEFAULT_MPI_OPTIONS
    return MpiDistribution(_processes_per_host(descriptor), mpi_options)


def translate(descriptor: Descriptor, event: FetcherBenchmarkEvent, site: ExecutorSite) -> TrainingJobSpec:
    """The training job to create for ``event``, whose descriptor ``descriptor`` passed validation.

    Raises :class:`DescriptorError` for what the descriptor asks but SageMaker cannot do.
    """
    ml = descriptor.ml
    params = descriptor.custom_params or CustomParams.model_validate({})  # its defaults are ours
    launch = _launch(descriptor, event, site)
    command = launch.command
    distributed = descriptor.hardware.distributed
    return TrainingJobSpec(
        job_name=job_name_for(event.action_id, params.sagemaker_job_name),
        action_id=event.action_id,
        client_id=event.client_id,
        image_uri=descriptor.env.docker_image,
        framework=ml.framework if ml is not None else Framework.NONE,
        framework_version=(ml.framework_version or None) if ml is not None else None,
        py_version=params.python_version,
        instance_type=descriptor.hardware.instance_type,
        instance_count=distributed.num_instances if distributed is not None else 1,
        volume_size_gb=volume_size_gb(event),
        inputs=launch.inputs,
        output_path=f"s3://{site.output_bucket}",
        role_arn=site.role_arn,
        hyperparameters=_hyperparameters(descriptor),
        metric_definitions=_metric_definitions(descriptor),
        tags=_tags(descriptor, event),
        distribution=_distribution(descriptor),
        entry_point=launch.entry_point,
        entry_files=launch.entry_files,
        code_channel=launch.code_channel,
        scripts_dir=launch.scripts_dir,
        container_entrypoint=command.container_entrypoint if command is not None else (),
        requirements=tuple(params.requirements),
        script_uris=tuple(script.dst for script in event.payload.scripts),
        environment=command.environment if command is not None else {},
        container_arguments=command.container_arguments if command is not None else (),
        max_run_seconds=params.max_run_seconds,
        use_spot_instances=params.use_spot_instances,
        max_wait_seconds=params.max_wait_seconds,
        checkpoint_s3_uri=params.checkpoint_s3_uri,
        subnets=site.subnets,
        security_group_ids=site.security_group_ids,
    )


def routing(contents: Mapping[str, Any]) -> tuple[str, str]:
    """``(execution_engine, scheduling)`` of raw descriptor contents, read before full validation.

    Events for other engines or schedules are ignored silently (CONTRACT §5.1), even if their
    descriptor would fail this executor's validation: they are somebody else's to judge.
    """
    info = contents.get("info") if isinstance(contents, Mapping) else None
    info = info if isinstance(info, Mapping) else {}
    engine = info.get("execution_engine", "default")
    scheduling = info.get("scheduling", "single_run")
    return (
        engine if isinstance(engine, str) else repr(engine),
        scheduling if isinstance(scheduling, str) else "",
    )
