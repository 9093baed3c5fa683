"""The pure rules of ``domain.lifecycle``: SageMaker's (primary, secondary) status → Anubis status.

One table row per status pair SageMaker reports (botocore's ``SecondaryStatus`` enum, with the primary
``TrainingJobStatus`` each is paired with); then the messages: failure reasons, log locations, timing,
and the final metrics.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest
from botocore.model import StringShape

from sagemaker_executor.domain.events import Status
from sagemaker_executor.domain.joblog import LOG_GROUP
from sagemaker_executor.domain.lifecycle import (
    TERMINAL_JOB_STATUSES,
    JobState,
    final_metrics,
    needs_description,
    report_for,
)

REGION = "eu-west-1"
JOB = "anubis-job-1"
START = datetime(2030, 1, 1, 10, 0, 0, tzinfo=UTC)

# (TrainingJobStatus, SecondaryStatus, Anubis status, final)
TABLE: list[tuple[str, str, Status, bool]] = [
    ("InProgress", "Starting", Status.PENDING, False),
    ("InProgress", "Pending", Status.PENDING, False),
    ("InProgress", "LaunchingMLInstances", Status.INITIALIZING, False),
    ("InProgress", "PreparingTrainingStack", Status.INITIALIZING, False),
    ("InProgress", "Downloading", Status.INITIALIZING, False),
    ("InProgress", "DownloadingTrainingImage", Status.INITIALIZING, False),
    ("InProgress", "Training", Status.RUNNING, False),
    ("InProgress", "Uploading", Status.RUNNING, False),
    ("InProgress", "Restarting", Status.RUNNING, False),
    ("InProgress", "Updating", Status.RUNNING, False),
    # Managed spot: interrupted instances are replaced and the job goes on (AWS lists it under InProgress).
    ("InProgress", "Interrupted", Status.RUNNING, False),
    ("InProgress", "Stopping", Status.RUNNING, False),
    ("Stopping", "Stopping", Status.RUNNING, False),
    ("Completed", "Completed", Status.SUCCEEDED, True),
    ("Failed", "Failed", Status.FAILED, True),
    ("Failed", "MaxRuntimeExceeded", Status.FAILED, True),
    ("Stopped", "Stopped", Status.CANCELED, True),
    ("Stopped", "MaxRuntimeExceeded", Status.FAILED, True),
    ("Stopped", "MaxWaitTimeExceeded", Status.FAILED, True),
    ("Stopped", "Interrupted", Status.FAILED, True),
]


def state(status: str, secondary: str, name: str = JOB) -> JobState:
    return JobState(name, status, secondary)


def ended_description(status: str, secondary: str, **extra: Any) -> dict[str, Any]:
    return {"TrainingJobName": JOB, "TrainingJobStatus": status, "SecondaryStatus": secondary, **extra}


@pytest.mark.parametrize(("primary", "secondary", "expected", "final"), TABLE)
def test_status_pairs_map_to_anubis_statuses(
    primary: str, secondary: str, expected: Status, final: bool
) -> None:
    description = ended_description(primary, secondary) if primary in TERMINAL_JOB_STATUSES else None
    report = report_for(state(primary, secondary), description, REGION)
    assert (report.status, report.final) == (expected, final)
    assert JOB in report.message


def test_the_table_covers_every_secondary_status_botocore_knows() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape = model.shape_for("SecondaryStatus")
    assert isinstance(shape, StringShape)
    known = set(shape.enum)
    assert known <= {secondary for _, secondary, _, _ in TABLE}


@pytest.mark.parametrize("primary", ["InProgress", "Stopping"])
def test_in_progress_messages_name_both_statuses(primary: str) -> None:
    report = report_for(state(primary, "Downloading"), None, REGION)
    assert f"{primary}/Downloading" in report.message
    assert "Logs:" not in report.message


def test_an_unknown_secondary_status_is_reported_by_name_and_not_final() -> None:
    report = report_for(state("InProgress", "Rebalancing"), None, REGION)
    assert report.final is False
    assert report.status is Status.RUNNING
    assert "Rebalancing" in report.message


def test_an_in_progress_job_without_a_secondary_status_is_running() -> None:
    report = report_for(state("InProgress", ""), None, REGION)
    assert (report.status, report.final) == (Status.RUNNING, False)
    assert f"training job {JOB}: InProgress)" in report.message


def test_a_failed_job_carries_its_failure_reason() -> None:
    reason = "AlgorithmError: ExecuteUserScriptError: exit code 1"
    description = ended_description("Failed", "Failed", FailureReason=reason)
    report = report_for(state("Failed", "Failed"), description, REGION)
    assert report.status is Status.FAILED
    assert reason in report.message
    assert "Failed" in report.message


def test_a_failed_job_without_a_reason_says_so() -> None:
    report = report_for(state("Failed", "Failed"), ended_description("Failed", "Failed"), REGION)
    assert "no reason given" in report.message


@pytest.mark.parametrize(
    ("secondary", "words"),
    [
        ("MaxRuntimeExceeded", "maximum runtime"),
        ("MaxWaitTimeExceeded", "maximum wait time"),
        ("Interrupted", "interrupted"),
    ],
)
def test_a_stopped_job_explains_why_it_failed(secondary: str, words: str) -> None:
    report = report_for(state("Stopped", secondary), ended_description("Stopped", secondary), REGION)
    assert report.status is Status.FAILED
    assert words in report.message


def test_a_failure_reason_wins_over_the_secondary_status_explanation() -> None:
    description = ended_description("Stopped", "MaxRuntimeExceeded", FailureReason="Out of time")
    report = report_for(state("Stopped", "MaxRuntimeExceeded"), description, REGION)
    assert "Out of time" in report.message


def test_an_ended_job_without_a_description_still_gets_a_final_report() -> None:
    report = report_for(state("Completed", "Completed"), None, REGION)
    assert (report.status, report.final) == (Status.SUCCEEDED, True)


def test_the_training_message_says_where_the_logs_are() -> None:
    report = report_for(state("InProgress", "Training"), None, REGION)
    assert LOG_GROUP == "/aws/sagemaker/TrainingJobs"
    assert f"log group {LOG_GROUP}" in report.message
    assert f"{JOB}/algo-" in report.message
    assert f"prefix={JOB}/" in report.message
    assert f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}" in report.message


@pytest.mark.parametrize(
    ("primary", "secondary"),
    [("Completed", "Completed"), ("Failed", "Failed"), ("Stopped", "Stopped")],
)
def test_final_messages_carry_wall_and_billable_time(primary: str, secondary: str) -> None:
    description = ended_description(
        primary,
        secondary,
        TrainingStartTime=START,
        TrainingEndTime=START + timedelta(hours=1, minutes=2, seconds=3),
        BillableTimeInSeconds=3000,
    )
    report = report_for(state(primary, secondary), description, REGION)
    assert report.final
    assert "wall time 1h02m03s" in report.message
    assert "billable time 50m00s" in report.message


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0, "0s"), (45, "45s"), (125, "2m05s"), (3600, "1h00m00s"), (59.6, "1m00s")]
)
def test_durations_are_shown_in_hours_minutes_and_seconds(seconds: float, shown: str) -> None:
    description = ended_description(
        "Completed",
        "Completed",
        TrainingStartTime=START,
        TrainingEndTime=START + timedelta(seconds=seconds),
    )
    report = report_for(state("Completed", "Completed"), description, REGION)
    assert f"wall time {shown}" in report.message
    assert "billable" not in report.message


def test_no_timing_when_the_times_are_missing_or_backwards() -> None:
    backwards = ended_description(
        "Completed", "Completed", TrainingStartTime=START, TrainingEndTime=START - timedelta(seconds=5)
    )
    for description in (ended_description("Completed", "Completed"), backwards):
        report = report_for(state("Completed", "Completed"), description, REGION)
        assert "wall time" not in report.message
        assert report.message.endswith(f"training job {JOB} completed")


def test_final_metrics_convert_the_final_metric_data_list() -> None:
    stamp = datetime(2030, 1, 1, 11, 0, 0, 250000, tzinfo=UTC)
    description = {
        "FinalMetricDataList": [
            {"MetricName": "accuracy", "Value": 0.93, "Timestamp": stamp},
            {"MetricName": "epochs", "Value": 3, "Timestamp": stamp},
            {"MetricName": "no-stamp", "Value": 1.5},
        ]
    }
    millis = int(stamp.timestamp() * 1000)
    assert final_metrics(description) == [
        ("accuracy", 0.93, millis),
        ("epochs", 3.0, millis),
        ("no-stamp", 1.5, 0),
    ]
    assert all(isinstance(value, float) for _, value, _ in final_metrics(description))


@pytest.mark.parametrize("description", [{}, {"FinalMetricDataList": []}, {"FinalMetricDataList": None}])
def test_no_final_metrics(description: dict[str, Any]) -> None:
    assert final_metrics(description) == []


def test_job_state_of_a_list_summary() -> None:
    summary = {
        "TrainingJobName": JOB,
        "TrainingJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:training-job/{JOB}",
        "CreationTime": START,
        "LastModifiedTime": START,
        "TrainingJobStatus": "InProgress",
        "SecondaryStatus": "Training",
    }
    job_state = JobState.of(summary)
    assert job_state == JobState(JOB, "InProgress", "Training")
    assert not job_state.ended
    assert not needs_description(job_state)
    assert job_state.to_json() == {"status": "InProgress", "secondary": "Training"}


def test_job_state_of_a_description() -> None:
    description = ended_description(
        "Failed", "Failed", FailureReason="boom", TrainingStartTime=START, ModelArtifacts={}
    )
    job_state = JobState.of(description)
    assert job_state == JobState(JOB, "Failed", "Failed")
    assert job_state.ended
    assert needs_description(job_state)


def test_job_state_of_an_answer_without_a_secondary_status() -> None:
    answer = {"TrainingJobName": JOB, "TrainingJobStatus": "InProgress", "SecondaryStatus": None}
    assert JobState.of(answer) == JobState(JOB, "InProgress", "")
    assert JobState.of({"TrainingJobName": JOB}) == JobState(JOB, "", "")


def test_terminal_job_statuses_are_exactly_completed_failed_stopped() -> None:
    assert frozenset({"Completed", "Failed", "Stopped"}) == TERMINAL_JOB_STATUSES
