"""What a user reads and what SageMaker is sent, where mutation testing (issue 13) found it unchecked.

Each test pins a rule by its whole effect: the full ERROR text naming the descriptor field, whether a
descriptor or requirement line is accepted, the request's S3 URIs, MPI hyperparameters and the SDK's
``distribution=``, the processes per host, the field an oversized event is blamed on, and the status
messages of a job in an unknown state, failed without a reason or finished with its times.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from sagemaker_executor.domain.descriptor import (
    check_sagemaker_support,
    parse_descriptor,
    parse_descriptor_toml,
)
from sagemaker_executor.domain.entrypoint import render_entry_files
from sagemaker_executor.domain.errors import DescriptorError
from sagemaker_executor.domain.events import Status
from sagemaker_executor.domain.lifecycle import JobState, Report, report_for
from sagemaker_executor.domain.limits import json_size, largest_field
from sagemaker_executor.domain.request import RequestRefused
from sagemaker_executor.domain.translation import DEFAULT_MPI_OPTIONS, MpiDistribution
from tests.builders import minimal_contents
from tests.unit.test_request import BYOC, HOROVOD, framework_ml, request_for, spec_for

ENGINE = {"description": "d", "execution_engine": "aws.sagemaker"}
_SERVER: dict[str, Any] = {
    "hardware": {"instance_type": "ml.c5.xlarge"},
    "env": {"docker_image": "srv", "ports": [8080], "start_command": "serve"},
}


def _inference(**server_env: Any) -> dict[str, Any]:
    server = copy.deepcopy(_SERVER)
    server["env"].update(server_env)
    return minimal_contents(
        hardware={"instance_type": "ml.c5.xlarge", "strategy": "inference"}, server=server
    )


def _refusal(contents: Any) -> str:
    with pytest.raises(DescriptorError) as refused:
        check_sagemaker_support(parse_descriptor(contents))
    return str(refused.value)


# ---------------------------------------------------------------- the descriptor's ERROR texts

ERRORS: list[tuple[str, Any, str]] = [
    (
        "NUL in an env var value",
        minimal_contents(env={"docker_image": "i", "vars": {"A": "x\0y"}}),
        "descriptor field 'env.vars.A': must not contain a NUL character",
    ),
    (
        "NUL in a server env var value",
        _inference(vars={"B": "\0"}),
        "descriptor field 'server.env.vars.B': must not contain a NUL character",
    ),
    (
        "env var name",
        minimal_contents(env={"docker_image": "i", "vars": {"1A": "x"}}),
        "descriptor field 'env.vars.1A': variable name '1A' (str) must be letters, digits and '_', "
        "not starting with a digit",
    ),
    (
        "tag key too long",
        minimal_contents(custom_params={"tags": {"k" * 129: "v"}}),
        "descriptor field 'custom_params.tags['" + "k" * 27 + "..." + "k" * 28 + "']': "  # abbreviated
        "tag key: SageMaker accepts at most 128 characters, got 129",
    ),
    (
        "reserved tag prefix",
        minimal_contents(custom_params={"tags": {"aws:x": "v"}}),
        "descriptor field 'custom_params.tags['aws:x']': tag key 'aws:x' (str) uses a reserved prefix "
        "('aws:' or 'anubis-')",
    ),
    (
        "a table key that is no string",
        minimal_contents(info={**ENGINE, 5: "x"}),
        "descriptor field 'info[5]': keys must be strings, got 5 (int)",
    ),
    (
        "a label key that is no string",
        minimal_contents(info={**ENGINE, "labels": {7: "x"}}),
        "descriptor field 'info.labels[7]': key must be a string, got 7 (int)",
    ),
    (
        "a None label key is shown as None, not as the text 'None'",
        minimal_contents(info={**ENGINE, "labels": {None: "x"}}),
        "descriptor field 'info.labels.None': key must be a string, got None (NoneType)",
    ),
    (
        "a bytes key is shown as bytes",
        minimal_contents(custom_params={"hyper_params": {b"lr": 1}}),
        "descriptor field 'custom_params.hyper_params[\"b'lr'\"]': key must be a string, got b'lr' (bytes)",
    ),
    (
        "missing key",
        minimal_contents(hardware={"strategy": "single_node"}),
        "descriptor field 'hardware.instance_type': is required",
    ),
    (
        "an integer field's both bounds",
        _inference(readiness_probe={"path": "/", "port": "80"}),
        "descriptor field 'server.env.readiness_probe.port': must be an integer >= 1 and <= 65535, "
        "got '80' (str)",
    ),
    (
        "an integer with no bounds",
        _inference(ports=["80"]),
        "descriptor field 'server.env.ports[0]': must be an integer, got '80' (str)",
    ),
    (
        "over the upper bound",
        _inference(readiness_probe={"path": "/", "port": 70000}),
        "descriptor field 'server.env.readiness_probe.port': must be <= 65535, got 70000 (int)",
    ),
    (
        "the first problem in document order, across array entries",
        # sources[1]'s problem is in its first key, sources[0]'s in its third: sources[0] comes first.
        minimal_contents(
            data={"sources": [{"src": "s3://b/k", "path": "/p", "md5": 5}, {"src": 7, "path": "/p"}]}
        ),
        "descriptor field 'data.sources[0].md5': must be a string, got 5 (int)",
    ),
    (
        "an unknown size of a GPU family lists the known ones by size",
        minimal_contents(
            hardware={
                "instance_type": "ml.g5.3xlarge",
                "strategy": "horovod",
                "distributed": {"processes_per_instance": "gpus"},
            }
        ),
        "descriptor field 'hardware.instance_type': ml.g5.3xlarge is not a known size of 'ml.g5' "
        "(known: xlarge, 2xlarge, 4xlarge, 8xlarge, 12xlarge, 16xlarge, 24xlarge, 48xlarge)",
    ),
]


@pytest.mark.parametrize(("contents", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_the_error_names_the_field_and_says_exactly_why(contents: Any, message: str) -> None:
    assert _refusal(contents) == message


def test_invalid_toml_is_a_root_error_with_the_parsers_words() -> None:
    text = "a = 1\na = 2"
    with pytest.raises(tomllib.TOMLDecodeError) as parser:
        tomllib.loads(text)
    with pytest.raises(DescriptorError) as refused:
        parse_descriptor_toml(text)
    assert refused.value.field == "<root>"
    assert str(refused.value) == f"descriptor field '<root>': not valid TOML: {parser.value}"


# ---------------------------------------------------------------- requirement lines


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("-e .", "must start with a letter or digit (a project name or URL)"),
        ("é", "must start with a letter or digit (a project name or URL)"),
        ("numpy\x0b", "must be a single line without control characters"),
        ("numpy --pre", "must not contain pip options (tokens starting with '-')"),
        ("numpy \\", "must not end with '\\' (a pip line continuation)"),
        ("numpy \\ ", "must not end with '\\' (a pip line continuation)"),  # blanks after it too
    ],
)
def test_a_requirement_line_is_refused_with_its_rule(line: str, reason: str) -> None:
    contents = minimal_contents(custom_params={"requirements": ["numpy", line]})
    assert (
        _refusal(contents)
        == f"descriptor field 'custom_params.requirements[1]': {reason}, got {line!r} (str)"
    )


@pytest.mark.parametrize("line", ["x==1.0", "a>=2", "q", "zé>=1", "h5py[hdf5]; python_version >= '3.8'"])
def test_only_the_first_character_must_be_an_ascii_letter_or_digit(line: str) -> None:
    descriptor = parse_descriptor(minimal_contents(custom_params={"requirements": [line]}))
    assert descriptor.custom_params is not None and descriptor.custom_params.requirements == [line]


# ---------------------------------------------------------------- ml.args and the entry script


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--x a\0b", "descriptor field 'ml.args': contains a NUL character, which no argument can hold"),
        (
            "--name 'unbalanced",
            "descriptor field 'ml.args': cannot be split into arguments as the Kubernetes executor does: "
            "No closing quotation",
        ),
    ],
)
def test_ml_args_that_cannot_be_arguments_are_refused(args: str, message: str) -> None:
    with pytest.raises(DescriptorError) as refused:
        spec_for(ml={"args": args})
    assert str(refused.value) == message


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"A-B": "1"},
            "descriptor field 'env.vars.A-B': is not a valid environment variable name "
            "(letters, digits and '_', not starting with a digit)",
        ),
        (
            {"A": "1\x002"},
            "descriptor field 'env.vars.A': contains a NUL character, which no environment can hold",
        ),
    ],
)
def test_the_entry_script_refuses_what_no_environment_can_carry(env: dict[str, str], message: str) -> None:
    # The descriptor refuses both first; render_entry_files says so on its own for any other caller.
    with pytest.raises(DescriptorError) as refused:
        render_entry_files("python bench.py", env)
    assert str(refused.value) == message


# ---------------------------------------------------------------- the request and the SDK's distribution


def test_horovod_without_a_distributed_table_runs_one_process_per_host() -> None:
    spec = spec_for(hardware={"instance_type": "ml.p3.16xlarge", "strategy": "horovod"}, ml=BYOC)
    assert spec.distribution is not None and spec.distribution.processes_per_host == 1
    assert request_for(spec)["HyperParameters"]["sagemaker_mpi_num_of_processes_per_host"] == "1"


def test_gpus_is_one_process_per_gpu_of_the_instance() -> None:
    hardware = {**HOROVOD, "distributed": {"num_instances": 2, "processes_per_instance": "gpus"}}
    spec = spec_for(hardware=hardware, ml=framework_ml("pytorch", "2.1"))  # ml.p3.16xlarge: 8 GPUs
    assert request_for(spec)["HyperParameters"]["sagemaker_mpi_num_of_processes_per_host"] == "8"


def test_the_sdk_path_gets_the_distribution_in_the_sdks_own_keys() -> None:
    spec = spec_for(hardware=HOROVOD, ml=framework_ml("tensorflow", "2.14"))
    assert spec.distribution is not None
    assert spec.distribution.as_sdk_distribution() == {
        "mpi": {"enabled": True, "processes_per_host": 4, "custom_mpi_options": DEFAULT_MPI_OPTIONS}
    }


@pytest.mark.parametrize("framework", ["pytorch", "tensorflow"])
def test_without_a_process_count_the_mpi_options_are_still_sent_as_given(framework: str) -> None:
    spec = dataclasses.replace(
        spec_for(ml=framework_ml(framework, "1.9.0"), hardware=HOROVOD),
        distribution=MpiDistribution(0, "-x A"),
    )
    assert request_for(spec)["HyperParameters"]["sagemaker_mpi_custom_mpi_options"] == '"-x A"'


def test_trainium_refuses_mpi_with_the_sdks_whole_message() -> None:
    trainium = {**HOROVOD, "instance_type": "ml.trn1.32xlarge"}
    with pytest.raises(RequestRefused) as refused:
        request_for(spec_for(hardware=trainium, ml=framework_ml("pytorch", "2.1")))
    assert str(refused.value) == (
        "Cannot create estimator: Provided distribution strategy mpi is not supported for Trainium "
        "instances.\nPlease specify one of the following supported distribution strategies: "
        "['torch_distributed'] \n"
    )


def test_a_hyperparameter_json_cannot_encode_is_refused_with_jsons_words() -> None:
    # A TOML date (hyper_params = {when = 2020-01-02}) is a valid descriptor value with no JSON form.
    spec = spec_for(
        ml=framework_ml("pytorch", "2.1"), custom_params={"hyper_params": {"when": date(2020, 1, 2)}}
    )
    with pytest.raises(RequestRefused) as refused:
        request_for(spec)
    assert str(refused.value) == "Cannot create estimator: Object of type date is not JSON serializable"


@pytest.mark.parametrize(
    ("output_path", "model_dir"),
    [
        ("s3://sm-output", "s3://sm-output/job/model"),
        ("s3://sm-output/", "s3://sm-output/job/model"),
        ("s3://sm-output/runs", "s3://sm-output/runs/job/model"),
        ("s3://sm-output/runs/", "s3://sm-output/runs/job/model"),
    ],
)
def test_tensorflows_model_dir_joins_the_output_path_with_one_slash(output_path: str, model_dir: str) -> None:
    # The executor's own output path is s3://<bucket>; the request takes any (the SDK's s3_path_join).
    spec = dataclasses.replace(spec_for(ml=framework_ml("tensorflow", "2.14")), output_path=output_path)
    assert request_for(spec)["HyperParameters"]["model_dir"] == f'"{model_dir}"'


# ---------------------------------------------------------------- the field an oversized event is blamed on


def test_no_member_holding_a_quarter_names_the_whole_value() -> None:
    even = {key: key * 10 for key in "abcde"}
    assert largest_field(even) == ("<root>", json_size(even))


def test_the_largest_field_is_found_inside_arrays() -> None:
    event = {"payload": {"datasets": [{"src": "s" * 1000, "path": "/d"}]}, "action_id": "a"}
    assert largest_field(event) == ("payload.datasets[0].src", 1002)


def test_an_empty_table_or_array_ends_the_search() -> None:
    assert largest_field({}) == ("<root>", 2)
    assert largest_field({"a": []}) == ("a", 2)


def test_a_member_of_exactly_a_quarter_is_gone_into_and_one_of_less_is_not() -> None:
    quarter = ["ab", "cd", "ef"]
    assert json_size("ab") * 4 == json_size(quarter)
    assert largest_field(quarter) == ("[0]", 4)

    less = [12345, 12345, 12345, 1]
    assert json_size(12345) * 4 < json_size(less) <= json_size(12345) * 5
    assert largest_field(less) == ("<root>", json_size(less))


# ---------------------------------------------------------------- status messages

START = datetime(2030, 1, 1, 10, 0, 0, tzinfo=UTC)


def test_a_secondary_status_the_executor_does_not_know_is_reported_running_by_name() -> None:
    report = report_for(JobState("job", "InProgress", "Rebooting"), None, "eu-west-1")
    assert report == Report(
        Status.RUNNING, "SageMaker reports (training job job: InProgress/Rebooting)", False
    )


def test_a_failure_without_any_reason_says_so() -> None:
    report = report_for(JobState("job", "Failed", "Failed"), {}, "eu-west-1")
    assert report == Report(
        Status.FAILED, "Benchmark failed: no reason given (training job job Failed)", True
    )


def test_the_final_message_gives_wall_and_billable_time() -> None:
    description = {
        "TrainingStartTime": START,
        "TrainingEndTime": START + timedelta(seconds=100),
        "BillableTimeInSeconds": 90,
    }
    report = report_for(JobState("job", "Completed", "Completed"), description, "eu-west-1")
    assert (
        report.message
        == "Benchmark finished: training job job completed; wall time 1m40s, billable time 1m30s"
    )
