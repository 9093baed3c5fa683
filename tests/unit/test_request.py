"""``domain.request``: the SDK 2.x rules the CreateTrainingJob request follows, one table row each.

The oracle (``tests/component/test_request_oracle.py``) proves equality with the SDK on generated
descriptors; these pin each rule by name, including those no valid descriptor reaches.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from sagemaker_executor.domain.descriptor import parse_descriptor
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.request import RequestRefused, create_training_job_request
from sagemaker_executor.domain.sections import Framework
from sagemaker_executor.domain.translation import MpiDistribution, TrainingJobSpec, translate
from tests.builders import SITE, fetcher_event, minimal_contents

REGION = "eu-west-1"
CODE = "s3://sm-output/job/source/sourcedir.tar.gz"
CODE_PREFIX = "s3://sm-output/job/source/anubis_code/"
BYOC = {"args": "--epochs 2"}  # no benchmark_code: the image's own entrypoint runs
HOROVOD = {
    "instance_type": "ml.p3.16xlarge",
    "strategy": "horovod",
    "distributed": {"num_instances": 2, "processes_per_instance": "4"},
}


def spec_for(**sections: Any) -> TrainingJobSpec:
    contents = minimal_contents(**sections)
    event = fetcher_event(contents, action_id="job")
    return translate(parse_descriptor(contents), FetcherBenchmarkEvent.model_validate(event), SITE)


def framework_ml(framework: str, version: str | None) -> dict[str, Any]:
    ml: dict[str, Any] = {"benchmark_code": "python b.py", "framework": framework}
    if version is not None:
        ml["framework_version"] = version
    return ml


def request_for(spec: TrainingJobSpec, code_uri: str | None = CODE) -> dict[str, Any]:
    return create_training_job_request(spec, code_uri, REGION)


def test_script_mode_defaults_as_the_sdk_sends_them() -> None:
    request = request_for(spec_for(ml=framework_ml("pytorch", "1.2")))

    assert request == {
        "TrainingJobName": "job",
        "AlgorithmSpecification": {
            "TrainingInputMode": "File",
            "TrainingImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/bench:1",
        },
        "RoleArn": SITE.role_arn,
        "InputDataConfig": [
            {
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": SITE.nodata_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ChannelName": "src0",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://sm-output"},
        "ResourceConfig": {"VolumeSizeInGB": 30, "InstanceCount": 1, "InstanceType": "ml.c5.xlarge"},
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "Tags": [
            {"Key": "anubis-action-id", "Value": "job"},
            {"Key": "anubis-client-id", "Value": "ca2f097889997d8200b9abc2f8d2ec822246845e"},
        ],
        "ProfilerConfig": {"DisableProfiler": True},
        "HyperParameters": {
            "sagemaker_submit_directory": json.dumps(CODE),
            "sagemaker_program": '"anubis_entry.py"',
            "sagemaker_container_log_level": "20",
            "sagemaker_job_name": '"job"',
            "sagemaker_region": '"eu-west-1"',
        },
    }


def test_command_mode_sends_the_bootstrap_entrypoint_and_the_code_channel_first() -> None:
    spec = spec_for(env={"docker_image": "python:3-alpine", "vars": {"A": "1"}})
    request = request_for(spec, CODE_PREFIX)

    assert request["AlgorithmSpecification"] == {
        "TrainingInputMode": "File",
        "TrainingImage": "python:3-alpine",
        "ContainerEntrypoint": ["sh", "/opt/ml/input/data/anubis_code/bootstrap.sh"],
    }
    assert [c["ChannelName"] for c in request["InputDataConfig"]] == ["anubis_code"]  # no no-data channel
    assert request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == CODE_PREFIX
    assert request["Environment"] == {"A": "1"}
    assert "HyperParameters" not in request  # no toolkit, no sagemaker_* keys


@pytest.mark.parametrize(
    ("framework", "version", "metrics"),
    [
        ("tensorflow", "1.14", False),
        ("tensorflow", "1.15", True),
        ("tensorflow", "1.15.0rc1", False),  # PEP 440: a pre-release sorts before its release
        ("tensorflow", None, False),
        ("pytorch", "1.2", False),
        ("pytorch", "1.3", True),
        ("mxnet", "1.5", False),
        ("mxnet", "1.6", True),
    ],
)
def test_metrics_time_series_follow_each_frameworks_version_threshold(
    framework: str, version: str | None, metrics: bool
) -> None:
    algorithm = request_for(spec_for(ml=framework_ml(framework, version)))["AlgorithmSpecification"]

    assert algorithm.get("EnableSageMakerMetricsTimeSeries", False) is metrics
    assert algorithm["TrainingImage"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/bench:1"


def test_values_are_json_encoded_in_script_mode_and_str_without_a_script() -> None:
    params = {"hyper_params": {"lr": 0.1, "name": "fast", "on": True, "layers": [1, 2], "café": "é"}}
    script = request_for(spec_for(ml=framework_ml("pytorch", "2.1"), custom_params=params))["HyperParameters"]
    byoc = request_for(spec_for(ml=None, custom_params=params), None)["HyperParameters"]
    command = request_for(spec_for(custom_params=params), CODE_PREFIX)["HyperParameters"]

    assert {k: script[k] for k in params["hyper_params"]} == {
        "lr": "0.1",
        "name": '"fast"',
        "on": "true",
        "layers": "[1, 2]",
        "café": '"\\u00e9"',
    }
    assert byoc == {"lr": "0.1", "name": "fast", "on": "True", "layers": "[1, 2]", "café": "é"}
    assert command == byoc


def test_tensorflow_model_dir_replaces_the_users_and_is_local_under_mpi() -> None:
    params = {"hyper_params": {"model_dir": "mine"}}
    single = request_for(spec_for(ml=framework_ml("tensorflow", "2.14"), custom_params=params))
    mpi = request_for(spec_for(ml=framework_ml("tensorflow", "2.14"), hardware=HOROVOD))
    pytorch = request_for(spec_for(ml=framework_ml("pytorch", "2.1"), custom_params=params))

    assert single["HyperParameters"]["model_dir"] == '"s3://sm-output/job/model"'
    assert mpi["HyperParameters"]["model_dir"] == '"/opt/ml/model"'
    assert pytorch["HyperParameters"]["model_dir"] == '"mine"'


@pytest.mark.parametrize("framework", ["", "tensorflow", "pytorch", "mxnet"])
def test_mpi_is_three_hyperparameters_for_every_framework(framework: str) -> None:
    ml = framework_ml(framework, "1.9.0") if framework else BYOC
    spec = spec_for(hardware=HOROVOD, ml=ml)

    hyperparameters = request_for(spec)["HyperParameters"]

    # Without an entry point (the image's own program) values are str()'d, not JSON: as the SDK does.
    encode = json.dumps if framework else str
    assert {k: v for k, v in hyperparameters.items() if k.startswith("sagemaker_mpi")} == {
        "sagemaker_mpi_enabled": encode(True),
        "sagemaker_mpi_num_of_processes_per_host": "4",
        "sagemaker_mpi_custom_mpi_options": encode(spec.distribution.custom_mpi_options),  # type: ignore[union-attr]
    }


@pytest.mark.parametrize(
    ("framework", "options"), [("mxnet", False), ("pytorch", True), ("tensorflow", True)]
)
def test_without_a_process_count_only_mxnet_drops_the_mpi_options(framework: str, options: bool) -> None:
    spec = dataclasses.replace(
        spec_for(ml=framework_ml(framework, "1.9.0"), hardware=HOROVOD),
        distribution=MpiDistribution(0, "-x A"),
    )

    hyperparameters = request_for(spec)["HyperParameters"]

    assert "sagemaker_mpi_num_of_processes_per_host" not in hyperparameters
    assert ("sagemaker_mpi_custom_mpi_options" in hyperparameters) is options


def test_spot_checkpoint_environment_vpc_and_metrics_fields() -> None:
    spec = dataclasses.replace(
        spec_for(
            custom_params={
                "max_run_seconds": 60,
                "use_spot_instances": True,
                "max_wait_seconds": 120,
                "checkpoint_s3_uri": "s3://ckpt/x",
            },
            output={"metrics": [{"name": "m", "units": "u", "pattern": "m=(.*)"}]},
        ),
        environment={"A": "1"},
        subnets=("subnet-1",),
        security_group_ids=("sg-1", "sg-2"),
    )

    request = request_for(spec)

    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 60, "MaxWaitTimeInSeconds": 120}
    assert request["EnableManagedSpotTraining"] is True
    assert request["CheckpointConfig"] == {"S3Uri": "s3://ckpt/x"}
    assert request["Environment"] == {"A": "1"}
    assert request["VpcConfig"] == {"Subnets": ["subnet-1"], "SecurityGroupIds": ["sg-1", "sg-2"]}
    assert request["AlgorithmSpecification"]["MetricDefinitions"] == [{"Name": "m", "Regex": "m=(.*)"}]
    assert not {"DebugHookConfig", "RetryStrategy", "EnableNetworkIsolation"} & set(request)


def test_max_wait_without_spot_is_not_sent() -> None:
    spec = dataclasses.replace(spec_for(), max_wait_seconds=120)

    assert request_for(spec)["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ml": framework_ml("pytorch", "latest")}, "Invalid version: 'latest'"),
        (
            {"ml": framework_ml("tensorflow", "2.2"), "custom_params": {"python_version": "py2"}},
            "Python 2 containers are only available with 2.1.1 and lower versions",
        ),
        (
            {"ml": framework_ml("mxnet", "1.10"), "hardware": HOROVOD},
            "The distribution option is valid for only versions 1.3 and higher",
        ),
        (
            {
                "ml": framework_ml("tensorflow", "2.14"),
                "hardware": {**HOROVOD, "instance_type": "ml.trn1.32xlarge"},
            },
            "Provided distribution strategy mpi is not supported for Trainium instances",
        ),
    ],
)
def test_what_the_sdk_refuses_is_refused_with_its_words(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestRefused) as refused:
        request_for(spec_for(**change))

    assert str(refused.value).startswith(f"Cannot create estimator: {message}")


@pytest.mark.parametrize(
    ("change", "code_uri"),
    [
        ({"subnets": ("subnet-1",)}, CODE),
        ({"framework": Framework.PYTORCH, "entry_point": None}, None),
        ({}, None),  # command mode without its code channel
        ({"code_channel": None, "entry_point": "x.py"}, None),
    ],
)
def test_specs_no_translation_makes_are_refused_too(change: dict[str, Any], code_uri: str | None) -> None:
    with pytest.raises(RequestRefused):
        request_for(dataclasses.replace(spec_for(), **change), code_uri)


def test_generic_estimator_and_mxnet_take_mpi_on_trainium() -> None:
    trainium = {**HOROVOD, "instance_type": "ml.trn1.32xlarge"}

    assert (
        request_for(spec_for(hardware=trainium, ml=BYOC))["HyperParameters"]["sagemaker_mpi_enabled"]
        == "True"
    )
    assert request_for(spec_for(hardware=trainium, ml=framework_ml("mxnet", "1.9.0")))["HyperParameters"]
