"""Local SageMaker: ListTrainingJobs and Search answered over moto's training jobs, as SageMaker does.

Owns the reading side of the local SageMaker (``local.sagemaker`` is its one caller, after it has
brought every job's status up to date): ``list_page`` filters jobs by name, status and creation and
modification times *before* paginating, with ``NextToken`` the index of the next job;
``search_predicate`` turns a Search expression on training jobs into a test of a job's
DescribeTrainingJob fields that honours every filter (``Equals``, ``NotEquals``, ``Contains``,
``Exists``, ``NotExists`` on any dotted field or ``Tags.<key>``, combined with ``And`` or ``Or``).

Also ``JobSnapshot``, a job as ``LocalSageMaker.jobs()`` (the server's ``jobs`` endpoint) reports it.

Not copied: ListTrainingJobs ignores ``SortBy``/``SortOrder`` (creation order) and returns
everything when ``MaxResults`` is absent; Search ignores ``MaxResults``/``SortBy`` and rejects
nested filters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from moto.sagemaker.exceptions import AWSValidationException

from sagemaker_executor.local.timeline import aware


@dataclass(frozen=True)
class JobSnapshot:
    """A training job as the local SageMaker currently reports it."""

    name: str
    arn: str
    status: str
    secondary_status: str
    failure_reason: str | None
    creation_time: datetime
    last_modified_time: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "arn": self.arn,
            "status": self.status,
            "secondary_status": self.secondary_status,
            "failure_reason": self.failure_reason,
            "creation_time": self.creation_time.isoformat(),
            "last_modified_time": self.last_modified_time.isoformat(),
        }

    @classmethod
    def of(cls, job: Any) -> JobSnapshot:
        """The snapshot of moto's job object ``job``, whose status is up to date."""
        return cls(
            name=job.training_job_name,
            arn=job.arn,
            status=job.training_job_status,
            secondary_status=job.secondary_status,
            failure_reason=getattr(job, "failure_reason", None),
            creation_time=aware(job.creation_time),
            last_modified_time=aware(job.last_modified_time),
        )


def list_page(
    jobs: list[Any],
    next_token: str | None = None,
    max_results: int | None = None,
    creation_time_after: datetime | None = None,
    creation_time_before: datetime | None = None,
    last_modified_time_after: datetime | None = None,
    last_modified_time_before: datetime | None = None,
    name_contains: str | None = None,
    status_equals: str | None = None,
) -> dict[str, Any]:
    """The ListTrainingJobs answer over moto's job objects ``jobs``, with moto's arguments."""

    def within(moment: datetime, after: datetime | None, before: datetime | None) -> bool:
        return (after is None or aware(moment) > aware(after)) and (
            before is None or aware(moment) < aware(before)
        )

    matching = [
        job
        for job in jobs
        if (name_contains is None or name_contains in job.training_job_name)
        and (status_equals is None or job.training_job_status == status_equals)
        and within(job.creation_time, creation_time_after, creation_time_before)
        and within(job.last_modified_time, last_modified_time_after, last_modified_time_before)
    ]
    start = _page_start(next_token, len(matching))
    end = len(matching) if not max_results else start + max_results
    return {
        "TrainingJobSummaries": [_summary(job) for job in matching[start:end]],
        "NextToken": str(end) if end < len(matching) else None,
    }


def search_predicate(search_expression: Any) -> Callable[[Mapping[str, Any]], bool]:
    """Whether a training job's fields match the Search expression; an expression with fields other
    than ``Filters`` and ``Operator`` raises ``ValidationException``."""
    expression = search_expression or {}
    unsupported = set(expression) - {"Filters", "Operator"}
    if unsupported:
        raise AWSValidationException(
            f"Search expression fields {sorted(unsupported)} are not supported by the local SageMaker"
        )
    filters = expression.get("Filters") or []
    combine = any if expression.get("Operator") == "Or" else all
    return lambda job_fields: not filters or combine(_filter_matches(job_fields, f) for f in filters)


def _search_value(job_fields: Mapping[str, Any], name: str) -> Any:
    if name.startswith("Tags."):
        key = name[len("Tags.") :]
        return next((tag["Value"] for tag in job_fields.get("Tags", []) if tag["Key"] == key), None)
    value: Any = job_fields
    for part in name.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _filter_matches(job_fields: Mapping[str, Any], search_filter: Mapping[str, Any]) -> bool:
    actual = _search_value(job_fields, search_filter["Name"])
    operator = str(search_filter.get("Operator", "Equals"))
    expected = str(search_filter.get("Value", ""))
    if operator == "Exists":
        return actual is not None
    if operator == "NotExists":
        return actual is None
    if actual is None:
        return operator == "NotEquals"
    text = actual.isoformat() if isinstance(actual, datetime) else str(actual)
    if operator == "Equals":
        return text == expected
    if operator == "NotEquals":
        return text != expected
    if operator == "Contains":
        return expected in text
    raise AWSValidationException(f"Search operator {operator} is not supported by the local SageMaker")


def _page_start(next_token: str | None, total: int) -> int:
    if not next_token:
        return 0
    try:
        start = int(next_token)
    except ValueError:
        start = -1
    if not 0 <= start <= total:
        raise AWSValidationException(f'Invalid pagination token because "{next_token}".')
    return start


def _summary(job: Any) -> dict[str, Any]:
    return {
        "TrainingJobName": job.training_job_name,
        "TrainingJobArn": job.arn,
        "CreationTime": job.creation_time,
        "TrainingEndTime": job.training_end_time,
        "LastModifiedTime": job.last_modified_time,
        "TrainingJobStatus": job.training_job_status,
        "SecondaryStatus": job.secondary_status,
    }
