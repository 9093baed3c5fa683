"""``domain.constraints``' messages in SageMaker's own words (what the local SageMaker answers, so tests see
what production sees) for each kind of rule: required, type, range, map keys and values, values Java
writes its own way, one error or several, the API reference's rules among the model's."""

from __future__ import annotations

from typing import Any

from sagemaker_executor.domain.constraints import member_shape, validate, violations
from sagemaker_executor.domain.violation import validation_exception_message
from tests.unit.test_constraints import valid_request


def message(**changes: Any) -> str:
    return validation_exception_message(validate("CreateTrainingJob", valid_request(**changes)))


def test_one_error_is_one_error() -> None:
    request = valid_request()
    del request["RoleArn"]
    assert validation_exception_message(validate("CreateTrainingJob", request)) == (
        "1 validation error detected: Value 'null' at 'roleArn' failed to satisfy constraint: "
        "Member must not be null"
    )


def test_a_type_and_a_lower_bound() -> None:
    resources = {"InstanceType": "ml.m5.large", "InstanceCount": True, "VolumeSizeInGB": 30}
    assert message(ResourceConfig=resources, StoppingCondition={"MaxRuntimeInSeconds": 0}) == (
        "2 validation errors detected: "
        "Value 'true' at 'resourceConfig.instanceCount' failed to satisfy constraint: Member must "
        "be a integer; "
        "Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )


def test_map_keys_and_values_show_the_whole_map_as_java_writes_it() -> None:
    assert message(Environment={"1BAD": "x", "OK": "y"}) == (
        "1 validation error detected: Value '{1BAD=x, OK=y}' at 'environment' failed to satisfy constraint: "
        "Map keys must satisfy constraint: [Member must satisfy regular expression pattern: "
        "[a-zA-Z_][a-zA-Z0-9_]*]"
    )
    assert message(HyperParameters={"a": "", "b": "x" * 2501}).endswith(
        "Map value must satisfy constraint: [Member must have length less than or equal to 2500]"
    )


def test_a_map_below_the_top_is_named_by_its_whole_path() -> None:
    hook = {"S3OutputPath": "s3://b/k", "HookParameters": {"k" * 257: "v"}}
    assert message(DebugHookConfig=hook) == (
        "1 validation error detected: "
        f"Value '{{{'k' * 257}=v}}' at 'debugHookConfig.hookParameters' failed to satisfy constraint: "
        "Map keys must satisfy constraint: [Member must have length less than or equal to 256]"
    )


def test_lists_booleans_and_numbers_as_java_writes_them() -> None:
    arguments = ["a", "b" * 257]
    spec = {"TrainingImage": "img:1", "TrainingInputMode": "File", "ContainerArguments": arguments}
    assert message(AlgorithmSpecification=spec) == (
        "1 validation error detected: "
        f"Value '{'b' * 257}' at 'algorithmSpecification.containerArguments.2.member' failed to satisfy "
        "constraint: Member must have length less than or equal to 256"
    )
    listed = violations("TrainingContainerArguments", ["a", None, True, 1.5] * 26)[0]  # then the items
    assert listed.aws_text() == (
        "Value '[" + ", ".join(["a, null, true, 1.5"] * 26) + "]' at '' failed to satisfy constraint: "
        "Member must have length less than or equal to 100"
    )
    (flag,) = violations("TrainingJobName", False)
    assert flag.aws_text() == "Value 'false' at '' failed to satisfy constraint: Member must be a string"


def test_the_28_days_in_sagemakers_words_and_spots_own_words_after_the_rest() -> None:
    stopping = {"MaxRuntimeInSeconds": 28 * 86400 + 1, "MaxWaitTimeInSeconds": 60}
    assert message(StoppingCondition=stopping, TrainingJobName="bad_name") == (
        "2 validation errors detected: "
        "Value 'bad_name' at 'trainingJobName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}; "
        "Value '2419201' at 'stoppingCondition.maxRuntimeInSeconds' failed to satisfy constraint: "
        "Member must have value less than or equal to 2419200; "
        "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to true"
    )
    (too_long,) = validate(
        "CreateTrainingJob", valid_request(StoppingCondition={"MaxRuntimeInSeconds": 10**7})
    )
    assert too_long.limit_text() == "SageMaker accepts at most 2419200 seconds (28 days), got 10000000"


def test_the_shapes_of_members_items_keys_and_values() -> None:
    """``member_shape`` walks the model (the component tests generate a request per constrained member)."""
    assert member_shape("CreateTrainingJobRequest", "Tags") == "TagList"
    assert member_shape("TagList", "member") == "Tag"
    assert member_shape("HyperParameters", "key") == "HyperParameterKey"
    assert member_shape("HyperParameters", "value") == "HyperParameterValue"
    assert member_shape("Tag", "Value") == "TagValue"


def test_what_a_user_reads_of_each_kind_of_limit() -> None:
    short, _ = violations("RoleArn", "arn:aws:iam::1")  # then its pattern
    assert short.limit_text() == "SageMaker needs at least 20 characters, got 14"
    (no_subnet,) = violations("VpcConfig", {"Subnets": [], "SecurityGroupIds": ["sg-1"]})
    assert no_subnet.limit_text() == "SageMaker needs at least 1 entries, got 0"
    assert no_subnet.limit_text("subnets") == "SageMaker needs at least 1 subnets, got 0"
    (no_run,) = validate("CreateTrainingJob", valid_request(StoppingCondition={"MaxRuntimeInSeconds": 0}))
    assert no_run.limit_text() == "SageMaker accepts at least 1, got 0"
    request = valid_request()
    del request["RoleArn"]
    (no_role,) = validate("CreateTrainingJob", request)
    assert no_role.limit_text() == "SageMaker requires it"
