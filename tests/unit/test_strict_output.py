"""Nothing the service publishes holds a bare NaN/Infinity or a lone surrogate, whatever came in.

Events copied from the input (``src_event``, ``cmd_submit``, the executor event) may carry such values
in fields the executor only passes on; every publisher renders them by ``domain.strictjson``'s rule.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from sagemaker_executor.adapters import kafka
from sagemaker_executor.domain.events import Status, command_response, executor_event
from sagemaker_executor.domain.tracking import tracked_job
from sagemaker_executor.service.emitter import StatusEmitter
from tests.builders import cancel_command, fetcher_event
from tests.fakes import FakeSink
from tests.unit.test_strictjson import JSON_LIKE, assert_strict_json


def _emitter(sink: FakeSink) -> StatusEmitter:
    return StatusEmitter(sink, status_topic="BAI_APP_STATUS", node="n", clock_ms=lambda: 1000)


def _published(sink: FakeSink) -> list[bytes]:
    sink.flush()
    assert all(isinstance(sent.value, bytes) for sent in sink.acked)
    return [sent.value for sent in sink.acked]


@settings(max_examples=150, deadline=None, database=None)
@given(JSON_LIKE)
def test_statuses_responses_and_executor_events_are_strict_json(value: Any) -> None:
    event = fetcher_event()
    event["extra"] = value  # an envelope field nobody reads: passed on as it is
    event["payload"]["toml"]["contents"]["custom_params"] = {"hyper_params": {"x": value}}
    command = cancel_command("target")
    command["extra"] = value
    sink = FakeSink()
    emitter = _emitter(sink)
    emitter.status(event, Status.ERROR, "refused")
    emitter.send(executor_event(event, "job"), "BAI_APP_EXECUTOR")
    emitter.status(event, Status.SUCCEEDED, "ok", src_event=executor_event(event, "job"))
    emitter.send(command_response(command, 2, "invalid"), "CMD_RETURN")
    for data in _published(sink):
        assert_strict_json(data)


def test_non_finite_numbers_copied_from_the_input_are_rendered_as_strings_not_null() -> None:
    event = fetcher_event()
    event["weight"] = float("nan")
    event["payload"]["toml"]["contents"]["custom_params"] = {"hyper_params": {"lr": float("-inf")}}
    sink = FakeSink()
    _emitter(sink).status(event, Status.ERROR, "refused")
    _emitter(sink).send(executor_event(event, "job"), "BAI_APP_EXECUTOR")
    status, executor = (assert_strict_json(data) for data in _published(sink))
    assert status["payload"]["src_event"]["weight"] == "NaN"
    assert status["payload"]["src_event"]["payload"]["toml"]["contents"]["custom_params"] == {
        "hyper_params": {"lr": "-Infinity"}
    }
    assert executor["weight"] == "NaN"


class _Producer:
    """Stands in for kafka-python's producer inside the adapter: records what would go on the wire."""

    sent: list[bytes | None] = []

    def __init__(self, **_: Any) -> None:
        pass

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None) -> Any:
        self.sent.append(value)
        return None


def test_the_publisher_writes_strict_json_for_every_dict_it_is_given(monkeypatch) -> None:
    monkeypatch.setattr(kafka, "KafkaProducer", _Producer)
    monkeypatch.setattr(_Producer, "sent", [])
    publisher = kafka.Publisher(kafka.KafkaOptions(bootstrap_servers=["b:9092"], client_id="c", group_id="g"))
    event = executor_event(fetcher_event(), "job")
    event["odd"] = {"n": float("nan"), "t": "caf\udce9"}
    record = tracked_job(event, partition=0, now_ms=0).to_json()  # the tracking topic's record
    publisher.send("SM_EXECUTOR_JOBS", "job", record)
    publisher.send("SM_EXECUTOR_DEAD_LETTER", None, {"reason": "x", "value": "\udce9", "n": float("inf")})
    publisher.send("SM_EXECUTOR_JOBS", "job", None)  # a tombstone stays a tombstone
    tracked, dead, tombstone = _Producer.sent
    assert tombstone is None and tracked is not None and dead is not None
    assert assert_strict_json(tracked)["executor_event"]["odd"] == {"n": "NaN", "t": "caf\ufffd"}
    assert assert_strict_json(dead) == {"reason": "x", "value": "\ufffd", "n": "Infinity"}
