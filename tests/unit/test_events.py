"""Wire models: every sample event round-trips unchanged, and derived events follow CONTRACT §3-§5."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from sagemaker_executor.domain import events as ev
from tests.conftest import SAMPLES

MODEL_BY_TYPE: dict[str, type[ev.BenchmarkEvent]] = {
    "BAI_APP_BFF": ev.FetcherBenchmarkEvent,
    "BAI_APP_FETCHER": ev.FetcherBenchmarkEvent,
    "BAI_APP_EXECUTOR": ev.ExecutorBenchmarkEvent,
    "BAI_APP_STATUS": ev.StatusMessageBenchmarkEvent,
    "CMD_SUBMIT": ev.CommandRequestEvent,
    "CMD_RETURN": ev.CommandResponseEvent,
}
EVENT_DIR = SAMPLES / "events"


def _load(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENT_DIR / name).read_text())
    return event


def _envelope_samples() -> list[Path]:
    found = []
    for path in sorted(EVENT_DIR.rglob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and data.get("type") in MODEL_BY_TYPE and "action_id" in data:
            found.append(path)
    return found


ENVELOPES = _envelope_samples()


def test_samples_were_found() -> None:
    assert len(ENVELOPES) >= 15


# Samples that are bare envelopes (the payload is not the topic's full payload).
BARE = {"test_events.base_event_as_dict.json"}


@pytest.mark.parametrize("path", ENVELOPES, ids=lambda p: p.name)
def test_sample_round_trips_without_losing_or_renaming_a_field(path: Path) -> None:
    data = json.loads(path.read_text())
    model = ev.BenchmarkEvent if path.name in BARE else MODEL_BY_TYPE[data["type"]]
    parsed = model.model_validate(data)
    assert ev.to_wire(parsed) == data


def test_bff_extras_survive_into_the_executor_event() -> None:
    bff = _load("generated/02.bff.BAI_APP_BFF.json")
    out = ev.executor_event(bff, "job-1")
    assert out["client_sha1"] == bff["client_sha1"]
    assert out["date"] == bff["date"]
    assert out["payload"]["job"] == {"id": "job-1", "output": None, "extras": {}}


def test_crazy_payload_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ev.FetcherPayload.model_validate(_load("from-tests/test_events.test_crazy_json.INVALID.json"))


def test_status_event_matches_the_original_shape() -> None:
    fetcher = _load("generated/04.fetcher.BAI_APP_FETCHER.json")
    expected = _load("generated/05.sm-executor.BAI_APP_STATUS.pending.json")
    status = ev.status_event(
        fetcher, ev.Status.PENDING, "Processing benchmark submission request...", src_event=fetcher
    )
    sent = ev.stamp_for_send(
        status, topic="BAI_APP_STATUS", service="sm-executor", version="1.0", node="n", now_ms=123
    )
    for volatile in ("message_id", "tstamp", "visited"):
        sent.pop(volatile)
        expected.pop(volatile)
    assert sent == expected


def test_succeeded_and_executor_event_match_the_original() -> None:
    fetcher = _load("generated/04.fetcher.BAI_APP_FETCHER.json")
    expected_exec = _load("generated/07.sm-executor.BAI_APP_EXECUTOR.json")
    expected_status = _load("generated/06.sm-executor.BAI_APP_STATUS.succeeded.json")
    outgoing = ev.executor_event(fetcher, "resnet50SMJob4")
    status = ev.status_event(
        fetcher, ev.Status.SUCCEEDED, "Benchmark successfully created...", src_event=outgoing
    )
    assert status["payload"]["src_event"] == {**outgoing}
    assert {k: v for k, v in status.items() if k not in ("message_id", "tstamp", "visited", "type")} == {
        k: v for k, v in expected_status.items() if k not in ("message_id", "tstamp", "visited", "type")
    } | {"payload": status["payload"]}
    assert status["payload"]["src_event"]["payload"] == expected_status["payload"]["src_event"]["payload"]
    sent = ev.stamp_for_send(
        outgoing, topic="BAI_APP_EXECUTOR", service="sm-executor", version="1.0", node="n", now_ms=5
    )
    assert sent["payload"] == expected_exec["payload"]
    assert [v["svc"] for v in sent["visited"]] == [v["svc"] for v in expected_exec["visited"]]
    assert sent["type"] == "BAI_APP_EXECUTOR"
    assert sent["tstamp"] == 5 and sent["visited"][-1]["tstamp"] <= sent["tstamp"]


def test_command_response_copies_the_command_envelope() -> None:
    command = _load("generated/10.bff.CMD_SUBMIT.cancel.json")
    expected = _load("generated/12.sm-executor.CMD_RETURN.cancel-ok.json")
    response = ev.command_response(command, 0, "Cancel command processed successfully")
    assert response["action_id"] == command["action_id"]
    assert response["payload"]["return_code"] == 0
    assert response["payload"]["cmd_submit"] == command
    assert set(response["payload"]) == set(expected["payload"])


def test_status_values_are_the_contract_strings() -> None:
    assert ev.Status.METRICS_AVAILABLE.value == "METRICS AVAILABLE"
    assert {s.value for s in ev.Status} == {
        "PENDING",
        "RUNNING",
        "FAILED",
        "ERROR",
        "INITIALIZING",
        "SUCCEEDED",
        "CANCELED",
        "METRICS AVAILABLE",
    }
