"""Unit tests of ``sagemaker_executor.config``: the original's variables (CONTRACT §6) become Settings.

Every test passes its own ``environ`` mapping, so nothing depends on the shell that runs pytest.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import tempfile
from typing import Any

import pytest

from sagemaker_executor.config import (
    OPTIONS,
    ConfigError,
    add_arguments,
    ignored_legacy_variables,
    load_settings,
)
from tests.conftest import SAMPLES

# The deploy manifest's values (CONTRACT §6), with the terraform outputs filled in.
DEPLOYED: dict[str, str] = {
    "KAFKA_BOOTSTRAP_SERVERS": "b-1.msk:9092,b-2.msk:9092",
    "CONSUMER_GROUP_ID": "sm-executor",
    "CONSUMER_TOPIC": "BAI_APP_FETCHER",
    "PRODUCER_TOPIC": "BAI_APP_EXECUTOR",
    "STATUS_TOPIC": "BAI_APP_STATUS",
    "LOGGING_LEVEL": "INFO",
    "SAGEMAKER_OUTPUT_BUCKET": "bai-sagemaker-output",
    "SAGEMAKER_NODATASET": "s3://bai-data-pull/no-data",
    "SAGEMAKER_ROLE": "bai-sagemaker",
    "SAGEMAKER_SUBNETS": "subnet-1,subnet-2",
    "SAGEMAKER_SECURITY_GROUP_IDS": "sg-0123",
    "AWS_DEFAULT_REGION": "us-east-1",
}
LEGACY_UNUSED: dict[str, str] = {
    k: v
    for k, v in json.loads(
        (SAMPLES / "events" / "from-tests" / "sm-executor.test_args.MOCK_ENV.json").read_text()
    ).items()
    if k in ("VALID_EXECUTION_ENGINES", "TRANSPILER_VALID_FRAMEWORKS", "TRANSPILER_VALID_STRATEGIES")
}
REQUIRED = ("SAGEMAKER_OUTPUT_BUCKET", "SAGEMAKER_NODATASET", "SAGEMAKER_ROLE")


def flag_of(variable: str) -> str:
    return "--" + variable.lower().replace("_", "-")


def no_flags() -> dict[str, Any]:
    return {}


def test_the_deployed_variables_plus_legacy_ones_load_with_defaults_for_everything_new() -> None:
    environ = {**DEPLOYED, **LEGACY_UNUSED}

    settings = load_settings(no_flags(), environ)

    assert settings.kafka_bootstrap_servers == ("b-1.msk:9092", "b-2.msk:9092")
    assert settings.consumer_group_id == "sm-executor"
    assert settings.consumer_topic == "BAI_APP_FETCHER"
    assert settings.producer_topic == "BAI_APP_EXECUTOR"
    assert settings.status_topic == "BAI_APP_STATUS"
    assert settings.logging_level == "INFO"
    assert settings.sagemaker_output_bucket == "bai-sagemaker-output"
    assert settings.sagemaker_nodataset == "s3://bai-data-pull/no-data"
    assert settings.sagemaker_role == "bai-sagemaker"
    assert settings.sagemaker_subnets == ("subnet-1", "subnet-2")
    assert settings.sagemaker_security_group_ids == ("sg-0123",)
    assert settings.aws_region == "us-east-1"
    # The original's defaults for what the manifest does not set.
    assert settings.cmd_submit_topic == "CMD_SUBMIT"
    assert settings.cmd_return_topic == "CMD_RETURN"
    assert (settings.num_partitions, settings.replication_factor) == (3, 3)
    assert settings.tmp_sources_dir == tempfile.gettempdir()
    # Everything this project added has a default.
    assert settings.dead_letter_topic == "SM_EXECUTOR_DEAD_LETTER"
    assert settings.consumer_auto_offset_reset == "latest"
    assert settings.kafka_session_timeout_ms == 10000
    assert settings.kafka_heartbeat_interval_ms == 3000
    assert settings.kafka_max_poll_interval_ms == 300000
    assert settings.max_script_bytes == 1024**3
    assert settings.aws_retry_attempts == 8
    assert settings.sagemaker_create_rate == 1.0  # SageMaker's documented CreateTrainingJob rate
    assert settings.request_builder == "boto3"
    assert settings.service_node == socket.gethostname()
    assert settings.scripts_exchange_s3_bucket_name == "bai-sagemaker-output"


def test_the_legacy_unused_variables_are_reported_as_ignored() -> None:
    assert set(LEGACY_UNUSED) == {
        "VALID_EXECUTION_ENGINES",
        "TRANSPILER_VALID_FRAMEWORKS",
        "TRANSPILER_VALID_STRATEGIES",
    }
    assert sorted(ignored_legacy_variables({**DEPLOYED, **LEGACY_UNUSED})) == sorted(LEGACY_UNUSED)
    assert list(ignored_legacy_variables(DEPLOYED)) == []


def test_the_original_tests_mock_env_loads_apart_from_its_underscored_buckets() -> None:
    mock_env = json.loads(
        (SAMPLES / "events" / "from-tests" / "sm-executor.test_args.MOCK_ENV.json").read_text()
    )
    environ = {**mock_env, "AWS_DEFAULT_REGION": "eu-west-1"}

    # "some_bucket" is not a valid (post-2018) S3 bucket name; the check is deliberate, and one rule
    # (domain.s3location) for both settings: one message names both.
    with pytest.raises(ConfigError) as refused:
        load_settings(no_flags(), environ)
    assert "SAGEMAKER_OUTPUT_BUCKET" in str(refused.value) and "SAGEMAKER_NODATASET" in str(refused.value)
    fixed = {"SAGEMAKER_OUTPUT_BUCKET": "some-bucket", "SAGEMAKER_NODATASET": "s3://some-bucket/nodata"}
    settings = load_settings(no_flags(), {**environ, **fixed})

    assert settings.sagemaker_nodataset == "s3://some-bucket/nodata"
    assert settings.sagemaker_role == "some_role"
    assert settings.sagemaker_subnets == ("n1", "n2")
    assert settings.sagemaker_security_group_ids == ("sg1", "sg2")
    assert settings.tmp_sources_dir == "/tmp/dir"


def test_a_flag_beats_the_environment_variable() -> None:
    flags = {"consumer_topic": "FLAG_TOPIC", "sagemaker_role": "arn:aws:iam::1:role/x", "num_partitions": "7"}

    settings = load_settings(flags, DEPLOYED)

    assert settings.consumer_topic == "FLAG_TOPIC"
    assert settings.sagemaker_role == "arn:aws:iam::1:role/x"
    assert settings.num_partitions == 7
    assert settings.producer_topic == "BAI_APP_EXECUTOR"  # no flag: the environment decides


def test_flags_parsed_by_add_arguments_reach_the_settings() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)

    args = parser.parse_args(["--kafka-bootstrap-servers", "k:1", "--sagemaker-output-bucket", "flagged"])
    settings = load_settings(vars(args), DEPLOYED)

    assert settings.kafka_bootstrap_servers == ("k:1",)
    assert settings.sagemaker_output_bucket == "flagged"
    assert settings.consumer_group_id == "sm-executor"  # absent flags default to None, not to a value
    assert {action.dest for action in parser._actions} >= {option.name for option in OPTIONS}


@pytest.mark.parametrize("missing", REQUIRED)
def test_a_missing_required_variable_names_the_variable_and_its_flag(missing: str) -> None:
    environ = {k: v for k, v in DEPLOYED.items() if k != missing}

    with pytest.raises(ConfigError) as caught:
        load_settings(no_flags(), environ)

    assert missing in str(caught.value)
    assert flag_of(missing) in str(caught.value)


def test_an_empty_required_variable_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="SAGEMAKER_ROLE"):
        load_settings(no_flags(), {**DEPLOYED, "SAGEMAKER_ROLE": ""})


def test_every_missing_required_variable_is_listed_in_one_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(no_flags(), {"AWS_DEFAULT_REGION": "us-east-1"})

    message = str(caught.value)
    for variable in REQUIRED:
        assert variable in message
        assert flag_of(variable) in message


MALFORMED: dict[str, str] = {
    "KAFKA_BOOTSTRAP_SERVERS": "b-1.msk,b-2.msk:notaport",
    "CONSUMER_TOPIC": "bad topic!",
    "NUM_PARTITIONS": "three",
    "SAGEMAKER_OUTPUT_BUCKET": "Not_A_Bucket",
    "SAGEMAKER_NODATASET": "/local/no-data",
    "LOGGING_LEVEL": "CHATTY",
    "CONSUMER_AUTO_OFFSET_RESET": "newest",
}


def test_several_malformed_variables_produce_one_error_naming_each_variable() -> None:
    environ = {k: v for k, v in {**DEPLOYED, **MALFORMED}.items() if k != "AWS_DEFAULT_REGION"}

    with pytest.raises(ConfigError) as caught:
        load_settings(no_flags(), environ)

    message = str(caught.value)
    problems = [line for line in message.splitlines() if line.strip().startswith("- ")]
    for variable, value in MALFORMED.items():
        assert variable in message, variable
        assert repr(value) in message, value
    assert "AWS_DEFAULT_REGION" in message
    assert len(problems) == len(MALFORMED) + 1, message


@pytest.mark.parametrize("variable", sorted(MALFORMED))
def test_a_malformed_variable_is_named_with_its_flag(variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(no_flags(), {**DEPLOYED, variable: MALFORMED[variable]})

    message = str(caught.value)
    assert variable in message
    assert flag_of(variable) in message, message


def test_no_region_is_an_error_for_the_service() -> None:
    environ = {k: v for k, v in DEPLOYED.items() if k != "AWS_DEFAULT_REGION"}

    with pytest.raises(ConfigError, match=re.escape("AWS_DEFAULT_REGION")):
        load_settings(no_flags(), environ)
    assert load_settings(no_flags(), {**environ, "AWS_REGION": "eu-west-1"}).aws_region == "eu-west-1"


def test_the_client_does_not_need_the_sagemaker_settings_or_a_region() -> None:
    environ = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}

    settings = load_settings(no_flags(), environ, client=True)

    assert settings.sagemaker_output_bucket == ""
    assert settings.sagemaker_nodataset == ""
    assert settings.sagemaker_role == ""
    assert settings.aws_region == ""
    assert settings.consumer_topic == "BAI_APP_FETCHER"
    assert settings.kafka_bootstrap_servers == ("127.0.0.1:9092",)


def test_the_client_still_rejects_malformed_values() -> None:
    with pytest.raises(ConfigError, match="KAFKA_BOOTSTRAP_SERVERS"):
        load_settings(no_flags(), {"KAFKA_BOOTSTRAP_SERVERS": "no-port"}, client=True)


@pytest.mark.parametrize("value", ["s3://bai-output/", "s3://bai-output", "bai-output"])
def test_the_output_bucket_is_normalised_to_a_bare_name(value: str) -> None:
    settings = load_settings(no_flags(), {**DEPLOYED, "SAGEMAKER_OUTPUT_BUCKET": value})

    assert settings.sagemaker_output_bucket == "bai-output"
    assert settings.scripts_exchange_s3_bucket_name == "bai-output"


def test_an_empty_status_topic_drops_status_events() -> None:
    assert load_settings(no_flags(), {**DEPLOYED, "STATUS_TOPIC": ""}).status_topic == ""


def test_logging_level_is_case_insensitive() -> None:
    assert load_settings(no_flags(), {**DEPLOYED, "LOGGING_LEVEL": "debug"}).logging_level == "DEBUG"


def test_values_are_stripped_and_lists_skip_empty_items() -> None:
    settings = load_settings(
        no_flags(),
        {**DEPLOYED, "CONSUMER_TOPIC": "  BAI_APP_FETCHER \n", "SAGEMAKER_SUBNETS": " subnet-1 , ,subnet-2,"},
    )

    assert settings.consumer_topic == "BAI_APP_FETCHER"
    assert settings.sagemaker_subnets == ("subnet-1", "subnet-2")


def test_redacted_holds_no_credentials() -> None:
    environ = {**DEPLOYED, "AWS_SECRET_ACCESS_KEY": "very-secret", "AWS_SESSION_TOKEN": "token-secret"}

    logged = repr(load_settings(no_flags(), environ).redacted())

    assert "very-secret" not in logged
    assert "token-secret" not in logged


def test_a_service_node_longer_than_a_dns_name_is_refused() -> None:
    # It goes into the visited list of every event sent: an unbounded one would break the size rule.
    with pytest.raises(ConfigError, match="SERVICE_NODE"):
        load_settings(no_flags(), {**DEPLOYED, "SERVICE_NODE": "n" * 254})
    assert load_settings(no_flags(), {**DEPLOYED, "SERVICE_NODE": "n" * 253}).service_node == "n" * 253


@pytest.mark.parametrize(
    ("text", "rate"), [("1", 1.0), ("0.25", 0.25), ("20", 20.0), ("off", None), ("OFF", None), ("0", None)]
)
def test_the_create_rate_is_a_positive_rate_per_second_or_off(text: str, rate: float | None) -> None:
    assert (
        load_settings(no_flags(), {**DEPLOYED, "SAGEMAKER_CREATE_RATE": text}).sagemaker_create_rate == rate
    )
    assert load_settings({"sagemaker_create_rate": text}, DEPLOYED).sagemaker_create_rate == rate


@pytest.mark.parametrize("text", ["-1", "fast", "nan", "inf", "1001"])
def test_a_create_rate_that_is_not_a_rate_stops_start_up(text: str) -> None:
    with pytest.raises(ConfigError, match="SAGEMAKER_CREATE_RATE"):
        load_settings(no_flags(), {**DEPLOYED, "SAGEMAKER_CREATE_RATE": text})


def test_the_request_builder_is_boto3_or_sdk() -> None:
    assert load_settings(no_flags(), {**DEPLOYED, "REQUEST_BUILDER": "SDK"}).request_builder == "sdk"
    assert load_settings({"request_builder": "boto3"}, DEPLOYED).request_builder == "boto3"
    with pytest.raises(ConfigError, match="REQUEST_BUILDER"):
        load_settings(no_flags(), {**DEPLOYED, "REQUEST_BUILDER": "estimator"})


@pytest.mark.parametrize("missing", ["SAGEMAKER_SUBNETS", "SAGEMAKER_SECURITY_GROUP_IDS"])
def test_subnets_and_security_groups_are_set_together_or_not_at_all(missing: str) -> None:
    with pytest.raises(ConfigError, match="must be set together"):
        load_settings(no_flags(), {**DEPLOYED, missing: " , "})
    no_vpc = {
        k: v for k, v in DEPLOYED.items() if k not in ("SAGEMAKER_SUBNETS", "SAGEMAKER_SECURITY_GROUP_IDS")
    }
    assert load_settings(no_flags(), no_vpc).sagemaker_subnets == ()


def test_variable_names_are_read_in_capitals_only() -> None:
    # The names are a contract with deployments; a lower-case look-alike is some other program's.
    settings = load_settings(no_flags(), {**DEPLOYED, "consumer_topic": "lower_case_topic"})

    assert settings.consumer_topic == "BAI_APP_FETCHER"


def test_a_required_variable_of_only_spaces_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match=re.escape("SAGEMAKER_ROLE (or --sagemaker-role) is required")):
        load_settings(no_flags(), {**DEPLOYED, "SAGEMAKER_ROLE": "   "})


def test_aws_region_wins_over_aws_default_region() -> None:
    environ = {**DEPLOYED, "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-1"}

    assert load_settings(no_flags(), environ).aws_region == "eu-west-1"
