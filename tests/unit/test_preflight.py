"""Issue 9: every request SageMaker would refuse is refused before any AWS call, naming the descriptor
field, event field or setting at fault and the limit (ids: ``test_names_and_ids.py``).

End to end through the service on in-memory adapters (``tests/harness.py``): the ERROR a user reads,
no source dir built, no script fetched, no job created. ``tests/component/test_preflight_model.py``
covers every constrained member of the request, generated from the model."""

from __future__ import annotations

import json
from typing import IO, Any

import pytest

from sagemaker_executor.domain.preflight import PreflightError, Problem
from sagemaker_executor.domain.translation import (
    ExecutorSite,
)
from sagemaker_executor.service.outcomes import user_message
from sagemaker_executor.service.submission import preflight_errors
from tests.builders import SITE, fetcher_event, minimal_contents
from tests.fakes import FakeScripts, record
from tests.harness import FETCHER, Harness

GIB = 1024**3
CLASSES = [f"imagenet-class-{i:03d}" for i in range(260)]  # a JSON list of 260 class names


class NoScripts(FakeScripts):
    """Scripts that must never be fetched: the check comes before the source dir is built."""

    def fetch(self, uri: str, max_bytes: int) -> IO[bytes]:
        raise AssertionError(f"fetched {uri} although the request was refused")


def _dataset(index: int, total_size: int | None = None) -> dict[str, Any]:
    size = None if total_size is None else {"total_size": total_size, "file_count": 1, "max_size": 1}
    return {
        "src": f"s3://data/d{index}",
        "path": f"/d{index}",
        "dst": f"s3://fetched/d{index}",
        "size_info": size,
    }


def _sources(count: int) -> dict[str, Any]:
    return {"sources": [{"src": f"s3://data/d{i}", "path": f"/d{i}"} for i in range(count)]}


BYOC = {"docker_image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/algo:1"}

ISSUE_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    (
        "custom job name of 72 characters",
        minimal_contents(custom_params={"sagemaker_job_name": "a" + "-" * 70 + "b"}),
        {},
        "descriptor field 'custom_params.sagemaker_job_name': "
        "SageMaker accepts at most 63 characters, got 72",
    ),
    (
        "a hyperparameter over 2,500 characters",
        minimal_contents(custom_params={"hyper_params": {"classes": CLASSES}}),
        {},
        "descriptor field 'custom_params.hyper_params.classes': SageMaker accepts at most 2500 characters, "
        f"got {len(json.dumps(CLASSES))}",
    ),
    (
        "spot with a wait below the SDK's default max run",
        minimal_contents(custom_params={"use_spot_instances": True, "max_wait_seconds": 3600}),
        {},
        "descriptor field 'custom_params.max_wait_seconds': SageMaker needs it to be at least the maximum "
        "run time, 86400 seconds, the SDK's default max run (custom_params.max_run_seconds is not set), "
        "got 3600",
    ),
    (
        "spot with no wait",
        minimal_contents(custom_params={"use_spot_instances": True, "max_run_seconds": 600}),
        {},
        "descriptor field 'custom_params.max_wait_seconds': SageMaker requires it with use_spot_instances = "
        "true: how long to wait for spot capacity plus the run time, so at least the maximum run time, 600 "
        "seconds",
    ),
    (
        "a bring-your-own-container job with 102 environment variables",
        minimal_contents(ml=None, env={**BYOC, "vars": {f"VAR_{i}": "1" for i in range(102)}}),
        {},
        "descriptor field 'env.vars': SageMaker accepts at most 100 variables, got 102",
    ),
    (
        "a max run of 23 digits",
        minimal_contents(custom_params={"max_run_seconds": 99999999999999999999999}),
        {},
        "descriptor field 'custom_params.max_run_seconds': "
        "SageMaker accepts at most 2419200 seconds (28 days), got 99999999999999999999999",
    ),
    (
        "a dataset of 10^25 bytes",
        minimal_contents(data=_sources(1)),
        {"datasets": [_dataset(0, 10**25)]},
        "event field 'payload.datasets[0].size_info.total_size': the training volume in GB estimated from "
        "it: SageMaker accepts at most 2147483647 (the field is a 32-bit integer), "
        f"got {-(-(10**25) // GIB) * 11 // 10}",
    ),
    (
        "21 data sources",
        minimal_contents(data=_sources(21)),
        {"datasets": [_dataset(i) for i in range(21)]},
        "descriptor field 'data.sources': SageMaker accepts at most 20 input channels "
        "(one per data source and the executor's code channel 'anubis_code'), got 22",
    ),
]


@pytest.mark.parametrize(
    ("contents", "event_fields", "expected"),
    [case[1:] for case in ISSUE_CASES],
    ids=[case[0] for case in ISSUE_CASES],
)
def test_the_issues_cases_end_as_an_error_naming_the_field_with_no_aws_call(
    tmp_path: Any, contents: dict[str, Any], event_fields: dict[str, Any], expected: str
) -> None:
    scripts = ["s3://scripts/anubis0/abc.tar"] if contents.get("ml") else []
    event = fetcher_event(contents, scripts=scripts, **event_fields)
    h = Harness(tmp_path, [record(FETCHER, event)], scripts=NoScripts())
    h.drain()
    assert h.statuses() == [
        ("PENDING", "Processing benchmark submission request..."),
        ("ERROR", f"Cannot process the request: {expected}"),
    ]
    assert h.jobs.create_calls == 0 and h.jobs.jobs == {}
    assert list(tmp_path.iterdir()) == []  # no source dir was ever assembled
    assert h.source.committed == {(FETCHER, 0): 1}


def test_the_client_hears_the_same_before_it_uploads_anything() -> None:
    contents, event_fields, expected = ISSUE_CASES[1][1:]
    assert preflight_errors(fetcher_event(contents, **event_fields), SITE) == [
        f"Cannot process the request: {expected}"
    ]
    assert preflight_errors(fetcher_event(), SITE) == []


def test_the_client_hears_every_problem_each_on_its_own() -> None:
    contents = minimal_contents(
        custom_params={"hyper_params": {"classes": CLASSES}, "max_run_seconds": 3 * 10**6},
        env={**BYOC, "docker_image": "i" * 256},
    )
    errors = preflight_errors(fetcher_event(contents), SITE)
    assert [error.split(": ")[1] for error in errors] == [  # the model's in request order, then the rest
        "descriptor field 'env.docker_image'",
        "descriptor field 'custom_params.hyper_params.classes'",
        "descriptor field 'custom_params.max_run_seconds'",
    ]


def test_one_status_says_every_problem_and_a_tighter_rule_wins_over_an_integer_width() -> None:
    error = PreflightError([Problem("descriptor field 'a'", "x"), Problem("setting B", "y")])
    assert user_message(error) == "Cannot process the request: descriptor field 'a': x; setting B: y"
    contents = minimal_contents(custom_params={"max_run_seconds": 2**31})  # over 28 days and 32 bits
    (message,) = preflight_errors(fetcher_event(contents), SITE)
    assert message.endswith("SageMaker accepts at most 2419200 seconds (28 days), got 2147483648")


@pytest.mark.parametrize(
    ("site_changes", "expected"),
    [
        ({"role_arn": "arn:aws:iam::123:role/short"}, "setting SAGEMAKER_ROLE: SageMaker accepts only"),
        ({"nodata_uri": "s3://no-data/x\n"}, "setting SAGEMAKER_NODATASET: SageMaker accepts only"),
        ({"subnets": ("subnet-1",) * 17, "security_group_ids": ("sg-1",)}, "setting SAGEMAKER_SUBNETS: "),
        ({"subnets": ("subnet-1",), "security_group_ids": ("sg_1",)}, "setting SAGEMAKER_SECURITY_GROUP_IDS"),
    ],
)
def test_configuration_settings_are_named(site_changes: dict[str, Any], expected: str) -> None:
    site = ExecutorSite(**{**SITE.__dict__, **site_changes})
    byoc = minimal_contents(ml=None)  # the image's own entrypoint: the no-data channel is sent
    (message,) = preflight_errors(fetcher_event(byoc), site)
    assert message.startswith(f"Cannot process the request: {expected}"), message


def test_tags_are_counted_with_the_executors_own() -> None:
    contents = minimal_contents(custom_params={"tags": {f"t{i}": "" for i in range(49)}})
    (message,) = preflight_errors(fetcher_event(contents), SITE)
    assert message == (
        "Cannot process the request: descriptor field 'custom_params.tags': "
        "SageMaker accepts at most 50 tags, got 51 (the executor's own 2 included: anubis-action-id, "
        "anubis-client-id)"
    )
    contents = minimal_contents(custom_params={"tags": {f"t{i}": "" for i in range(48)}})
    assert preflight_errors(fetcher_event(contents), SITE) == []


def test_hyperparameters_are_counted_with_the_executors_own() -> None:
    ml = {"benchmark_code": "python b.py", "framework": "pytorch", "framework_version": "2.1"}  # script mode
    contents = minimal_contents(ml=ml, custom_params={"hyper_params": {f"h{i}": i for i in range(96)}})
    (message,) = preflight_errors(fetcher_event(contents), SITE)
    assert message.endswith(
        "SageMaker accepts at most 100 hyperparameters, got 101 (5 of them the executor's own)"
    )
    contents = minimal_contents(ml=ml, custom_params={"hyper_params": {f"h{i}": i for i in range(95)}})
    assert preflight_errors(fetcher_event(contents), SITE) == []
