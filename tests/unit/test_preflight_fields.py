"""Issue 13: every way back from a member of the CreateTrainingJob request to what produced it, with the
exact words a user reads (``domain.preflight``). ``test_preflight.py`` follows the issue's cases end to
end; here each tracer's branches, including those only a request the descriptor's own checks would have
refused first can reach (the descriptor checks job names, channel ids, tags and variable names with the
same rules): such a request is built from a planned job and then changed, and checked with
:func:`request_problems`, the function the executor's pre-flight calls."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.preflight import request_problems
from sagemaker_executor.domain.request import create_training_job_request, source_uri
from sagemaker_executor.domain.translation import ExecutorSite
from sagemaker_executor.service.submission import planned_job, preflight_errors
from tests.builders import SITE, fetcher_event, minimal_contents

ACTION = "0b7a8e52-2d4c-4f0e-9a55-6f1c0f7d3a10"
SCRIPTS = ["s3://scripts/anubis0/abc.tar"]
BYOC = {"docker_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/algo:1"}
PYTORCH = {"benchmark_code": "python b.py", "framework": "pytorch", "framework_version": "2.1"}
TENSORFLOW = {"benchmark_code": "python b.py", "framework": "tensorflow", "framework_version": "2.13"}
HOROVOD = {
    "instance_type": "ml.c5.xlarge",
    "strategy": "horovod",
    "distributed": {"num_instances": 2, "processes_per_instance": "2"},
}
LONG = "x" * 2501  # over HyperParameterValue's 2500 characters
TOO_LONG = "SageMaker accepts at most 2500 characters, got 2501"


def _dataset(index: int, dst: str | None = None) -> dict[str, Any]:
    return {"src": f"s3://data/d{index}", "path": f"/d{index}", "dst": dst or f"s3://fetched/d{index}"}


def _sources(count: int) -> dict[str, Any]:
    return {"sources": [{"src": f"s3://data/d{i}", "path": f"/d{i}"} for i in range(count)]}


def problems(
    change: Callable[[dict[str, Any]], None], contents: dict[str, Any] | None = None, **event: Any
) -> list[str]:
    """The problems of the request planned for ``contents`` once ``change`` has changed it."""
    contents = contents or minimal_contents()
    raw = fetcher_event(contents, action_id=ACTION, scripts=SCRIPTS if contents.get("ml") else [], **event)
    spec = planned_job(raw, SITE)
    request = copy.deepcopy(create_training_job_request(spec, source_uri(spec), SITE.region))
    change(request)
    return [str(p) for p in request_problems(request, spec, FetcherBenchmarkEvent.model_validate(raw))]


def _set(*path: Any, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        target = request
        for part in path[:-1]:
            target = target.setdefault(part, {}) if isinstance(part, str) else target[part]
        target[path[-1]] = value

    return change


def _append_tag(key: str, value: str) -> Callable[[dict[str, Any]], None]:
    def change(request: dict[str, Any]) -> None:
        request["Tags"].append({"Key": key, "Value": value})

    return change


# ------------------------------------------------------------------ through the submit client's check


@pytest.mark.parametrize(
    ("contents", "event", "expected"),
    [
        pytest.param(
            minimal_contents(data=_sources(2)),
            {"datasets": [_dataset(0, "s3://x/" + "y" * 1100), _dataset(1)]},
            "event field 'payload.datasets[0].dst': SageMaker accepts at most 1024 characters, got 1107",
            id="a dataset's destination, behind the code channel",
        ),
        pytest.param(
            minimal_contents(ml=None, env=BYOC, data=_sources(2)),
            {"datasets": [_dataset(0), _dataset(1, "s3://x/" + "y" * 1100)]},
            "event field 'payload.datasets[1].dst': SageMaker accepts at most 1024 characters, got 1107",
            id="a dataset's destination, no code channel",
        ),
        pytest.param(
            minimal_contents(ml=None, env=BYOC, data=_sources(21)),
            {"datasets": [_dataset(i) for i in range(21)]},
            "descriptor field 'data.sources': SageMaker accepts at most 20 input channels "
            "(one per data source), got 21",
            id="too many sources, no code channel",
        ),
        pytest.param(
            minimal_contents(ml=None, env={**BYOC, "vars": {"GOOD": "x" * 600}}),
            {},
            "descriptor field 'env.vars.GOOD': SageMaker accepts at most 512 characters, got 600",
            id="a variable's value",
        ),
    ],
)
def test_what_the_user_reads(contents: dict[str, Any], event: dict[str, Any], expected: str) -> None:
    raw = fetcher_event(contents, scripts=SCRIPTS if contents.get("ml") else [], **event)
    assert preflight_errors(raw, SITE) == [f"Cannot process the request: {expected}"]


@pytest.mark.parametrize(
    ("site_changes", "expected"),
    [
        (
            {"role_arn": "arn:aws:iam::123:role/short"},
            "setting SAGEMAKER_ROLE: SageMaker accepts only text matching the pattern "
            r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+, got 'arn:aws:iam::123:role/short'",
        ),
        (
            {"subnets": ("subnet-1",) * 17, "security_group_ids": ("sg-1",)},
            "setting SAGEMAKER_SUBNETS: SageMaker accepts at most 16 subnets, got 17",
        ),
        (
            {"subnets": ("subnet-1",), "security_group_ids": ("sg-1",) * 6},
            "setting SAGEMAKER_SECURITY_GROUP_IDS: SageMaker accepts at most 5 security groups, got 6",
        ),
    ],
)
def test_settings_with_their_limits(site_changes: dict[str, Any], expected: str) -> None:
    site = ExecutorSite(**{**SITE.__dict__, **site_changes})
    assert preflight_errors(fetcher_event(minimal_contents(ml=None)), site) == [
        f"Cannot process the request: {expected}"
    ]


# ------------------------------------------------------------------ requests changed after planning


OWN_TAGS = " (the executor's own 2 included: anubis-action-id, anubis-client-id)"


@pytest.mark.parametrize(
    ("change", "contents", "expected"),
    [
        pytest.param(
            _set("TrainingJobName", value="j" * 64),
            None,
            "event field 'action_id': SageMaker accepts at most 63 characters, got 64",
            id="job name from the action id",
        ),
        pytest.param(
            _set("TrainingJobName", value="j" * 64),
            minimal_contents(custom_params={"sagemaker_job_name": "mine"}),
            "descriptor field 'custom_params.sagemaker_job_name': SageMaker accepts at most 63 "
            "characters, got 64",
            id="custom job name",
        ),
        pytest.param(
            _set("AlgorithmSpecification", "TrainingImage", value="i" * 256),
            None,
            "descriptor field 'env.docker_image': SageMaker accepts at most 255 characters, got 256",
            id="image",
        ),
        pytest.param(
            _set("AlgorithmSpecification", "MetricDefinitions", value=[{"Name": "m", "Regex": "r"}] * 41),
            None,
            "descriptor field 'output.metrics': SageMaker accepts at most 40 metrics, got 41",
            id="metrics",
        ),
        pytest.param(
            _set(
                "AlgorithmSpecification",
                "MetricDefinitions",
                value=[{"Name": "m", "Regex": "r"}, {"Name": "", "Regex": "r"}],
            ),
            None,
            "descriptor field 'output.metrics[1].name': SageMaker does not accept an empty value",
            id="metric name",
        ),
        pytest.param(
            _set("AlgorithmSpecification", "MetricDefinitions", value=[{"Name": "m", "Regex": "r" * 501}]),
            None,
            "descriptor field 'output.metrics[0].pattern': SageMaker accepts at most 500 characters, got 501",
            id="metric pattern",
        ),
        pytest.param(
            _set("AlgorithmSpecification", "ContainerArguments", value=["a"] * 101),
            None,
            "descriptor field 'ml.args': SageMaker accepts at most 100 arguments, got 101",
            id="arguments",
        ),
        pytest.param(
            _set("AlgorithmSpecification", "ContainerArguments", value=["a", "b" * 257]),
            None,
            "descriptor field 'ml.args': its argument 2: SageMaker accepts at most 256 characters, got 257",
            id="argument",
        ),
        pytest.param(
            _set("InputDataConfig", 0, "DataSource", "S3DataSource", "S3Uri", value="s3://b/" + "k" * 1100),
            None,
            "setting SAGEMAKER_OUTPUT_BUCKET: in the code channel's location: "
            "SageMaker accepts at most 1024 characters, got 1107",
            id="code channel",
        ),
        pytest.param(
            _set("ResourceConfig", "InstanceType", value=5),
            None,
            "descriptor field 'hardware.instance_type': SageMaker expects a string, got int",
            id="instance type",
        ),
        pytest.param(
            _set("ResourceConfig", "InstanceCount", value=2**31),
            None,
            "descriptor field 'hardware.distributed.num_instances': "
            "SageMaker accepts at most 2147483647 (the field is a 32-bit integer), got 2147483648",
            id="instance count",
        ),
        pytest.param(
            _set("ResourceConfig", "VolumeSizeInGB", value=2**31),
            None,
            "the executor's own request field 'resourceConfig.volumeSizeInGB': the training volume in GB "
            "estimated from it: SageMaker accepts at most 2147483647 (the field is a 32-bit integer), "
            "got 2147483648",
            id="volume with no dataset size",
        ),
        pytest.param(
            _set("Environment", value={f"V{i}": "" for i in range(101)}),
            None,
            "descriptor field 'env.vars': SageMaker accepts at most 100 variables, got 101",
            id="variables",
        ),
        pytest.param(
            _set("Environment", "1BAD", value="x"),
            None,
            "descriptor field 'env.vars.1BAD': its name: SageMaker accepts only text matching the pattern "
            "[a-zA-Z_][a-zA-Z0-9_]*, got '1BAD'",
            id="variable name",
        ),
        pytest.param(
            _set("Tags", 1, "Value", value="client!"),
            None,
            "event field 'client_id': copied into the tag anubis-client-id: SageMaker accepts only text "
            r"matching the pattern ([\p{L}\p{Z}\p{N}_.:/=+\-@]*) ('!' is not allowed), got 'client!'",
            id="the executor's own tag",
        ),
        pytest.param(
            _append_tag("team!", "v"),
            None,
            "descriptor field 'custom_params.tags['team!']': its key: SageMaker accepts only text matching "
            r"the pattern ([\p{L}\p{Z}\p{N}_.:/=+\-@]*) ('!' is not allowed), got 'team!'",
            id="a tag's key",
        ),
        pytest.param(
            _append_tag("team", "v" * 257),
            None,
            "descriptor field 'custom_params.tags.team': its value: SageMaker accepts at most 256 "
            "characters, "
            "got 257",
            id="a tag's value",
        ),
        pytest.param(
            _set(
                "Tags",
                value=[{"Key": f"t{i}", "Value": ""} for i in range(49)]
                + [{"Key": "anubis-action-id", "Value": "a"}, {"Key": "anubis-client-id", "Value": "c"}],
            ),
            None,
            "descriptor field 'custom_params.tags': SageMaker accepts at most 50 tags, got 51" + OWN_TAGS,
            id="tags",
        ),
        pytest.param(
            _set("OutputDataConfig", "S3OutputPath", value="s3://b/" + "k" * 1100),
            None,
            "setting SAGEMAKER_OUTPUT_BUCKET: SageMaker accepts at most 1024 characters, got 1107",
            id="output path",
        ),
        pytest.param(
            _set("OutputDataConfig", "KmsKeyId", value="key!"),
            None,
            "the executor's own request field 'outputDataConfig.kmsKeyId': SageMaker accepts only text "
            "matching the pattern [a-zA-Z0-9:/_-]* ('!' is not allowed), got 'key!'",
            id="a member no descriptor field gives",
        ),
        pytest.param(
            _set("AlgorithmSpecification", "ContainerEntrypoint", value=["sh"] * 101),
            None,
            "the executor's own request field 'algorithmSpecification.containerEntrypoint': "
            "SageMaker accepts at most 100 entries, got 101",
            id="a list the executor fills",
        ),
        pytest.param(
            _set("ProfilerConfig", "ProfilingParameters", value={"k" * 257: "v"}),
            None,
            "the executor's own request field 'profilerConfig.profilingParameters': "
            "SageMaker accepts at most 256 characters, got 257",
            id="a member no tracer knows",
        ),
        pytest.param(
            _set("CheckpointConfig", "S3Uri", value="s3://b/" + "k" * 1100),
            None,
            "descriptor field 'custom_params.checkpoint_s3_uri': SageMaker accepts at most 1024 characters, "
            "got 1107",
            id="checkpoint",
        ),
        pytest.param(
            _set("CheckpointConfig", value={"S3Uri": "s3://b/k", "LocalPath": "p" * 4097}),
            None,
            "the executor's own request field 'checkpointConfig.localPath': SageMaker accepts at most 4096 "
            "characters, got 4097",
            id="checkpoint's local path",
        ),
        pytest.param(
            _set("EnableManagedSpotTraining", value="yes"),
            None,
            "descriptor field 'custom_params.use_spot_instances': SageMaker expects a boolean, got str",
            id="spot",
        ),
        pytest.param(
            _set("VpcConfig", value={"Subnets": ["s_1"], "SecurityGroupIds": ["sg-1"]}),
            None,
            "setting SAGEMAKER_SUBNETS: SageMaker accepts only text matching the pattern [-0-9a-zA-Z]+ "
            "('_' is not allowed), got 's_1'",
            id="a subnet",
        ),
    ],
)
def test_each_member_is_traced_to_its_source(
    change: Callable[[dict[str, Any]], None], contents: dict[str, Any] | None, expected: str
) -> None:
    assert problems(change, contents) == [expected]


@pytest.mark.parametrize(
    ("key", "contents", "source"),
    [
        ("lr", minimal_contents(ml=PYTORCH), "descriptor field 'custom_params.hyper_params.lr': "),
        (
            "model_dir",
            minimal_contents(ml=PYTORCH),
            "descriptor field 'custom_params.hyper_params.model_dir': ",
        ),
        (
            "model_dir",
            minimal_contents(ml=TENSORFLOW),
            "setting SAGEMAKER_OUTPUT_BUCKET: becomes the hyperparameter model_dir: ",
        ),
        (
            "sagemaker_submit_directory",
            minimal_contents(ml=PYTORCH),
            "setting SAGEMAKER_OUTPUT_BUCKET: becomes the hyperparameter sagemaker_submit_directory: ",
        ),
        (
            "sagemaker_job_name",
            minimal_contents(ml=PYTORCH),
            "event field 'action_id': becomes the hyperparameter sagemaker_job_name: ",
        ),
        (
            "sagemaker_mpi_custom_mpi_options",
            minimal_contents(ml=PYTORCH, hardware=HOROVOD),
            "descriptor field 'custom_params.custom_mpi_options': "
            "becomes the hyperparameter sagemaker_mpi_custom_mpi_options: ",
        ),
        (
            "sagemaker_mpi_num_of_processes_per_host",
            minimal_contents(ml=PYTORCH, hardware=HOROVOD),
            "descriptor field 'hardware.distributed.processes_per_instance': "
            "becomes the hyperparameter sagemaker_mpi_num_of_processes_per_host: ",
        ),
        (
            "sagemaker_program",
            minimal_contents(ml=PYTORCH),
            "the executor's own hyperparameter 'sagemaker_program': ",
        ),
    ],
)
def test_each_hyperparameter_is_traced_to_its_source(key: str, contents: dict[str, Any], source: str) -> None:
    params = contents.setdefault("custom_params", {})
    if key in ("lr", "model_dir"):
        params["hyper_params"] = {key: 1}
    assert problems(_set("HyperParameters", key, value=LONG), contents) == [source + TOO_LONG]


def test_a_hyperparameters_name() -> None:
    contents = minimal_contents(ml=PYTORCH, custom_params={"hyper_params": {"lr": 1}})
    found = problems(_set("HyperParameters", "k" * 257, value="1"), contents)
    assert found == [
        "the executor's own hyperparameter '" + "k" * 257 + "': its name: "
        "SageMaker accepts at most 256 characters, got 257"
    ]


def test_hyperparameters_counted_with_and_without_the_executors_own() -> None:
    contents = minimal_contents(ml=PYTORCH, custom_params={"hyper_params": {f"h{i}": i for i in range(95)}})
    assert problems(_set("HyperParameters", "h95", value="1"), contents) == [
        "descriptor field 'custom_params.hyper_params': SageMaker accepts at most 100 "
        "hyperparameters, got 101 "
        "(6 of them the executor's own)"
    ]
    command_mode = minimal_contents(custom_params={"hyper_params": {f"h{i}": i for i in range(101)}})
    assert preflight_errors(fetcher_event(command_mode, scripts=SCRIPTS), SITE) == [
        "Cannot process the request: descriptor field 'custom_params.hyper_params': "
        "SageMaker accepts at most 100 hyperparameters, got 101"
    ]


def test_a_channel_name_with_and_without_the_code_channel() -> None:
    datasets = [_dataset(0), _dataset(1)]
    bad_name = _set("InputDataConfig", 1, "ChannelName", value="c" * 65)
    reason = "becomes a channel name: SageMaker accepts at most 64 characters, got 65"
    behind_code = problems(bad_name, minimal_contents(data=_sources(2)), datasets=datasets)
    assert behind_code == [f"descriptor field 'data.sources[0].id': {reason}"]
    own_image = minimal_contents(ml=None, env=BYOC, data=_sources(2))
    assert problems(bad_name, own_image, datasets=datasets) == [
        f"descriptor field 'data.sources[1].id': {reason}"
    ]


def test_the_wait_without_spot_and_the_run_it_is_measured_against() -> None:
    contents = minimal_contents(custom_params={"max_run_seconds": 600})
    assert problems(_set("StoppingCondition", "MaxWaitTimeInSeconds", value=300), contents) == [
        "descriptor field 'custom_params.max_wait_seconds': is only allowed with use_spot_instances = true"
    ]

    def spot_without_run(request: dict[str, Any]) -> None:
        request["EnableManagedSpotTraining"] = True
        del request["StoppingCondition"]["MaxRuntimeInSeconds"]

    assert problems(spot_without_run, contents) == [
        "descriptor field 'custom_params.max_wait_seconds': SageMaker requires it with use_spot_instances = "
        "true: how long to wait for spot capacity plus the run time"
    ]
