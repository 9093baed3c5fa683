""":class:`TrainingJobSpec` -> the CreateTrainingJob request, exactly as SageMaker Python SDK 2.x sends it.

Owns the request the executor sends to SageMaker. ``adapters.sagemaker.SageMakerJobs.create`` calls
:func:`create_training_job_request` and passes the result to boto3's ``create_training_job``; the SDK
Estimator path (``adapters.sagemaker_sdk``, ``REQUEST_BUILDER=sdk``) is kept as the oracle, and
``tests/component/test_request_oracle.py`` checks on generated descriptors that both send the same
request, field by field. Pure: no I/O, no clock; the region is an argument.

The rules below are those of ``sagemaker`` 2.257.7 (``estimator.EstimatorBase``, ``estimator.Estimator``,
``estimator.Framework``, ``tensorflow.TensorFlow``, ``pytorch.PyTorch``, ``mxnet.MXNet``,
``job._Job._load_config``, ``estimator._TrainingJob._get_train_args``, ``session.Session.get_train_request``)
for the arguments the executor gives every estimator: ``image_uri``, ``role`` (an ARN), one instance
type and count, ``volume_size``, ``output_path`` = ``code_location`` = ``s3://<bucket>``,
``hyperparameters``, ``metric_definitions``, ``tags``, VPC, ``environment``, ``max_run``, spot and
``max_wait``, ``checkpoint_s3_uri``, ``entry_point`` with an S3 ``source_dir``,
``debugger_hook_config=False``, ``disable_profiler=True``, and for the framework estimators
``framework_version``, ``py_version`` and ``distribution={"mpi": ...}``; a session config that only
opts out of telemetry. Field by field:

* ``AlgorithmSpecification``: ``TrainingInputMode`` ``File``; ``TrainingImage`` is ``env.docker_image``
  as given, for every framework (the descriptor requires it, and an estimator given ``image_uri``
  never looks an image up, ``image_uris.get_training_image_uri``); ``MetricDefinitions`` when there
  are metrics; ``EnableSageMakerMetricsTimeSeries`` true for TensorFlow >= 1.15, PyTorch >= 1.3 and
  MXNet >= 1.6 (PEP 440 comparison), absent otherwise and for the generic Estimator;
  ``ContainerEntrypoint`` in command mode (``container_entry_point=``: ``sh`` and the bootstrap in
  the code channel, ``domain.bootstrap``), ``ContainerArguments`` when there are any
  (``container_arguments=``: ``ml.args`` of a bring-your-own container).
* ``HyperParameters`` (absent when empty): with an entry point, every value JSON-encoded
  (``json.dumps``: ``"fast"`` -> ``'"fast"'``, ``64`` -> ``'64'``, ``True`` -> ``'true'``) plus
  ``sagemaker_program``, ``sagemaker_submit_directory``, ``sagemaker_container_log_level`` (20),
  ``sagemaker_job_name``, ``sagemaker_region``; MPI as ``sagemaker_mpi_enabled``,
  ``sagemaker_mpi_num_of_processes_per_host`` and ``sagemaker_mpi_custom_mpi_options`` (MXNet sends the
  options only with a process count); TensorFlow adds ``model_dir`` (``/opt/ml/model`` under MPI, else
  ``<output>/<job>/model``), replacing a user hyperparameter of that name. Without an entry point
  (bring-your-own container, generic Estimator) values are ``str()``'d, not JSON-encoded, and no
  ``sagemaker_*`` script keys are added.
* ``InputDataConfig``: one ``S3Prefix``, ``FullyReplicated`` channel per input, in order; in command
  mode the code channel comes first (``fit({code_channel: code_uri, **inputs})``), its ``S3Uri`` the
  prefix the source dir's files were uploaded under.
* ``OutputDataConfig``: ``S3OutputPath`` only. ``ResourceConfig``: ``VolumeSizeInGB``,
  ``InstanceCount``, ``InstanceType``. ``StoppingCondition``: ``MaxRuntimeInSeconds`` (default 86,400)
  and ``MaxWaitTimeInSeconds`` when given. ``RoleArn`` as given.
* ``Tags`` always (the executor's own are never empty); ``Environment``, ``VpcConfig`` (both subnets
  and security groups), ``EnableManagedSpotTraining``, ``CheckpointConfig`` (``S3Uri``) when set.
* ``ProfilerConfig`` is always ``{"DisableProfiler": true}``. Never sent: ``DebugHookConfig`` (the hook is
  off), ``RetryStrategy`` (no ``max_retry_attempts``), ``EnableNetworkIsolation`` and
  ``EnableInterContainerTrafficEncryption`` (false), ``ExperimentConfig``.

What the SDK refuses is refused here too, with its words, as :class:`RequestRefused`: a framework
version PEP 440 cannot parse; subnets without security groups or the reverse; MPI on a Trainium
(``ml.trn*``) instance for TensorFlow and PyTorch (``fw_utils.validate_distribution_for_instance_type``);
TensorFlow ``py2`` above 2.1.1; MXNet distribution below 1.3 by the SDK's own string-list comparison
(``MXNet._configure_distribution``, so ``"1.10"`` counts as below).

Deliberately not reproduced: the SDK's SageMaker Studio project tags (read from a
``.sagemaker-code-config`` file found above the working directory, which the container never has) and
everything a SDK config file could add (the SDK path passes its own config, so it reads none either).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from packaging.version import InvalidVersion, Version

from sagemaker_executor.domain.errors import PermanentError
from sagemaker_executor.domain.s3location import parse_s3_uri
from sagemaker_executor.domain.sections import Framework
from sagemaker_executor.domain.translation import MpiDistribution, TrainingJobSpec

DEFAULT_MAX_RUN_SECONDS: Final = 24 * 60 * 60  # EstimatorBase(max_run=24 * 60 * 60)
CONTAINER_LOG_LEVEL: Final = 20  # EstimatorBase(container_log_level=logging.INFO)
INPUT_MODE: Final = "File"  # EstimatorBase(input_mode="File")

# First version of each framework whose estimator turns on SageMaker metrics time series.
METRICS_SINCE: Final = {
    Framework.TENSORFLOW: Version("1.15"),
    Framework.PYTORCH: Version("1.3"),
    Framework.MXNET: Version("1.6"),
}
TF_HIGHEST_PY2: Final = "2.1.1"  # sagemaker.tensorflow.defaults.LATEST_PY2_VERSION
MXNET_LOWEST_DISTRIBUTED: Final = ["1", "3"]  # MXNet._LOWEST_SCRIPT_MODE_VERSION
MPI_MOUNTED_MODEL_DIR: Final = "/opt/ml/model"
# fw_utils.validate_distribution_for_instance_type and _instance_type_supports_profiler.
_INSTANCE_FAMILY = re.compile(r"^ml[\._]([a-z\d\-]+)\.?\w*$")
_TRAINIUM_STRATEGIES: Final = ["torch_distributed"]

_REFUSED = "Cannot create estimator"  # the SDK path's words, so a user sees one message either way


class RequestRefused(PermanentError, ValueError):
    """The SDK would refuse to build this request; the message is the SDK's, shown to the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{_REFUSED}: {reason}")
        self.reason = reason


def create_training_job_request(spec: TrainingJobSpec, code_uri: str | None, region: str) -> dict[str, Any]:
    """The keyword arguments of ``CreateTrainingJob`` for ``spec``, as SDK 2.x's ``fit`` would send them.

    ``code_uri`` is where the source dir was uploaded (:func:`source_uri`): script mode's archive
    (``sagemaker_submit_directory``) or command mode's code channel prefix; it is required when
    ``spec.has_source`` and ignored otherwise. ``region`` is the session's
    region (``sagemaker_region``). The result holds only JSON types (str, int, bool, list, dict).
    Raises :class:`RequestRefused` for what the SDK refuses (see the module docstring).
    """
    _check_as_the_sdk_does(spec)
    if spec.has_source and not code_uri:
        raise RequestRefused("the job needs a source dir but none was uploaded")

    request: dict[str, Any] = {
        "TrainingJobName": spec.job_name,
        "AlgorithmSpecification": _algorithm_specification(spec),
        "RoleArn": spec.role_arn,
        "InputDataConfig": [_channel(name, uri) for name, uri in channels(spec, code_uri).items()],
        "OutputDataConfig": {"S3OutputPath": spec.output_path},
        "ResourceConfig": {
            "VolumeSizeInGB": spec.volume_size_gb,
            "InstanceCount": spec.instance_count,
            "InstanceType": spec.instance_type,
        },
        "StoppingCondition": _stopping_condition(spec),
        "Tags": [{"Key": key, "Value": value} for key, value in spec.tags.items()],
        "ProfilerConfig": {"DisableProfiler": True},
    }
    request.update(_optional_members(spec, code_uri, region))
    return request


def _algorithm_specification(spec: TrainingJobSpec) -> dict[str, Any]:
    algorithm: dict[str, Any] = {"TrainingInputMode": INPUT_MODE, "TrainingImage": spec.image_uri}
    if spec.metric_definitions:
        algorithm["MetricDefinitions"] = [dict(metric) for metric in spec.metric_definitions]
    if _metrics_time_series(spec):
        algorithm["EnableSageMakerMetricsTimeSeries"] = True
    if spec.container_entrypoint:  # Session.get_train_request(container_entry_point=...)
        algorithm["ContainerEntrypoint"] = list(spec.container_entrypoint)
    if spec.container_arguments:  # Session.get_train_request(container_arguments=...)
        algorithm["ContainerArguments"] = list(spec.container_arguments)
    return algorithm


def _stopping_condition(spec: TrainingJobSpec) -> dict[str, Any]:
    max_run = spec.max_run_seconds if spec.max_run_seconds is not None else DEFAULT_MAX_RUN_SECONDS
    stopping: dict[str, Any] = {"MaxRuntimeInSeconds": max_run}
    if spec.use_spot_instances and spec.max_wait_seconds:
        stopping["MaxWaitTimeInSeconds"] = spec.max_wait_seconds
    return stopping


def _optional_members(spec: TrainingJobSpec, code_uri: str | None, region: str) -> dict[str, Any]:
    """The request's members that the SDK sends only when there is something in them, in its order."""
    members: dict[str, Any] = {}
    hyperparameters = _hyperparameters(spec, code_uri, region)
    if hyperparameters:
        members["HyperParameters"] = hyperparameters
    if spec.environment:
        members["Environment"] = dict(spec.environment)
    if spec.subnets and spec.security_group_ids:
        members["VpcConfig"] = {
            "Subnets": list(spec.subnets),
            "SecurityGroupIds": list(spec.security_group_ids),
        }
    if spec.use_spot_instances:
        members["EnableManagedSpotTraining"] = True
    if spec.checkpoint_s3_uri:
        members["CheckpointConfig"] = {"S3Uri": spec.checkpoint_s3_uri}
    return members


def source_location(spec: TrainingJobSpec) -> tuple[str, str]:
    """``(bucket, key)`` where the job's source dir goes: ``<output>/<job>/source/``, then
    ``sourcedir.tar.gz`` in script mode (the key the SDK uploads to, ``EstimatorBase._stage_user_code_in_s3``
    with ``code_location`` = the output path) or ``<code channel>/`` in command mode: a key prefix, under
    which each file of the source dir is one object, so that the channel puts the files themselves in
    the container (no ``tar`` needed there). ``adapters.sagemaker`` uploads there; :func:`source_uri` is
    what the request names."""
    output = parse_s3_uri(spec.output_path)
    leaf = f"{spec.code_channel}/" if spec.code_channel is not None else "sourcedir.tar.gz"
    key = "/".join(part for part in (output.key.strip("/"), spec.job_name, "source", leaf) if part)
    return output.bucket, key


def source_uri(spec: TrainingJobSpec) -> str | None:
    """The ``code_uri`` of :func:`create_training_job_request` for ``spec``; None without a source dir."""
    if not spec.has_source:
        return None
    bucket, key = source_location(spec)
    return f"s3://{bucket}/{key}"


def channels(spec: TrainingJobSpec, code_uri: str | None) -> dict[str, str]:
    """The job's input channels, name -> S3 URI, in request order: the code channel first in command mode."""
    if spec.code_channel is None or code_uri is None:
        return dict(spec.inputs)
    return {spec.code_channel: code_uri, **spec.inputs}


def _check_as_the_sdk_does(spec: TrainingJobSpec) -> None:
    """The SDK's refusals, in the order its constructors make them (so the first one wins alike)."""
    framework = spec.framework
    if framework is not Framework.NONE:
        if spec.entry_point is None:
            raise RequestRefused(f"the {framework.value} estimator needs an entry point")
        _version(spec.framework_version)  # the metrics check parses it first, in every framework
    if bool(spec.subnets) != bool(spec.security_group_ids):  # EstimatorBase.__init__
        raise RequestRefused("When setting up custom VPC, both subnets and security_group_ids must be set")
    if spec.distribution is None or framework is Framework.NONE:
        pass
    elif framework is Framework.MXNET:
        text = spec.framework_version
        if text and text.split(".") < MXNET_LOWEST_DISTRIBUTED:
            raise RequestRefused(
                "The distribution option is valid for only versions "
                f"{'.'.join(MXNET_LOWEST_DISTRIBUTED)} and higher"
            )
    else:
        _check_distribution_for_instance_type(spec.instance_type, spec.distribution)
    version = _version(spec.framework_version)
    if (
        framework is Framework.TENSORFLOW
        and spec.py_version == "py2"
        and version is not None
        and version > Version(TF_HIGHEST_PY2)
    ):
        raise RequestRefused(
            f"Python 2 containers are only available with {TF_HIGHEST_PY2} and lower versions. "
            "Please use a Python 3 container."
        )


def _version(text: str | None) -> Version | None:
    if not text:
        return None
    try:
        return Version(text)
    except InvalidVersion as error:
        raise RequestRefused(str(error)) from error


def _check_distribution_for_instance_type(instance_type: str, distribution: MpiDistribution) -> None:
    """``fw_utils.validate_distribution_for_instance_type``: Trainium takes only torch_distributed."""
    match = _INSTANCE_FAMILY.match(instance_type)
    if match and match[1].startswith("trn"):
        strategy = next(iter(distribution.as_sdk_distribution()))
        raise RequestRefused(
            f"Provided distribution strategy {strategy} is not supported for Trainium instances.\n"
            "Please specify one of the following supported distribution strategies:"
            f" {_TRAINIUM_STRATEGIES} \n"
        )


def _metrics_time_series(spec: TrainingJobSpec) -> bool:
    since = METRICS_SINCE.get(spec.framework)
    version = _version(spec.framework_version)
    return since is not None and version is not None and version >= since


def _channel(name: str, uri: str) -> dict[str, Any]:
    """``job._Job._format_string_uri_input`` + ``inputs.TrainingInput(uri)``: an S3 prefix, replicated."""
    if not uri.startswith("s3://"):
        # The SDK takes file:// for local mode only; no input of this executor is ever local.
        raise RequestRefused(
            f'URI input {uri} must be a valid S3 or FILE URI: must start with "s3://" or "file://"'
        )
    return {
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "ChannelName": name,
    }


def _hyperparameters(spec: TrainingJobSpec, code_uri: str | None, region: str) -> dict[str, str]:
    """The ``HyperParameters`` map; values JSON-encoded in script mode, ``str()``'d without a script."""
    values: dict[str, Any] = dict(spec.hyperparameters)
    if spec.distribution is not None:
        values.update(_mpi_hyperparameters(spec.framework, spec.distribution))
    if spec.entry_point is None:
        # Estimator without entry_point (bring-your-own container, command mode): set_hyperparameters
        # keeps values as given; _get_train_args str()s them.
        return {str(key): str(value) for key, value in values.items()}
    values.update(
        {
            "sagemaker_submit_directory": code_uri,
            "sagemaker_program": spec.entry_point,
            "sagemaker_container_log_level": CONTAINER_LOG_LEVEL,
            "sagemaker_job_name": spec.job_name,
            "sagemaker_region": region,
        }
    )
    if spec.framework is Framework.TENSORFLOW:
        values["model_dir"] = (
            MPI_MOUNTED_MODEL_DIR
            if spec.distribution is not None
            else _s3_path_join(spec.output_path, spec.job_name, "model")
        )
    return {str(key): _json(value) for key, value in values.items()}


def _mpi_hyperparameters(framework: Framework, mpi: MpiDistribution) -> dict[str, Any]:
    """``Framework._distribution_configuration`` (TF, PyTorch), ``MXNet._configure_distribution``, and the
    generic Estimator's hyperparameters (``MpiDistribution.as_hyperparameters``)."""
    if framework is Framework.NONE:
        return mpi.as_hyperparameters()
    values: dict[str, Any] = {"sagemaker_mpi_enabled": True}
    if mpi.processes_per_host:
        values["sagemaker_mpi_num_of_processes_per_host"] = mpi.processes_per_host
        values["sagemaker_mpi_custom_mpi_options"] = mpi.custom_mpi_options
    elif framework is not Framework.MXNET:
        values["sagemaker_mpi_custom_mpi_options"] = mpi.custom_mpi_options
    return values


def _json(value: Any) -> str:
    """``EstimatorBase._json_encode_hyperparameters``: ``json.dumps`` with its defaults (ASCII, ", ")."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as error:
        raise RequestRefused(str(error)) from error


def _s3_path_join(*parts: str) -> str:
    """``sagemaker.s3_utils.s3_path_join`` without ``with_end_slash``: join with one "/" where none is."""
    joined = ""
    for index, part in enumerate(p for p in parts if p):
        if index == 0 or joined.endswith("/") or part.startswith("/"):
            joined += part
        else:
            joined += "/" + part
    return joined
