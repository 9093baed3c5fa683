"""``domain.constraints``: botocore's SageMaker model applied as SageMaker applies it (Java patterns as
whole matches, integer widths, every limit), the API reference's rules, and SageMaker's wording."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.loaders import create_loader
from botocore.model import StructureShape
from botocore.session import get_session

from sagemaker_executor.domain import constraints, javaregex, violation
from sagemaker_executor.domain.constraints import validate, violations
from sagemaker_executor.domain.violation import Rule

MODEL = create_loader().load_service_model("sagemaker", "service-2")


def valid_request(**changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "TrainingJobName": "job-1",
        "AlgorithmSpecification": {"TrainingImage": "img:1", "TrainingInputMode": "File"},
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/k"}},
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Tags": [{"Key": "anubis-action-id", "Value": "a-1"}],
    }
    request.update(changes)
    return request


def test_a_valid_request_has_no_violation() -> None:
    assert validate("CreateTrainingJob", valid_request()) == []


@pytest.mark.parametrize(
    "pattern",
    sorted({shape["pattern"] for shape in MODEL["shapes"].values() if "pattern" in shape}),
)
def test_every_pattern_of_the_model_is_read(pattern: str) -> None:
    javaregex.java_regex(pattern)


@pytest.mark.parametrize(
    ("shape", "text", "accepted"),
    [
        # Whole matches: Java's matches(), where "$" would let a trailing newline through.
        ("TrainingJobName", "job-1", True),
        ("TrainingJobName", "job-1\n", False),
        ("TrainingJobName", "a" + "-" * 61 + "b", True),  # 63 characters
        ("TrainingJobName", "a" + "-" * 70 + "b", False),  # the pattern allows it; the length does not
        # Java's "." matches no line terminator.
        ("HyperParameterValue", "a b", True),
        ("HyperParameterValue", "a\nb", False),
        ("HyperParameterValue", "a\rb", False),
        ("HyperParameterValue", "a\u2028b", False),
        ("TrainingEnvironmentValue", "a\nb", True),  # [\S\s]* says so
        # \p{L}, \p{Z}, \p{N}: Unicode classes that the regex package reads and re does not.
        ("TagValue", "Überblick 中文 ٣ :/=+-@_.", True),
        ("TagValue", "nightly run #42 (retry!)", False),
        # \d is ASCII in Java: an Arabic-Indic digit is no digit of an account id.
        ("RoleArn", "arn:aws:iam::123456789012:role/r", True),
        ("RoleArn", "arn:aws:iam::١٢٣٤٥٦٧٨٩٠١٢:role/r", False),
        ("ChannelName", "train.v2-x_y", True),
        ("ChannelName", "my data", False),
    ],
)
def test_patterns_are_applied_as_java_does(shape: str, text: str, accepted: bool) -> None:
    assert constraints.is_valid(shape, text) is accepted


def test_surrogate_pair_escapes_mean_the_code_points_beyond_the_bmp() -> None:
    pattern = r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF\t]*"
    assert javaregex.java_regex(pattern).fullmatch("emoji \U0001f600 ok")
    assert not javaregex.java_regex(pattern).fullmatch("bell \x07")


def test_integers_are_32_bit_whatever_the_shape_says() -> None:
    request = valid_request(
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 2**31}
    )
    (found,) = validate("CreateTrainingJob", request)
    assert found.path == ("ResourceConfig", "VolumeSizeInGB") and found.limit == 2**31 - 1
    assert (
        found.limit_text()
        == f"SageMaker accepts at most 2147483647 (the field is a 32-bit integer), got {2**31}"
    )
    assert (
        validate(
            "CreateTrainingJob",
            valid_request(ResourceConfig={**request["ResourceConfig"], "VolumeSizeInGB": 2**31 - 1}),
        )
        == []
    )


def test_limits_come_from_the_model() -> None:
    shapes = MODEL["shapes"]
    value = "x" * (shapes["HyperParameterValue"]["max"] + 1)
    (found,) = validate("CreateTrainingJob", valid_request(HyperParameters={"classes": value}))
    assert found.path == ("HyperParameters", "classes") and found.in_value
    assert (
        found.limit_text()
        == f"SageMaker accepts at most {shapes['HyperParameterValue']['max']} characters, got {len(value)}"
    )
    too_many = shapes["TrainingEnvironmentMap"]["max"] + 1
    (found,) = validate(
        "CreateTrainingJob", valid_request(Environment={f"V{i}": "" for i in range(too_many)})
    )
    assert found.path == ("Environment",) and found.limit_text("variables") == (
        f"SageMaker accepts at most {too_many - 1} variables, got {too_many}"
    )


def test_every_violation_is_found_in_request_order() -> None:
    request = valid_request(
        TrainingJobName="bad_name", Tags=[{"Key": "k", "Value": "v!"}, {"Key": "", "Value": ""}]
    )
    found = validate("CreateTrainingJob", request)
    assert [(v.path, v.rule) for v in found] == [
        (("TrainingJobName",), Rule.PATTERN),
        (("Tags", 0, "Value"), Rule.PATTERN),
        (("Tags", 1, "Key"), Rule.LENGTH),
    ]


def test_required_members_and_json_types() -> None:
    request = valid_request(
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": "1", "VolumeSizeInGB": True}
    )
    del request["RoleArn"]
    found = validate("CreateTrainingJob", request)
    assert [(v.path, v.rule) for v in found] == [
        (("RoleArn",), Rule.REQUIRED),
        (("ResourceConfig", "InstanceCount"), Rule.TYPE),
        (("ResourceConfig", "VolumeSizeInGB"), Rule.TYPE),
    ]


@pytest.mark.parametrize(
    ("stopping", "spot", "member", "aws"),
    [
        ({"MaxRuntimeInSeconds": 28 * 86400 + 1}, None, "MaxRuntimeInSeconds", ""),
        (
            {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600},
            None,
            "MaxWaitTimeInSeconds",
            "only supported",
        ),
        ({"MaxRuntimeInSeconds": 3600}, True, "MaxWaitTimeInSeconds", "required for managed spot"),
        (
            {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3599},
            True,
            "MaxWaitTimeInSeconds",
            "greater than",
        ),
    ],
)
def test_the_api_references_rules(stopping: dict[str, int], spot: bool | None, member: str, aws: str) -> None:
    changes: dict[str, Any] = {"StoppingCondition": stopping}
    if spot is not None:
        changes["EnableManagedSpotTraining"] = spot
    (found,) = validate("CreateTrainingJob", valid_request(**changes))
    assert found.rule is Rule.DOCUMENTED and found.path == ("StoppingCondition", member)
    assert aws in found.aws


@pytest.mark.parametrize(
    "stopping",
    [
        {"MaxRuntimeInSeconds": 28 * 86400},
        {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600},
    ],
)
def test_the_api_references_rules_admit_their_limits(stopping: dict[str, int]) -> None:
    spot = "MaxWaitTimeInSeconds" in stopping
    request = valid_request(
        StoppingCondition=stopping, **({"EnableManagedSpotTraining": True} if spot else {})
    )
    assert validate("CreateTrainingJob", request) == []


def test_the_28_days_are_still_what_the_model_documents() -> None:
    """The cap is not a shape's ``max``: it is in the member's documentation. A new botocore that says
    otherwise makes this fail, and MAX_RUNTIME_SECONDS is then to be changed with it."""
    model = get_session().get_service_model("sagemaker")
    stopping = model.shape_for("StoppingCondition")
    assert isinstance(stopping, StructureShape)
    documentation = stopping.members["MaxRuntimeInSeconds"].documentation
    assert "The maximum value is 28 days." in re.sub(r"<[^>]+>", "", documentation)
    assert constraints.MAX_RUNTIME_SECONDS == 28 * 24 * 3600


def test_messages_in_sagemakers_words() -> None:
    request = valid_request(
        TrainingJobName="a" + "-" * 70 + "b",
        Tags=[{"Key": "k", "Value": "ok"}, {"Key": "anubis-action-id", "Value": "nightly run #42 (retry!)"}],
        HyperParameters={"classes": "x" * 2501},
    )
    message = violation.validation_exception_message(validate("CreateTrainingJob", request))
    assert message == (
        "3 validation errors detected: "
        f"Value '{request['TrainingJobName']}' at 'trainingJobName' failed to satisfy constraint: "
        "Member must have length less than or equal to 63; "
        "Value 'nightly run #42 (retry!)' at 'tags.2.member.value' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: ([\p{L}\p{Z}\p{N}_.:/=+\-@]*); "
        f"Value '{{classes={'x' * 2501}}}' at 'hyperParameters' failed to satisfy constraint: "
        "Map value must satisfy constraint: [Member must have length less than or equal to 2500]"
    )


def test_a_user_hears_the_limit_and_the_characters_refused() -> None:
    (name,) = violations("TrainingJobName", "my_job")
    assert name.limit_text() == (
        "SageMaker accepts only text matching the pattern [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} "
        "('_' is not allowed), got 'my_job'"
    )
    (tag,) = violations("TagValue", "nightly run #42 (retry!)")
    assert "('#', '(', '!', ')' are not allowed)" in tag.limit_text()
    (empty,) = violations("TagKey", "")
    assert empty.limit_text() == "SageMaker does not accept an empty value"


def test_operations_the_model_does_not_know_have_no_constraints() -> None:
    assert validate("NoSuchOperation", {"x": 1}) == []
    assert validate("StopTrainingJob", {"TrainingJobName": "x" * 64})[0].path == ("TrainingJobName",)
