"""Everything sent fits (issue 7): huge inputs still get answers that fit, and an action whose executor
event could not be sent is refused before any side effect. In-memory adapters, through the loop."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from sagemaker_executor.adapters import kafka as kafka_adapter
from sagemaker_executor.domain import strictjson
from sagemaker_executor.domain.limits import (
    DEFAULT_MAX_REQUEST_BYTES,
    MAX_STATUS_BYTES,
    MAX_TEXT_BYTES,
    MIN_REQUEST_BYTES,
    json_size,
    record_size,
)
from tests.builders import cancel_command, fetcher_event, minimal_contents
from tests.fakes import record
from tests.harness import CMD, DLQ, EXECUTOR, FETCHER, RETURN, STATUS, TRACKING, Harness


def _descriptor_event(var_chars: int, **fields) -> dict[str, Any]:
    """A valid submission whose descriptor holds a description of ``var_chars`` characters, in the TOML
    text (``payload.toml.doc``, base64 as the BFF sends it) and in ``contents``. (Not an env var: those
    are the job's ``Environment``, whose values SageMaker bounds.)"""
    info = {"description": "x" * var_chars, "execution_engine": "aws.sagemaker"}
    contents = minimal_contents(info=info, env={"docker_image": "img:1"})
    event = fetcher_event(contents)
    doc = f'[info]\ndescription = "{"x" * var_chars}"\n[env]\ndocker_image = "img:1"\n'
    event["payload"]["toml"]["doc"] = base64.b64encode(doc.encode()).decode()
    event.update(fields)
    return event


def _assert_every_answer_fits(h: Harness) -> None:
    answers = [s for s in h.sink.acked if s.topic in (STATUS, RETURN)]
    assert answers
    for sent in answers:
        assert len(sent.value) <= MAX_STATUS_BYTES
        assert record_size(sent.key, sent.value) <= MIN_REQUEST_BYTES


# --- issue 7.2: a large envelope is answerable -----------------------------------------------------


def test_a_600000_character_username_gets_statuses_that_fit_and_a_complete_executor_event(tmp_path) -> None:
    event = fetcher_event()
    event["client_username"] = "u" * 600_000
    h = Harness(tmp_path, [record(FETCHER, event)])
    h.drain()
    assert [s["payload"]["status"] for s in h.sink.on(STATUS)] == ["PENDING", "SUCCEEDED"]
    _assert_every_answer_fits(h)
    for status in h.sink.on(STATUS):
        assert status["action_id"] == event["action_id"] and status["client_id"] == event["client_id"]
        assert len(status["client_username"]) < MAX_TEXT_BYTES
        assert status["client_username"].endswith("[cut: 600000 characters]")
        assert status["payload"]["src_event"]["client_username"] == status["client_username"]
    (executor,) = h.sink.on(EXECUTOR)
    assert executor["client_username"] == event["client_username"]  # passed on whole: it fits
    assert h.source.committed == {(FETCHER, 0): 1}


def test_the_error_about_an_event_with_a_600000_character_username_is_sent(tmp_path) -> None:
    event = fetcher_event(minimal_contents(hardware={"instance_type": "ml.c5.xlarge", "strategy": "warp"}))
    event["client_username"] = "u" * 600_000
    event["visited"] = event["visited"] * 500
    h = Harness(tmp_path, [record(FETCHER, event)])
    h.drain()
    statuses = h.sink.on(STATUS)
    assert [s["payload"]["status"] for s in statuses] == ["PENDING", "ERROR"]
    assert "hardware.strategy" in statuses[1]["payload"]["message"]
    assert len(statuses[1]["payload"]["src_event"]["visited"]) == 16
    _assert_every_answer_fits(h)
    assert h.sink.on(DLQ) == [] and h.source.committed == {(FETCHER, 0): 1}


def test_a_cancel_with_a_huge_envelope_gets_a_response_and_status_that_fit(tmp_path) -> None:
    event = fetcher_event()
    command = cancel_command(event["action_id"])
    command["client_username"] = "u" * 600_000
    command["payload"]["args"]["padding"] = "p" * 600_000  # an invalid argument, copied in cmd_submit
    h = Harness(tmp_path, [record(CMD, command)])
    h.drain()
    (response,) = h.sink.on(RETURN)
    assert response["payload"]["return_code"] == 2 and response["action_id"] == command["action_id"]
    assert "too large" in response["payload"]["cmd_submit"]["payload"]["omitted"]
    _assert_every_answer_fits(h)


def test_an_action_id_too_long_to_file_an_answer_under_is_dead_lettered_unanswered(tmp_path) -> None:
    long_id = fetcher_event(action_id="a" * 2000)
    long_client = cancel_command("x", client_id="c" * 2000)
    h = Harness(tmp_path, [record(FETCHER, long_id), record(CMD, long_client)])
    h.drain()
    assert h.sink.on(STATUS) == [] and h.sink.on(RETURN) == [] and h.jobs.create_calls == 0
    reasons = [dead["reason"] for dead in h.sink.on(DLQ)]
    assert len(reasons) == 2
    assert "'action_id' is 2000 bytes" in reasons[0] and "'client_id' is 2000 bytes" in reasons[1]
    assert h.source.committed == {(FETCHER, 0): 1, (CMD, 0): 1}


def test_a_cancel_of_a_target_id_too_long_to_exist_is_invalid_args(tmp_path) -> None:
    h = Harness(tmp_path, [record(CMD, cancel_command("t" * 600_000))])
    h.drain()
    (response,) = h.sink.on(RETURN)
    assert response["payload"]["return_code"] == 2
    assert "'target_action_id' is 600000 bytes" in response["payload"]["message"]
    assert h.sink.on(STATUS) == []
    _assert_every_answer_fits(h)


# --- issue 7.3: an executor event too large for the broker is refused before the job exists --------


def test_an_event_whose_executor_event_would_not_fit_is_refused_before_anything_else(tmp_path) -> None:
    event = _descriptor_event(500_000)
    assert 1_000_000 < len(json.dumps(event)) < 1_300_000  # about 1 MB, as in the issue
    h = Harness(tmp_path, [record(FETCHER, event)])
    h.drain()
    statuses = h.sink.on(STATUS)
    assert [s["payload"]["status"] for s in statuses] == ["ERROR"]  # no PENDING to contradict
    message = statuses[0]["payload"]["message"]
    assert message.startswith("Cannot process the request: the benchmark is too large to pass on")
    assert "'payload.toml.doc' (666" in message and "over the limit of 1048576 bytes" in message
    assert h.jobs.create_calls == 0 and h.sink.on(EXECUTOR) == []
    _assert_every_answer_fits(h)
    assert h.source.committed == {(FETCHER, 0): 1}


def test_the_limit_is_the_configured_one_and_names_the_biggest_field(tmp_path) -> None:
    event = fetcher_event()
    event["client_username"] = "u" * 450_000
    small = Harness(tmp_path, [record(FETCHER, event)], max_request_bytes=MIN_REQUEST_BYTES)
    small.drain()
    (status,) = small.sink.on(STATUS)
    message = status["payload"]["message"]
    assert f"over the limit of {MIN_REQUEST_BYTES} bytes" in message
    assert "'client_username' (450002 bytes)" in message
    assert small.jobs.create_calls == 0
    default = Harness(tmp_path, [record(FETCHER, event)])
    default.drain()
    assert [s["payload"]["status"] for s in default.sink.on(STATUS)] == ["PENDING", "SUCCEEDED"]


def _sent_records(tmp_path, event: dict[str, Any]) -> tuple[int, int]:
    """Record sizes of the executor event and of the job's first tracking record, as sent."""
    h = Harness(tmp_path, [record(FETCHER, event)], tracking=True)
    h.drain()
    (executor,) = [s for s in h.sink.acked if s.topic == EXECUTOR]
    tracking = next(s for s in h.sink.acked if s.topic == TRACKING)
    assert tracking.value["partition"] == 0 and tracking.value["reported"] is None
    return record_size(executor.key, executor.value), record_size(
        tracking.key, strictjson.encode(tracking.value)
    )


def test_the_check_counts_the_records_exactly_as_they_are_sent(tmp_path) -> None:
    """With a job name of SageMaker's longest (63), the limit at which an event still passes is exactly
    the larger record as sent; the tracking record is counted at its largest: with a 10-digit partition
    and a state of two 64-character SageMaker statuses. One byte less and the event is refused."""
    event = _descriptor_event(1000)
    event["payload"]["toml"]["contents"]["custom_params"] = {"sagemaker_job_name": "j" * 63}
    executor_size, tracking_size = _sent_records(tmp_path, event)
    largest_state = json_size({"status": "x" * 64, "secondary": "x" * 64}) - json_size(None)
    threshold = max(executor_size, tracking_size + len(str(2**31 - 1)) - len("0") + largest_state)
    fits = Harness(tmp_path, [record(FETCHER, event)], max_request_bytes=threshold)
    fits.drain()
    assert [s["payload"]["status"] for s in fits.sink.on(STATUS)] == ["PENDING", "SUCCEEDED"]
    refused = Harness(tmp_path, [record(FETCHER, event)], max_request_bytes=threshold - 1)
    refused.drain()
    assert [s["payload"]["status"] for s in refused.sink.on(STATUS)] == ["ERROR"]
    assert refused.jobs.create_calls == 0


def test_without_a_tracking_record_the_executor_event_alone_is_counted(tmp_path) -> None:
    """Labels that are not a table make no tracking record (validation rejects them): the executor
    event, stamped as sent, is then what is measured."""
    event = _descriptor_event(1000)
    event["payload"]["toml"]["contents"]["custom_params"] = {"sagemaker_job_name": "j" * 63}
    executor_size, _ = _sent_records(tmp_path, event)
    contents = event["payload"]["toml"]["contents"]
    before = json_size(contents)
    contents["info"]["labels"] = "not a table"
    contents["info"]["description"] = "x" * (1000 - (json_size(contents) - before))  # the same size
    at_limit = Harness(tmp_path, [record(FETCHER, event)], max_request_bytes=executor_size)
    at_limit.drain()
    assert [s["payload"]["status"] for s in at_limit.sink.on(STATUS)] == ["PENDING", "ERROR"]
    assert "info.labels" in at_limit.sink.on(STATUS)[1]["payload"]["message"]
    refused = Harness(tmp_path, [record(FETCHER, event)], max_request_bytes=executor_size - 1)
    refused.drain()
    (status,) = refused.sink.on(STATUS)
    assert "too large to pass on" in status["payload"]["message"]


def test_a_descriptor_too_large_only_for_its_tracking_record_is_refused_too(tmp_path) -> None:
    """The tracking record repeats ``custom_params.dashboard``: it can be over the limit when the executor
    event is not, and the tracker would then fail after SUCCEEDED."""
    event = _descriptor_event(10)
    event["payload"]["toml"]["contents"]["custom_params"] = {
        "sagemaker_job_name": "j" * 63,
        "dashboard": "d" * 300_000,
    }
    executor_size, _ = _sent_records(tmp_path, event)
    h = Harness(tmp_path, [record(FETCHER, event)], max_request_bytes=executor_size + 1000)
    h.drain()
    (status,) = h.sink.on(STATUS)
    assert status["payload"]["status"] == "ERROR"
    assert "'payload.toml.contents.custom_params.dashboard'" in status["payload"]["message"]
    assert h.jobs.create_calls == 0
    # Without job tracking (WATCH_JOBS=false) there is no tracking record to fit: the job runs.
    untracked = Harness(
        tmp_path, [record(FETCHER, event)], max_request_bytes=executor_size + 1000, tracking_record=False
    )
    untracked.drain()
    assert [s["payload"]["status"] for s in untracked.sink.on(STATUS)] == ["PENDING", "SUCCEEDED"]


def test_a_dead_letter_whose_escapes_would_not_fit_goes_out_minimal(tmp_path) -> None:
    # 300 KB of NUL bytes is valid UTF-8 but not JSON; as a JSON string each NUL takes 6 bytes.
    h = Harness(tmp_path, [record(FETCHER, b"\x00" * 300_000)])
    h.drain()
    (sent,) = [s for s in h.sink.acked if s.topic == DLQ]
    assert len(sent.value) < 64 * 1024 and json.loads(sent.value)["minimal"] is True
    assert json.loads(sent.value)["reason"].startswith("not valid JSON")
    assert h.source.committed == {(FETCHER, 0): 1}


# --- the setting reaches the producer ----------------------------------------------------------------


def test_the_publisher_gives_the_producer_the_configured_max_request_size(monkeypatch) -> None:
    made: dict[str, Any] = {}

    class Producer:
        def __init__(self, **config) -> None:
            made.update(config)

    monkeypatch.setattr(kafka_adapter, "KafkaProducer", Producer)
    kafka_adapter.Publisher(kafka_adapter.KafkaOptions(["b:9092"], "c", "g", max_request_bytes=400_000))
    assert made["max_request_size"] == 400_000
    kafka_adapter.Publisher(kafka_adapter.KafkaOptions(["b:9092"], "c", "g"))
    assert made["max_request_size"] == DEFAULT_MAX_REQUEST_BYTES == 1_048_576


def _settings(**environ: str):
    from sagemaker_executor.config import load_settings

    required = {
        "SAGEMAKER_OUTPUT_BUCKET": "bucket",
        "SAGEMAKER_NODATASET": "s3://nodata-bucket/none",
        "SAGEMAKER_ROLE": "role",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    flags = {k: v for k, v in environ.items() if k.islower()}
    return load_settings(flags, {**required, **{k: v for k, v in environ.items() if k.isupper()}})


def test_kafka_max_request_bytes_defaults_to_one_mib_and_is_an_env_var_and_a_flag() -> None:
    assert _settings().kafka_max_request_bytes == 1_048_576
    assert _settings(KAFKA_MAX_REQUEST_BYTES="2000000").kafka_max_request_bytes == 2_000_000
    flagged = _settings(KAFKA_MAX_REQUEST_BYTES="2000000", kafka_max_request_bytes="3000000")
    assert flagged.kafka_max_request_bytes == 3_000_000


def test_kafka_max_request_bytes_must_leave_room_for_a_status_the_bff_can_store() -> None:
    from sagemaker_executor.config import ConfigError

    assert (
        _settings(KAFKA_MAX_REQUEST_BYTES=str(MIN_REQUEST_BYTES)).kafka_max_request_bytes == MIN_REQUEST_BYTES
    )
    with pytest.raises(ConfigError, match=f"KAFKA_MAX_REQUEST_BYTES .* must be at least {MIN_REQUEST_BYTES}"):
        _settings(KAFKA_MAX_REQUEST_BYTES=str(MIN_REQUEST_BYTES - 1))
