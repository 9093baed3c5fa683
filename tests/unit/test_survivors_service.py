"""The submission's answers and the committed offsets, where mutation testing (issue 13) found them
unchecked: the ERROR for a job name SageMaker already has, the retried error when the job cannot be
read back yet, the ``submit`` client's pre-flight answer, the job name on the log lines of a
creation, and what a partition commits after it was revoked and assigned again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sagemaker_executor.adapters import sourcedir
from sagemaker_executor.domain.errors import JobAlreadyExists, JobNotFound, TransientError
from sagemaker_executor.domain.events import FetcherBenchmarkEvent
from sagemaker_executor.domain.translation import TrainingJobSpec
from sagemaker_executor.logs import current_context
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.offsets import OffsetLedger
from sagemaker_executor.service.submission import (
    SubmissionHandler,
    SubmissionOutcome,
    SubmissionSettings,
    preflight_errors,
)
from tests.builders import SITE, fetcher_event, minimal_contents
from tests.fakes import FakeJobs, FakeScripts, FakeSink

STATUS = "BAI_APP_STATUS"
NAME = "fixed-name"


class TakenName(FakeJobs):
    """SageMaker where ``NAME`` is taken: by a job with ``tags``, or not describable yet (None)."""

    def __init__(self, tags: dict[str, str] | None) -> None:
        super().__init__()
        self.owner_tags = tags

    def create(self, spec: TrainingJobSpec, source_dir: Path | None) -> None:
        raise JobAlreadyExists(spec.job_name)

    def describe(self, job_name: str) -> dict[str, Any]:
        if self.owner_tags is None:
            raise JobNotFound(job_name)
        return {"TrainingJobName": job_name, "TrainingJobArn": "arn:" + job_name}

    def tags(self, job_arn: str) -> dict[str, str]:
        return dict(self.owner_tags or {})


def _handler(jobs: FakeJobs, tmp_path: Path) -> tuple[SubmissionHandler, FakeSink]:
    sink = FakeSink()
    emitter = StatusEmitter(sink, status_topic=STATUS, node="n", clock_ms=lambda: 1000)
    settings = SubmissionSettings(SITE, "BAI_APP_EXECUTOR", str(tmp_path), 10**6)
    return SubmissionHandler(jobs, FakeScripts(), emitter, settings, sources=sourcedir), sink


def _last_status(sink: FakeSink) -> tuple[str, str]:
    sink.flush()
    payload = sink.on(STATUS)[-1]
    return payload["payload"]["status"], payload["payload"]["message"]


@pytest.mark.parametrize(
    ("tags", "whose"),
    [
        ({}, "a job this service did not create"),
        ({"Owner": "ops"}, "a job this service did not create"),
        ({"anubis-action-id": "other-action"}, "benchmark other-action"),
    ],
)
def test_a_job_name_taken_by_another_job_is_an_error_saying_whose_and_the_fix(
    tmp_path: Path, tags: dict[str, str], whose: str
) -> None:
    handler, sink = _handler(TakenName(tags), tmp_path)
    event = fetcher_event(minimal_contents(custom_params={"sagemaker_job_name": NAME}))

    assert handler.handle(event).outcome is SubmissionOutcome.ERROR
    assert _last_status(sink) == (
        "ERROR",
        f"Benchmark creation failed. A SageMaker training job named '{NAME}' already exists (it belongs to "
        f"{whose}) and job names can never be reused: choose another custom_params.sagemaker_job_name, "
        "or leave it out to use the action id.",
    )


def test_a_taken_name_that_cannot_be_described_yet_is_retried_saying_so(tmp_path: Path) -> None:
    handler, _ = _handler(TakenName(None), tmp_path)
    event = fetcher_event(minimal_contents(custom_params={"sagemaker_job_name": NAME}))

    with pytest.raises(TransientError) as retried:
        handler.handle(event)
    # The user reads it in the ERROR if SageMaker never answers within the give-up time.
    assert str(retried.value) == f"training job {NAME} exists but cannot be described yet"


def test_the_job_name_is_on_every_log_line_of_the_jobs_creation(tmp_path: Path) -> None:
    seen: list[tuple[str | None, str | None]] = []

    class Recording(FakeJobs):
        def create(self, spec: TrainingJobSpec, source_dir: Path | None) -> None:
            seen.append(current_context())
            super().create(spec, source_dir)

    handler, _ = _handler(Recording(), tmp_path)
    event = fetcher_event(minimal_contents(custom_params={"sagemaker_job_name": NAME}))

    assert handler.handle(event).outcome is SubmissionOutcome.SUBMITTED
    assert [job_name for _, job_name in seen] == [NAME]


def test_the_submit_clients_preflight_answers_a_bad_descriptor_with_its_error(tmp_path: Path) -> None:
    event = fetcher_event(minimal_contents(env={"docker_image": "i", "vars": {"1A": "x"}}))
    FetcherBenchmarkEvent.model_validate(event)  # the event itself is fine

    assert preflight_errors(event, SITE) == [
        "Cannot process the request: descriptor field 'env.vars.1A': variable name '1A' (str) must be "
        "letters, digits and '_', not starting with a digit"
    ]


def test_a_partition_assigned_again_commits_only_past_what_finished_since() -> None:
    ledger = OffsetLedger()
    p = ("t", 0)
    ledger.started(p, 5)
    ledger.started(p, 6)
    ledger.finished(p, 6)  # 5 still waits: nothing may be committed
    assert ledger.committable() == {}
    ledger.forget([p])  # revoked; the next owner starts from the commit, offset 5

    ledger.started(p, 5)  # assigned back: 5 and 6 are read again
    ledger.started(p, 6)
    ledger.finished(p, 5)

    assert ledger.in_flight() == 1
    assert ledger.committable() == {p: 6}  # not 7: 6 runs again and is not finished
