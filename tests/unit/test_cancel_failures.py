"""A cancel that SageMaker refuses (``service.commands.CommandHandler``): the user gets a FAILED status
about the target action and the command a failed response carrying SageMaker's reason, whether the
refusal comes while finding the job or while stopping it."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from sagemaker_executor.domain.errors import PermanentError
from sagemaker_executor.service.commands import CommandHandler
from sagemaker_executor.service.emitter import StatusEmitter
from tests.builders import cancel_command
from tests.fakes import FakeSink

DENIED = "AccessDeniedException: not authorized to perform sagemaker:StopTrainingJob"


class RefusingJobs:
    """One InProgress job; ``refuse`` names the call SageMaker answers with AccessDenied."""

    def __init__(self, refuse: str) -> None:
        self.refuse = refuse

    def _maybe_refuse(self, call: str) -> None:
        if call == self.refuse:
            raise PermanentError(DENIED)

    def describe(self, job_name: str) -> dict[str, Any]:
        self._maybe_refuse("describe")
        return {
            "TrainingJobName": job_name,
            "TrainingJobArn": "arn:" + job_name,
            "TrainingJobStatus": "InProgress",
        }

    def tags(self, job_arn: str) -> dict[str, str]:
        return {}

    def find_by_tag(self, key: str, value: str) -> list[str]:
        return []

    def stop(self, job_name: str) -> None:
        self._maybe_refuse("stop")


@pytest.mark.parametrize("refuse", ["describe", "stop"])
def test_a_refused_cancel_fails_with_a_status_and_the_reason_in_the_response(refuse: str, caplog) -> None:
    sink = FakeSink()
    handler = CommandHandler(
        RefusingJobs(refuse), StatusEmitter(sink, status_topic="STATUS", node="n"), "RETURN"
    )
    command = cancel_command("target-1")
    with caplog.at_level(logging.WARNING, logger="sagemaker_executor.service.commands"):
        assert handler.handle(command) == "failed"
    sent = {s.topic: json.loads(s.value) for s in sink.pending}
    status, response = sent["STATUS"], sent["RETURN"]
    assert status["action_id"] == "target-1" and status["payload"]["status"] == "FAILED"
    assert status["payload"]["message"] == (
        "An error occurred when attempting to delete resources related to target-1. Please check the "
        f"status of the deletion command ({command['action_id']} for additional information."
    )
    assert response["payload"]["return_code"] == 1
    assert response["payload"]["message"] == f"Cancel command failed: {DENIED}"
    assert [r.getMessage() for r in caplog.records] == [f"cancel of action target-1 failed: {DENIED}"]
