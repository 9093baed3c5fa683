"""Issue 9, names and ids: an action id SageMaker would not take as a job name gives a hashed one, and
ids copied into the executor's tags are valid tag values or encoded so that they are; redelivery and
cancel still find the job. End to end through the service on in-memory adapters (``tests/harness.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from sagemaker_executor.domain import constraints
from sagemaker_executor.domain.request import create_training_job_request, source_uri
from sagemaker_executor.domain.translation import TAG_ACTION_ID, TAG_CLIENT_ID, job_name_for, tag_value_for
from tests.builders import SITE, cancel_command, fetcher_event, minimal_contents
from tests.fakes import record
from tests.harness import CMD, FETCHER, Harness

BAD_IDS = [
    pytest.param("3f1c6a3e-8a55-4c8e-9a3b-2d5c0f4f6e21\n", id="an action id ending in a newline"),
    pytest.param("a" + "-" * 79 + "b", id="an 81-character action id"),
    pytest.param("nightly run #42 (retry!)", id="an action id that is no tag value"),
]


def _request_of(h: Harness, job_name: str) -> dict[str, Any]:
    spec = h.jobs.jobs[job_name].spec
    assert spec is not None
    return create_training_job_request(spec, source_uri(spec), SITE.region)


@pytest.mark.parametrize("action_id", BAD_IDS)
def test_an_id_sagemaker_would_refuse_names_and_tags_a_valid_job(tmp_path: Any, action_id: str) -> None:
    event = fetcher_event(action_id=action_id)
    h = Harness(tmp_path, [record(FETCHER, event)])
    h.drain()
    assert [status for status, _ in h.statuses()] == ["PENDING", "SUCCEEDED"]
    (name,) = h.jobs.jobs
    assert name == job_name_for(action_id) and name.startswith("anubis-") and len(name) == 39
    assert h.sink.on("BAI_APP_EXECUTOR")[0]["payload"]["job"]["id"] == name
    request = _request_of(h, name)
    assert constraints.validate("CreateTrainingJob", request) == []
    assert {tag["Key"]: tag["Value"] for tag in request["Tags"]}[TAG_ACTION_ID] == tag_value_for(action_id)
    assert tag_value_for(action_id) != action_id or action_id == "a" + "-" * 79 + "b"


@pytest.mark.parametrize("action_id", BAD_IDS)
def test_redelivery_and_cancel_find_the_job_of_such_an_id(tmp_path: Any, action_id: str) -> None:
    custom = minimal_contents(custom_params={"sagemaker_job_name": "custom-name"})  # found by its tag only
    event = fetcher_event(custom, action_id=action_id)
    h = Harness(tmp_path, [record(FETCHER, event, 0), record(FETCHER, event, 1)])
    h.drain()
    assert [status for status, _ in h.statuses()] == ["PENDING", "SUCCEEDED", "PENDING", "SUCCEEDED"]
    assert list(h.jobs.jobs) == ["custom-name"] and h.jobs.create_calls == 2
    h.source.log.append(record(CMD, cancel_command(action_id), 0))
    h.drain()
    assert h.sink.on("CMD_RETURN")[-1]["payload"]["return_code"] == 0
    assert h.jobs.stopped == ["custom-name"]


def test_a_client_id_that_is_no_tag_value_is_encoded_and_still_owns_its_job(tmp_path: Any) -> None:
    client_id = "user@example.org; team=perf"
    event = fetcher_event(client_id=client_id)
    h = Harness(tmp_path, [record(FETCHER, event)])
    h.drain()
    (job,) = h.jobs.jobs.values()
    assert job.tags[TAG_CLIENT_ID] == tag_value_for(client_id) != client_id
    h.source.log.append(record(CMD, cancel_command(event["action_id"], client_id=client_id), 0))
    h.drain()
    assert h.sink.on("CMD_RETURN")[-1]["payload"]["return_code"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "3f1c6a3e-8a55-4c8e-9a3b-2d5c0f4f6e21",
        "ca2f097889997d8200b9abc2f8d2ec822246845e",
        "x\n",
        "#" * 200,
        "é" * 1024,
    ],
)
def test_tag_values_for_ids_are_valid_deterministic_and_distinct(text: str) -> None:
    value = tag_value_for(text)
    assert constraints.is_valid(constraints.TAG_VALUE, value)
    assert value == tag_value_for(text) and value != tag_value_for(text + "!")
    if constraints.is_valid(constraints.TAG_VALUE, text):
        assert value == text  # uuid4s and SHA-1s are kept as they are


@pytest.mark.parametrize("action_id", ["job-1", "x" * 63, "x" * 64, "a\n", "", "a" + "-" * 70 + "b", "é"])
def test_default_job_names_are_always_valid(action_id: str) -> None:
    name = job_name_for(action_id)
    assert constraints.is_valid(constraints.TRAINING_JOB_NAME, name)
    assert (name == action_id) is constraints.is_valid(constraints.TRAINING_JOB_NAME, action_id)
