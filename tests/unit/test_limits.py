"""The size rule of ``domain.limits``: what statuses and responses copy is bounded, and they always fit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagemaker_executor.domain import events as ev
from sagemaker_executor.domain import limits
from sagemaker_executor.service.emitter import StatusEmitter
from tests.builders import cancel_command, fetcher_event
from tests.fakes import FakeSink

# One character of each JSON cost: 1 byte, 2 (escaped quote), 6 (\uXXXX) and 12 (a surrogate pair).
CHARS = ("a", '"', "é", "\x00", "😀")


def emitter(sink: FakeSink) -> StatusEmitter:
    return StatusEmitter(sink, status_topic="BAI_APP_STATUS", node="n" * 253, clock_ms=lambda: 10**13 - 1)


@pytest.mark.parametrize("char", CHARS)
def test_a_long_string_keeps_its_start_and_length_within_the_bound(char: str) -> None:
    text = char * 600_000
    cut = limits.bound_text(text, 1024)
    assert limits.json_size(cut) <= 1024
    assert cut.startswith(char * 10) and cut.endswith("... [cut: 600000 characters]")


def test_a_string_within_the_bound_is_kept_as_it_is() -> None:
    assert limits.bound_text("x" * 1022, 1024) == "x" * 1022


def test_other_values_over_the_bound_become_a_note_of_what_they_were() -> None:
    assert limits.bound_value({"a": "x" * 2000}, 1024) == "[cut: an object of 2008 bytes]"
    assert limits.bound_value([1, 2], 1024) == [1, 2]


def test_the_copy_cuts_every_envelope_field_but_keeps_the_ids_and_the_payload_whole() -> None:
    event = fetcher_event()
    event.update(
        client_username="u" * 600_000,
        client_version="v" * 5000,
        parent_action_id="p" * 5000,
        tstamp={"nested": "t" * 5000},
        visited=[{"svc": f"s{i}", "tstamp": i, "version": "1", "node": None} for i in range(1000)],
        **{f"extra{i}": "e" * 5000 for i in range(20)},
        **{"n" * 100: "long name"},
    )
    copy = limits.bounded_copy(event, ev.ENVELOPE_FIELDS)
    assert copy["action_id"] == event["action_id"] and copy["client_id"] == event["client_id"]
    assert copy["payload"] == event["payload"]
    for name in ("client_username", "client_version", "parent_action_id", "tstamp"):
        assert limits.json_size(copy[name]) <= limits.MAX_TEXT_BYTES
    assert copy["client_username"].endswith("[cut: 600000 characters]")
    assert [v["svc"] for v in copy["visited"]] == [f"s{i}" for i in range(984, 1000)]
    extras = [k for k in copy if k.startswith("extra")]
    assert extras == [f"extra{i}" for i in range(limits.MAX_EXTRA_FIELDS)] and "n" * 100 not in copy
    assert limits.json_size({k: v for k, v in copy.items() if k != "payload"}) < 30_000


def test_a_huge_visited_entry_keeps_only_its_known_fields_cut() -> None:
    entry = {"svc": "s" * 10_000, "tstamp": 1, "version": "1", "node": "n", "junk": "j" * 10_000}
    (kept,) = limits.bounded_copy({"visited": [entry]}, ev.ENVELOPE_FIELDS)["visited"]
    assert set(kept) == {"svc", "tstamp", "version", "node"}
    assert limits.json_size(kept) <= limits.MAX_VISITED_ENTRY_BYTES


def test_a_status_about_a_600000_character_username_is_small_and_keeps_the_ids() -> None:
    event = fetcher_event()
    event["client_username"] = "u" * 600_000
    status = ev.status_event(event, ev.Status.ERROR, "m" * 100_000, src_event=event)
    assert limits.json_size(status) < 40_000  # the message, the envelopes and the 4 KB payload
    assert status["action_id"] == event["action_id"] and status["client_id"] == event["client_id"]
    assert status["payload"]["src_event"]["action_id"] == event["action_id"]
    assert limits.json_size(status["payload"]["message"]) <= limits.MAX_MESSAGE_BYTES


def test_a_response_to_a_huge_command_is_small_and_keeps_the_ids() -> None:
    command = cancel_command("target")
    command["client_username"] = "u" * 600_000
    response = ev.command_response(command, 0, "ok")
    assert limits.json_size(response) < 20_000
    assert response["action_id"] == command["action_id"]
    assert response["payload"]["cmd_submit"]["payload"] == command["payload"]


def test_ids_too_long_to_file_an_answer_under_make_an_event_unanswerable() -> None:
    assert limits.unanswerable(fetcher_event()) is None
    assert limits.unanswerable(fetcher_event(action_id="a" * 1024)) is None
    assert "'action_id' is 1025 bytes" in str(limits.unanswerable(fetcher_event(action_id="a" * 1025)))
    assert "'client_id' is 1200 bytes" in str(limits.unanswerable(fetcher_event(client_id="é" * 200)))


def test_the_largest_field_is_the_one_that_takes_the_room() -> None:
    event = fetcher_event()
    event["payload"]["toml"]["doc"] = "A" * 500_000
    assert limits.largest_field(event) == ("payload.toml.doc", 500_002)
    event["client_username"] = "u" * 900_000
    assert limits.largest_field(event) == ("client_username", 900_002)
    many = fetcher_event(datasets=[{"src": f"s3://b/{i}", "path": "/p"} for i in range(20_000)])
    assert limits.largest_field(many)[0] == "payload.datasets"


def _worst_envelope(char: str, size: int, visited: int, extras: int) -> dict[str, Any]:
    text = char * size
    return {
        "action_id": "a" * 36,
        "client_id": "c" * 40,
        "parent_action_id": text,
        "message_id": text,
        "client_version": text,
        "client_username": text,
        "authenticated": text,
        "tstamp": {"x": text},
        "type": text,
        "visited": [{"svc": text, "tstamp": text, "version": text, "node": text, "x": text}] * visited,
        **{f"{char * 16}{i}": text for i in range(extras)},
    }


def _check_answers_fit(event: dict[str, Any], message: str) -> None:
    sink = FakeSink()
    out = emitter(sink)
    out.status(event, ev.Status.ERROR, message)
    out.status(event, ev.Status.SUCCEEDED, message, src_event=ev.executor_event(event, "j" * 63))
    out.respond(event, 1, message, "CMD_RETURN")
    sink.flush()
    assert len(sink.acked) == 3
    for sent in sink.acked:
        assert len(sent.value) <= limits.MAX_STATUS_BYTES
        assert limits.record_size(sent.key, sent.value) <= limits.MIN_REQUEST_BYTES
        answer = json.loads(sent.value)
        assert (answer["action_id"], answer["client_id"]) == (event["action_id"], event["client_id"])


@pytest.mark.parametrize("char", CHARS)
def test_answers_about_the_worst_envelope_fit_with_room_to_spare(char: str) -> None:
    event = _worst_envelope(char, 20_000, 5000, 50)
    event["action_id"], event["client_id"] = "a" * 1024, "c" * 1024  # the longest answerable ids
    event["payload"] = {"toml": {"doc": char * 400_000}}
    _check_answers_fit(event, char * 1_000_000)
    sink = FakeSink()
    emitter(sink).status(event, ev.Status.ERROR, char * 1_000_000)
    assert len(sink.pending[0].value) < 80_000  # the README's "about 60 KB", and no more


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.sampled_from([0, 1, 100, 1023, 1025, 5000, 200_000, 600_000]), min_size=9, max_size=9),
    char=st.sampled_from(CHARS),
    visited=st.integers(0, 3000),
    extras=st.integers(0, 40),
    payload=st.sampled_from([0, 1000, 300_000, 1_200_000]),
    message=st.integers(0, 100_000),
)
def test_status_events_and_responses_never_exceed_the_limit(
    sizes: list[int], char: str, visited: int, extras: int, payload: int, message: int
) -> None:
    event = fetcher_event(action_id="a" * sizes[0] or "a", client_id="c" * min(sizes[1], 1024) or "c")
    names = ("parent_action_id", "message_id", "client_version", "client_username", "type", "tstamp")
    for name, size in zip(names, sizes[2:], strict=False):
        event[name] = char * size
    event["visited"] = [{"svc": char * sizes[8], "tstamp": 1, "version": "1", "node": None}] * visited
    event.update({f"x{i}": char * sizes[i % 9] for i in range(extras)})
    event["payload"]["toml"]["doc"] = "d" * payload
    if limits.unanswerable(event) is not None:
        sink = FakeSink()
        emitter(sink).status(event, ev.Status.ERROR, "m")
        emitter(sink).respond(event, 1, "m", "CMD_RETURN")
        assert sink.pending == []  # never filed under a cut id
        return
    _check_answers_fit(event, char * message)
