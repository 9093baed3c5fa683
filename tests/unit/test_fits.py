"""Everything sent fits (issue 7): huge inputs still get answers that fit. In-memory adapters,
through the loop."""

from __future__ import annotations

import pytest

from sagemaker_executor.adapters import kafka as kafka_adapter
from sagemaker_executor.domain.limits import (
    DEFAULT_MAX_REQUEST_BYTES,
    MAX_STATUS_BYTES,
    MAX_TEXT_BYTES,
    MIN_REQUEST_BYTES,
    record_size,
)
from sagemaker_executor.service.commands import CommandHandler
from sagemaker_executor.service.emitter import StatusEmitter
from sagemaker_executor.service.loop import ExecutorLoop, LoopSettings
from sagemaker_executor.service.submission import SubmissionHandler, SubmissionSettings
from tests.builders import SITE, cancel_command, fetcher_event, minimal_contents
from tests.fakes import FakeJobs, FakeScripts, FakeSink, FakeSource, InlineExecutor, record

FETCHER, CMD, DLQ = "BAI_APP_FETCHER", "CMD_SUBMIT", "DEAD"
STATUS, EXECUTOR, RETURN = "BAI_APP_STATUS", "BAI_APP_EXECUTOR", "CMD_RETURN"


class Harness:
    def __init__(self, tmp_path, records) -> None:
        self.sink = FakeSink()
        self.source = FakeSource(records, self.sink)
        self.jobs = FakeJobs()
        emitter = StatusEmitter(self.sink, status_topic=STATUS, node="test-node", clock_ms=lambda: 1000)
        settings = SubmissionSettings(SITE, EXECUTOR, str(tmp_path), 10**6)
        self.loop = ExecutorLoop(
            self.source,
            self.sink,
            emitter,
            SubmissionHandler(self.jobs, FakeScripts(), emitter, settings),
            CommandHandler(self.jobs, emitter, RETURN),
            LoopSettings(FETCHER, CMD, DLQ),
            pool=InlineExecutor(),
            sleep=lambda _s: None,
        )

    def run(self) -> None:
        for _ in range(10):
            self.loop.run_once()

    def statuses(self) -> list[dict]:
        return self.sink.on(STATUS)


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
    h.run()
    assert [s["payload"]["status"] for s in h.statuses()] == ["PENDING", "SUCCEEDED"]
    _assert_every_answer_fits(h)
    for status in h.statuses():
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
    h.run()
    statuses = h.statuses()
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
    h.run()
    (response,) = h.sink.on(RETURN)
    assert response["payload"]["return_code"] == 2 and response["action_id"] == command["action_id"]
    assert "too large" in response["payload"]["cmd_submit"]["payload"]["omitted"]
    _assert_every_answer_fits(h)


def test_an_action_id_too_long_to_file_an_answer_under_is_dead_lettered_unanswered(tmp_path) -> None:
    long_id = fetcher_event(action_id="a" * 2000)
    long_client = cancel_command("x", client_id="c" * 2000)
    h = Harness(tmp_path, [record(FETCHER, long_id), record(CMD, long_client)])
    h.run()
    assert h.sink.on(STATUS) == [] and h.sink.on(RETURN) == [] and h.jobs.create_calls == 0
    reasons = [dead["reason"] for dead in h.sink.on(DLQ)]
    assert len(reasons) == 2
    assert "'action_id' is 2000 bytes" in reasons[0] and "'client_id' is 2000 bytes" in reasons[1]
    assert h.source.committed == {(FETCHER, 0): 1, (CMD, 0): 1}


def test_a_cancel_of_a_target_id_too_long_to_exist_is_invalid_args(tmp_path) -> None:
    h = Harness(tmp_path, [record(CMD, cancel_command("t" * 600_000))])
    h.run()
    (response,) = h.sink.on(RETURN)
    assert response["payload"]["return_code"] == 2
    assert "'target_action_id' is 600000 bytes" in response["payload"]["message"]
    assert h.sink.on(STATUS) == []
    _assert_every_answer_fits(h)


# --- the setting reaches the producer ----------------------------------------------------------------


def test_the_publisher_gives_the_producer_the_configured_max_request_size(monkeypatch) -> None:
    made: dict = {}

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
        "SAGEMAKER_NODATASET": "s3://b/none",
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
