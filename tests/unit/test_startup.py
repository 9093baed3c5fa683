"""Start-up failure plumbing that the entry-point tests (``tests/integration/test_startup_failures.py``)
cannot reach with the embedded broker, which creates any topic it is asked for: a refused topic
becomes :class:`TopicSetupError` naming it, and the topic is traced back to its setting."""

from __future__ import annotations

from typing import Any

import pytest
from kafka.errors import PolicyViolationError, TopicAlreadyExistsError, TopicAuthorizationFailedError

from sagemaker_executor.adapters import kafka
from sagemaker_executor.adapters.kafka import KafkaOptions, TopicSetupError, ensure_topics
from sagemaker_executor.config import load_settings
from sagemaker_executor.startup import ExitCode, StartupFailure, report, topic_setting


class RefusingAdmin:
    """Stands in for KafkaAdminClient: lists no topic, and answers create_topics with ``errors``."""

    errors: dict[str, Exception] = {}
    created: list[str] = []

    def __init__(self, **config: Any) -> None:
        pass

    def list_topics(self) -> list[str]:
        return []

    def describe_cluster(self) -> dict[str, Any]:
        return {"brokers": [{"node_id": 1}]}

    def create_topics(self, topics: list[Any]) -> None:
        (topic,) = topics
        if topic.name in self.errors:
            raise self.errors[topic.name]
        self.created.append(topic.name)

    def close(self) -> None:
        pass


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> type[RefusingAdmin]:
    monkeypatch.setattr(kafka, "KafkaAdminClient", RefusingAdmin)
    RefusingAdmin.errors, RefusingAdmin.created = {}, []
    return RefusingAdmin


OPTIONS = KafkaOptions(["b:9092"], client_id="t", group_id="")


@pytest.mark.parametrize("error", [PolicyViolationError("no"), TopicAuthorizationFailedError("denied")])
def test_a_refused_topic_is_a_topic_setup_error_naming_it(
    admin: type[RefusingAdmin], error: Exception
) -> None:
    admin.errors = {"BAI_APP_STATUS": error}

    with pytest.raises(TopicSetupError, match="cannot create topic BAI_APP_STATUS") as raised:
        ensure_topics(OPTIONS, ["BAI_APP_FETCHER", "BAI_APP_STATUS"], 3, 3)

    assert raised.value.topic == "BAI_APP_STATUS"
    assert admin.created == ["BAI_APP_FETCHER"]


def test_a_topic_another_replica_created_meanwhile_is_no_failure(admin: type[RefusingAdmin]) -> None:
    admin.errors = {"BAI_APP_STATUS": TopicAlreadyExistsError("raced")}

    assert ensure_topics(OPTIONS, ["BAI_APP_FETCHER", "BAI_APP_STATUS"], 3, 3) == ["BAI_APP_FETCHER"]


def test_a_topic_is_traced_back_to_the_setting_that_names_it() -> None:
    settings = load_settings(
        {},
        {
            "SAGEMAKER_OUTPUT_BUCKET": "b-out",
            "SAGEMAKER_NODATASET": "s3://nodata-bucket/n",
            "SAGEMAKER_ROLE": "r",
            "AWS_DEFAULT_REGION": "us-east-1",
            "DEAD_LETTER_TOPIC": "DLQ",
        },
    )

    assert topic_setting(settings, "BAI_APP_FETCHER") == "CONSUMER_TOPIC"
    assert topic_setting(settings, "DLQ") == "DEAD_LETTER_TOPIC"
    assert topic_setting(settings, "SM_EXECUTOR_JOBS") == "TRACKING_TOPIC"


def test_the_exit_codes_are_distinct() -> None:
    codes = [code.value for code in ExitCode]
    assert len(codes) == len(set(codes)) and 1 not in codes  # 1 stays Python's own crash


def test_the_report_is_one_record_with_the_setting_and_code(caplog: pytest.LogCaptureFixture) -> None:
    failure = StartupFailure(ExitCode.HEALTH_PORT, "HEALTH_PORT", "cannot listen on port 80", "pick another")

    assert report(failure) == 4
    (record,) = caplog.records
    assert record.levelname == "CRITICAL"
    assert (
        record.getMessage()
        == "start-up failed (exit 4): cannot listen on port 80. Fix HEALTH_PORT: pick another"
    )
    assert (record.setting, record.exit_code, record.failure) == ("HEALTH_PORT", 4, "HEALTH_PORT")  # type: ignore[attr-defined]
