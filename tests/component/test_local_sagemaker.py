"""Component tests of the local SageMaker behaviour layer, in-process inside ``moto.mock_aws()``.

Time is a ``ManualClock``; every phase has its own length so each transition time is distinct.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

from sagemaker_executor.local.sagemaker import (
    DEFAULT_FAILURE_REASON,
    OUTCOME_KEY,
    EndStatus,
    LocalSageMaker,
    ManualClock,
    Timeline,
)
from sagemaker_executor.local.server import ErrorKind, FaultInjector, FaultSettings
from tests.builders import create_training_job

REGION = "us-east-1"
START = datetime(2030, 1, 1, tzinfo=UTC)
TIMELINE = Timeline(starting=10, downloading=20, training=30, uploading=40, stopping=5)


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def local(clock: ManualClock) -> Iterator[LocalSageMaker]:
    with mock_aws(), LocalSageMaker(clock=clock, default_timeline=TIMELINE) as local:
        yield local


@pytest.fixture
def sm(local: LocalSageMaker) -> Any:
    return boto3.client("sagemaker", region_name=REGION)


def describe(sm: Any, name: str) -> dict[str, Any]:
    result: dict[str, Any] = sm.describe_training_job(TrainingJobName=name)
    return result


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = excinfo.value.response["Error"]
    return error["Code"], error["Message"]


def test_duplicate_name_is_resource_in_use_and_the_original_is_kept(sm: Any, clock: ManualClock) -> None:
    arn = create_training_job(
        sm, "job-1", HyperParameters={"epochs": "1"}, Tags=[{"Key": "k", "Value": "first"}]
    )
    clock.advance(15)

    with pytest.raises(ClientError) as excinfo:
        create_training_job(
            sm, "job-1", HyperParameters={"epochs": "2"}, Tags=[{"Key": "k", "Value": "second"}]
        )

    assert error_of(excinfo) == (
        "ResourceInUse",
        "Training job names must be unique within an AWS account and region, and a training job "
        f"with this name already exists ({arn})",
    )
    job = describe(sm, "job-1")
    assert job["HyperParameters"] == {"epochs": "1"}
    assert job["CreationTime"] == START
    assert job["SecondaryStatus"] == "Downloading"
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "k", "Value": "first"}]
    assert len(sm.list_training_jobs()["TrainingJobSummaries"]) == 1


@pytest.mark.parametrize("name", ["bad_name", "-starts-with-dash", "x" * 64, "a" + "-" * 70 + "b", "job\n"])
def test_job_names_outside_the_sagemaker_pattern_are_rejected(sm: Any, name: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        create_training_job(sm, name)
    code, message = error_of(excinfo)
    assert code == "ValidationException"
    assert " validation error" in message and f"Value '{name}' at 'trainingJobName' failed to" in message
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []


UNCHECKED = Config(parameter_validation=False)  # botocore's own min/required checks would come first


@pytest.mark.parametrize(
    ("call", "params", "message"),
    [
        (
            "create_training_job",
            {"Tags": [{"Key": "anubis-action-id", "Value": "nightly run #42 (retry!)"}]},
            "1 validation error detected: Value 'nightly run #42 (retry!)' at 'tags.1.member.value' failed "
            "to satisfy constraint: Member must satisfy regular expression pattern: "
            "([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)",
        ),
        (
            "create_training_job",
            {"HyperParameters": {"classes": "x" * 2501}},
            f"1 validation error detected: Value '{{classes={'x' * 2501}}}' at 'hyperParameters' failed to "
            "satisfy constraint: Map value must satisfy constraint: [Member must have length less than or "
            "equal to 2500]",
        ),
        (
            "create_training_job",
            {"StoppingCondition": {"MaxRuntimeInSeconds": 0}, "EnableManagedSpotTraining": True},
            "1 validation error detected: Value '0' at 'stoppingCondition.maxRuntimeInSeconds' failed to "
            "satisfy constraint: Member must have value greater than or equal to 1; Invalid "
            "MaxWaitTimeInSeconds. It is required for managed spot training",
        ),
        (
            "create_training_job",
            {"ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10**16}},
            f"1 validation error detected: Value '{10**16}' at 'resourceConfig.volumeSizeInGB' failed to "
            "satisfy constraint: Member must have value less than or equal to 2147483647",
        ),
        (
            "describe_training_job",
            {"TrainingJobName": "a" + "-" * 62 + "b"},
            f"1 validation error detected: Value '{'a' + '-' * 62 + 'b'}' at 'trainingJobName' failed to "
            "satisfy constraint: Member must have length less than or equal to 63",
        ),
        (
            "stop_training_job",
            {"TrainingJobName": "job\n"},
            "1 validation error detected: Value 'job\n' at 'trainingJobName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        ),
        (
            "list_training_jobs",
            {"NameContains": "a_b", "MaxResults": 101},
            "2 validation errors detected: Value 'a_b' at 'nameContains' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: [a-zA-Z0-9\\-]+; Value '101' at 'maxResults' "
            "failed to satisfy constraint: Member must have value less than or equal to 100",
        ),
    ],
    ids=[
        "create tag",
        "create hyperparameter",
        "create stopping",
        "create volume",
        "describe",
        "stop",
        "list",
    ],
)
def test_every_request_is_checked_against_the_model(
    local: LocalSageMaker, call: str, params: dict[str, Any], message: str
) -> None:
    sm = boto3.client("sagemaker", region_name=REGION, config=UNCHECKED)
    with pytest.raises(ClientError) as excinfo:
        if call == "create_training_job":
            create_training_job(sm, "job-1", **params)
        else:
            getattr(sm, call)(**params)
    assert error_of(excinfo) == ("ValidationException", message)
    assert sm.list_training_jobs()["TrainingJobSummaries"] == []


def test_a_completed_job_passes_through_every_secondary_status(sm: Any, clock: ManualClock) -> None:
    create_training_job(sm, "job-1")
    seen = []
    for _ in range(5):
        job = describe(sm, "job-1")
        seen.append((job["TrainingJobStatus"], job["SecondaryStatus"], job["LastModifiedTime"]))
        assert ("TrainingEndTime" in job) == (job["TrainingJobStatus"] == "Completed")
        assert ("FinalMetricDataList" in job) == (job["TrainingJobStatus"] == "Completed")
        assert "FailureReason" not in job
        clock.advance({"Starting": 10, "Downloading": 20, "Training": 30}.get(job["SecondaryStatus"], 40))

    assert seen == [
        ("InProgress", "Starting", at(0)),
        ("InProgress", "Downloading", at(10)),
        ("InProgress", "Training", at(30)),
        ("InProgress", "Uploading", at(60)),
        ("Completed", "Completed", at(100)),
    ]
    assert [(t["Status"], t["StartTime"], t.get("EndTime")) for t in job["SecondaryStatusTransitions"]] == [
        ("Starting", at(0), at(10)),
        ("Downloading", at(10), at(30)),
        ("Training", at(30), at(60)),
        ("Uploading", at(60), at(100)),
        ("Completed", at(100), at(100)),
    ]
    assert all(t["StatusMessage"] for t in job["SecondaryStatusTransitions"])
    assert job["TrainingStartTime"] == at(10)
    assert job["TrainingEndTime"] == at(100)
    assert job["TrainingTimeInSeconds"] == 90
    assert job["FinalMetricDataList"][0]["MetricName"] == "train:progress"


def test_an_in_progress_transition_has_no_end_time_yet(sm: Any, clock: ManualClock) -> None:
    create_training_job(sm, "job-1")
    clock.advance(35)
    transitions = describe(sm, "job-1")["SecondaryStatusTransitions"]
    assert [t["Status"] for t in transitions] == ["Starting", "Downloading", "Training"]
    assert "EndTime" not in transitions[-1]


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("rule", "AlgorithmError: boom, exit code 1"),
        ("tag", "AlgorithmError: from a tag - exit code 1"),  # a tag value takes no comma
        ("hyperparameter", DEFAULT_FAILURE_REASON),
    ],
)
def test_a_failing_job_ends_failed_with_its_reason(
    sm: Any, local: LocalSageMaker, clock: ManualClock, how: str, reason: str
) -> None:
    extra: dict[str, Any] = {}
    if how == "rule":
        local.set_outcome("fail-*", TIMELINE.failing(reason))
    elif how == "tag":
        extra["Tags"] = [{"Key": OUTCOME_KEY, "Value": f"fail:{reason}"}]
    else:  # framework estimators JSON-encode hyperparameter values
        extra["HyperParameters"] = {OUTCOME_KEY: '"fail"'}
    create_training_job(sm, "fail-1", **extra)

    clock.advance(59)
    assert describe(sm, "fail-1")["TrainingJobStatus"] == "InProgress"
    clock.advance(1)
    job = describe(sm, "fail-1")

    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Failed", "Failed")
    assert job["FailureReason"] == reason
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Failed",
    ]
    assert job["TrainingEndTime"] == job["LastModifiedTime"] == at(60)
    assert "FinalMetricDataList" not in job


def test_the_newest_matching_rule_wins_over_tags(sm: Any, local: LocalSageMaker, clock: ManualClock) -> None:
    local.set_outcome("job-*", TIMELINE.failing("older"))
    local.set_outcome("job-1", Timeline.uniform(0))
    create_training_job(sm, "job-1", Tags=[{"Key": OUTCOME_KEY, "Value": "fail"}])
    create_training_job(sm, "job-2", Tags=[{"Key": OUTCOME_KEY, "Value": "complete"}])
    clock.advance(60)
    assert describe(sm, "job-1")["TrainingJobStatus"] == "Completed"
    assert describe(sm, "job-2")["FailureReason"] == "older"


def test_an_unknown_outcome_value_is_rejected(sm: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        create_training_job(sm, "job-1", Tags=[{"Key": OUTCOME_KEY, "Value": "explode"}])
    assert error_of(excinfo)[0] == "ValidationException"


def test_stop_moves_an_in_progress_job_to_stopping_then_stopped(sm: Any, clock: ManualClock) -> None:
    create_training_job(sm, "job-1")
    clock.advance(40)

    sm.stop_training_job(TrainingJobName="job-1")
    stopping = describe(sm, "job-1")
    clock.advance(4.999)
    still_stopping = describe(sm, "job-1")
    clock.advance(0.001)
    stopped = describe(sm, "job-1")

    assert (stopping["TrainingJobStatus"], stopping["SecondaryStatus"]) == ("Stopping", "Stopping")
    assert stopping["LastModifiedTime"] == at(40)
    assert still_stopping["SecondaryStatus"] == "Stopping"
    assert (stopped["TrainingJobStatus"], stopped["SecondaryStatus"]) == ("Stopped", "Stopped")
    assert [(t["Status"], t["StartTime"], t["EndTime"]) for t in stopped["SecondaryStatusTransitions"]] == [
        ("Starting", at(0), at(10)),
        ("Downloading", at(10), at(30)),
        ("Training", at(30), at(40)),
        ("Stopping", at(40), at(45)),
        ("Stopped", at(45), at(45)),
    ]
    assert stopped["TrainingEndTime"] == stopped["LastModifiedTime"] == at(45)
    assert "FailureReason" not in stopped and "FinalMetricDataList" not in stopped


@pytest.mark.parametrize(("elapsed", "status"), [(0, "Stopping"), (5, "Stopped"), (100, "Completed")])
def test_stopping_a_job_that_is_not_in_progress_is_rejected(
    sm: Any, clock: ManualClock, elapsed: float, status: str
) -> None:
    create_training_job(sm, "job-1")
    if status != "Completed":
        sm.stop_training_job(TrainingJobName="job-1")
    clock.advance(elapsed)

    with pytest.raises(ClientError) as excinfo:
        sm.stop_training_job(TrainingJobName="job-1")

    assert error_of(excinfo) == (
        "ValidationException",
        f"The request was rejected because the training job is in status {status}.",
    )


def test_stopping_an_unknown_job_is_rejected(sm: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        sm.stop_training_job(TrainingJobName="nope")
    assert error_of(excinfo) == ("ValidationException", "Requested resource not found.")


def test_list_reflects_computed_statuses_and_filters_before_paginating(
    sm: Any, local: LocalSageMaker, clock: ManualClock
) -> None:
    local.set_outcome("fast-*", Timeline.uniform(1))
    for name in ["slow-a", "fast-b", "slow-c", "fast-d", "slow-e"]:
        create_training_job(sm, name)
    clock.advance(9)

    def names(**kwargs: Any) -> list[str]:
        found, token = [], None
        while True:
            page = sm.list_training_jobs(MaxResults=1, **kwargs, **({"NextToken": token} if token else {}))
            assert len(page["TrainingJobSummaries"]) == 1, "no empty page while more results follow"
            found += [s["TrainingJobName"] for s in page["TrainingJobSummaries"]]
            token = page.get("NextToken")
            if not token:
                return found

    assert names(StatusEquals="Completed") == ["fast-b", "fast-d"]
    assert names(StatusEquals="InProgress") == ["slow-a", "slow-c", "slow-e"]
    assert names(NameContains="slow", StatusEquals="InProgress") == ["slow-a", "slow-c", "slow-e"]
    assert names(LastModifiedTimeAfter=at(3)) == ["fast-b", "fast-d"]
    summary = sm.list_training_jobs(NameContains="slow-a")["TrainingJobSummaries"][0]
    assert (summary["TrainingJobStatus"], summary["SecondaryStatus"]) == ("InProgress", "Starting")
    assert sm.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"] == []


def test_last_modified_time_read_back_from_a_response_excludes_that_job(sm: Any, clock: ManualClock) -> None:
    clock.advance(0.1234567)  # a moment finer than the wire's milliseconds
    create_training_job(sm, "job-1")
    last_modified = describe(sm, "job-1")["LastModifiedTime"]
    assert sm.list_training_jobs(LastModifiedTimeAfter=last_modified)["TrainingJobSummaries"] == []


def test_list_tags_on_a_training_job_arn(sm: Any) -> None:
    tags = [{"Key": "anubis-action-id", "Value": "a-1"}, {"Key": "team", "Value": "x"}]
    arn = create_training_job(sm, "job-1", Tags=tags)
    assert sm.list_tags(ResourceArn=arn)["Tags"] == tags


def test_search_by_tag_returns_only_the_matching_job(sm: Any, clock: ManualClock) -> None:
    for index in range(3):
        create_training_job(
            sm, f"job-{index}", Tags=[{"Key": "anubis-action-id", "Value": f"action-{index}"}]
        )
    clock.advance(15)

    def search(*filters: dict[str, str]) -> list[dict[str, Any]]:
        results = sm.search(Resource="TrainingJob", SearchExpression={"Filters": list(filters)})["Results"]
        return [result["TrainingJob"] for result in results]

    found = search({"Name": "Tags.anubis-action-id", "Operator": "Equals", "Value": "action-1"})
    assert [job["TrainingJobName"] for job in found] == ["job-1"]
    assert found[0]["TrainingJobArn"].endswith(":training-job/job-1")
    assert found[0]["SecondaryStatus"] == "Downloading"
    assert {"Key": "anubis-action-id", "Value": "action-1"} in found[0]["Tags"]
    assert search({"Name": "Tags.anubis-action-id", "Operator": "Equals", "Value": "action-9"}) == []
    # moto alone stops at the first tag filter; every filter must hold.
    both = [
        {"Name": "Tags.anubis-action-id", "Operator": "Equals", "Value": "action-1"},
        {"Name": "TrainingJobStatus", "Operator": "Equals", "Value": "Completed"},
    ]
    assert search(*both) == []


def test_install_patches_moto_until_uninstall(clock: ManualClock) -> None:
    untouched = SageMakerModelBackend.__dict__["create_training_job"]
    local = LocalSageMaker(clock=clock)
    with local:
        assert SageMakerModelBackend.__dict__["create_training_job"] is not untouched
        assert "call_action" in SageMakerResponse.__dict__
        assert hasattr(SageMakerResponse, "stop_training_job")
        with pytest.raises(RuntimeError):
            LocalSageMaker(clock=clock).install()
    assert SageMakerModelBackend.__dict__["create_training_job"] is untouched
    assert "call_action" not in SageMakerResponse.__dict__
    assert not hasattr(SageMakerResponse, "stop_training_job")
    assert not hasattr(SageMakerModelBackend, "stop_training_job")


def test_jobs_snapshot_and_reset(sm: Any, local: LocalSageMaker, clock: ManualClock) -> None:
    local.set_outcome("*", TIMELINE.failing("r"))
    create_training_job(sm, "job-1")
    clock.advance(60)
    [snapshot] = local.jobs()
    assert (snapshot.name, snapshot.status, snapshot.failure_reason) == ("job-1", "Failed", "r")
    assert snapshot.to_json()["last_modified_time"] == at(60).isoformat()

    local.default_timeline = Timeline.uniform(0)
    local.reset()
    assert local.default_timeline == TIMELINE
    assert local.timeline_for("job-2") == TIMELINE


def test_timeline_and_clock_validation() -> None:
    assert TIMELINE.merged({"outcome": "Failed", "training": 1}) == Timeline(
        10, 20, 1, 40, 5, EndStatus.FAILED, DEFAULT_FAILURE_REASON
    )
    for bad in ({"nope": 1}, {"training": -1}, {"training": "1"}, {"outcome": "Exploded"}):
        with pytest.raises(ValueError):
            TIMELINE.merged(bad)
    with pytest.raises(ValueError):
        ManualClock(START).advance(-1)


def test_fault_injector_delays_every_call_and_fails_a_seeded_fraction() -> None:
    slept: list[float] = []
    faults = FaultInjector(sleep=slept.append)
    assert [faults.before_call() for _ in range(3)] == [None, None, None]
    assert slept == []

    faults.configure(FaultSettings(latency_ms=250, error_rate=0.5, error_kind=ErrorKind.INTERNAL, seed=7))
    outcomes = [faults.before_call() for _ in range(200)]

    assert slept == [0.25] * 200
    errors = outcomes.count(ErrorKind.INTERNAL)
    assert 60 < errors < 140 and outcomes.count(None) == 200 - errors
    assert faults.stats() == {"calls": 203, "delayed": 200, "errors": errors}
    faults.configure(FaultSettings(latency_ms=250, error_rate=0.5, error_kind=ErrorKind.INTERNAL, seed=7))
    assert [faults.before_call() for _ in range(200)] == outcomes, "a seed makes the choice repeatable"

    faults.reset()
    assert faults.stats() == {"calls": 0, "delayed": 0, "errors": 0}
    assert faults.settings == FaultSettings()
    for bad in ({"error_rate": 1.5}, {"latency_ms": -1}, {"error_kind": "boom"}, {"seed": "x"}):
        with pytest.raises(ValueError):
            FaultSettings().merged(bad)
