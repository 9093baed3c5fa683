"""The SageMaker Python SDK 2.x path: a :class:`TrainingJobSpec` becomes an Estimator and ``fit(wait=False)``.

Imported only when ``REQUEST_BUILDER=sdk`` (by ``adapters.sagemaker.SageMakerJobs``) and by the oracle
test, which checks that ``domain.request.create_training_job_request`` sends what this path sends. It
needs the ``sdk`` extra (``pip install 'sagemaker-executor[sdk]'``); the default install has no SDK.

The SDK is configured so that it makes only the call the job needs (FACTS.md): the session has a
default bucket (no STS, no bucket creation), telemetry is opted out through the session's config,
and the role is an ARN already (resolved once at start-up). Two SDK internals are patched for
speed (see :func:`_skip_tensorboard_client` and :func:`_validate_sdk_config_once`).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import boto3

from sagemaker_executor.domain.errors import PermanentError
from sagemaker_executor.domain.request import RequestRefused, channels
from sagemaker_executor.domain.sections import Framework
from sagemaker_executor.domain.translation import TrainingJobSpec

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

# Passed to the SDK session directly (so no config file is read): opts out of the SDK's telemetry,
# which otherwise calls STS and GETs an AWS-hosted URL after every fit (FACTS.md).
SDK_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
INSTALL_HINT = "REQUEST_BUILDER=sdk needs the SageMaker SDK 2.x: pip install 'sagemaker-executor[sdk]'"


def configure_sdk_environment() -> None:
    """Quiet the SDK: no v2 deprecation banner, no config-file log lines. Runs before it is imported."""
    os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
    logging.getLogger("sagemaker.telemetry").setLevel(logging.WARNING)


def _skip_tensorboard_client() -> None:
    """Stop every SDK estimator from building a boto3 client for TensorBoard that we never use.

    ``EstimatorBase.__init__`` creates a ``TensorBoardApp``, whose constructor builds a fresh SageMaker
    client from boto3's *default* session: about 22 ms of CPU per estimator (a new botocore client
    class each time), half of a submission's CPU. Only ``estimator.tensorboard_app`` users need it,
    and this service never touches it.
    """
    import sagemaker.estimator as sdk_estimator

    setattr(sdk_estimator, "TensorBoardApp", _no_tensorboard_app)  # noqa: B010


def _no_tensorboard_app(region: str | None = None) -> None:
    return None


def _validate_sdk_config_once() -> None:
    """Make the SDK validate :data:`SDK_CONFIG` once instead of on every config lookup.

    With any config present, SDK 2.x re-runs a JSON-schema validation of the whole config on each of
    the ~20 lookups a ``fit`` makes: about 1.7 s of CPU per submission, against ~30 ms without it
    (measured with the local SageMaker). The session validates :data:`SDK_CONFIG` when it is created;
    later lookups of that same, never-modified object skip the repeat. Any other config is still
    validated by the SDK as usual.
    """
    import sagemaker.utils as sdk_utils

    original = getattr(sdk_utils, "validate_sagemaker_config")  # noqa: B009 -- not in its __all__
    if getattr(original, "__wrapped_by_sm_executor__", False):
        return

    def validate(sagemaker_config: dict[str, Any] | None = None) -> Any:
        if sagemaker_config is SDK_CONFIG:
            return None
        return original(sagemaker_config)

    validate.__wrapped_by_sm_executor__ = True  # type: ignore[attr-defined]
    setattr(sdk_utils, "validate_sagemaker_config", validate)  # noqa: B010


class SdkEstimatorPath:
    """Starts training jobs through SDK Estimators on a shared boto3 SageMaker ``client``. Thread-safe.

    Raises :class:`PermanentError` naming the ``sdk`` extra when the SDK is not installed.
    """

    def __init__(self, session: boto3.Session, client: SageMakerClient, *, default_bucket: str) -> None:
        configure_sdk_environment()
        try:
            from sagemaker.session import Session  # deferred: slow, and reads the environment set above
        except ImportError as error:
            raise PermanentError(f"{INSTALL_HINT} ({error})") from error
        _validate_sdk_config_once()
        _skip_tensorboard_client()
        # The SDK session only serves estimator construction and CreateTrainingJob on the shared
        # client (the source upload is the caller's), so one session serves every thread.
        self._session = Session(
            boto_session=session,
            sagemaker_client=client,
            default_bucket=default_bucket,
            sagemaker_config=SDK_CONFIG,
        )

    def start(self, spec: TrainingJobSpec, code_uri: str | None) -> None:
        """``Estimator(...).fit(spec.inputs, wait=False)``: one CreateTrainingJob on the shared client.

        ``code_uri`` is where the source dir was uploaded: script mode's archive, handed to the SDK as
        ``source_dir``, which it then uses as it is (no upload), or command mode's code channel prefix,
        the first input. Raises :class:`RequestRefused` for what the SDK refuses to build; botocore's
        errors from the call itself propagate unchanged.
        """
        if spec.has_source and code_uri is None:
            raise RequestRefused("the job needs a source dir but none was uploaded")
        try:
            estimator = self._estimator(spec, code_uri)
        except (ValueError, TypeError, KeyError, AttributeError, RuntimeError) as error:
            # AttributeError: TensorFlow's py2 refusal; RuntimeError: subnets without security groups.
            raise RequestRefused(str(error)) from error
        try:
            estimator.fit(channels(spec, code_uri), wait=False, logs=False, job_name=spec.job_name)
        except (ValueError, TypeError) as error:  # botocore's ClientError is neither
            raise RequestRefused(str(error)) from error

    def _estimator(self, spec: TrainingJobSpec, code_uri: str | None) -> Any:
        from sagemaker.estimator import Estimator

        kwargs = _estimator_kwargs(spec, code_uri, self._session)
        if spec.framework is Framework.NONE:
            return Estimator(**kwargs)
        return _framework_estimator(spec, kwargs)


def _estimator_kwargs(spec: TrainingJobSpec, code_uri: str | None, session: Any) -> dict[str, Any]:
    """The keyword arguments every Estimator of ``spec`` takes, framework or not."""
    kwargs: dict[str, Any] = {
        "image_uri": spec.image_uri,
        "role": spec.role_arn,
        "instance_count": spec.instance_count,
        "instance_type": spec.instance_type,
        "volume_size": spec.volume_size_gb,
        "output_path": spec.output_path,
        "code_location": spec.output_path,
        "sagemaker_session": session,
        "hyperparameters": spec.sdk_hyperparameters,
        "metric_definitions": spec.metric_definitions or None,
        "tags": [{"Key": key, "Value": value} for key, value in spec.tags.items()],
        "subnets": list(spec.subnets) or None,
        "security_group_ids": list(spec.security_group_ids) or None,
        "environment": spec.environment or None,
        # The debugger hook and profiler perturb what a benchmark measures; keep them out.
        "debugger_hook_config": False,
        "disable_profiler": True,
    }
    if spec.max_run_seconds is not None:
        kwargs["max_run"] = spec.max_run_seconds
    if spec.use_spot_instances:
        kwargs["use_spot_instances"] = True
        if spec.max_wait_seconds is not None:
            kwargs["max_wait"] = spec.max_wait_seconds
    if spec.checkpoint_s3_uri:
        kwargs["checkpoint_s3_uri"] = spec.checkpoint_s3_uri
    if spec.container_entrypoint:
        kwargs["container_entry_point"] = list(spec.container_entrypoint)
    if spec.container_arguments:
        kwargs["container_arguments"] = list(spec.container_arguments)
    if spec.entry_point is not None:
        kwargs["entry_point"] = spec.entry_point
        kwargs["source_dir"] = code_uri
    return kwargs


def _framework_estimator(spec: TrainingJobSpec, kwargs: dict[str, Any]) -> Any:
    """The TensorFlow, MXNet or PyTorch estimator of ``spec``, given :func:`_estimator_kwargs`."""
    framework_kwargs: dict[str, Any] = {
        "framework_version": spec.framework_version,
        "py_version": spec.py_version,
    }
    if spec.distribution is not None:
        framework_kwargs["distribution"] = spec.distribution.as_sdk_distribution()
    if spec.framework is Framework.TENSORFLOW:
        from sagemaker.tensorflow.estimator import TensorFlow

        return TensorFlow(**kwargs, **framework_kwargs)
    if spec.framework is Framework.MXNET:
        from sagemaker.mxnet.estimator import MXNet

        return MXNet(**kwargs, **framework_kwargs)
    from sagemaker.pytorch.estimator import PyTorch

    return PyTorch(**kwargs, **framework_kwargs)
