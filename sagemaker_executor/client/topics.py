"""The client's Kafka: one connection that checks the brokers and topics, reads actions, publishes.

Used by ``client.commands``. The brokers are asked once, when :class:`Brokers` is built, with a short
bound (``--connect-timeout``): a broker that does not answer is one :class:`ClientError` naming
``KAFKA_BOOTSTRAP_SERVERS``, not a long wait and a traceback. Topics are never created by the client
(``allow_auto_create_topics`` off): a topic that does not exist names the setting to check. Reads are
group-less (``assign``), from the end (to follow what comes next) or from the start (a status history).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError

from sagemaker_executor.adapters.kafka import Publisher, PublishError, RecordTooLarge, standalone_consumer
from sagemaker_executor.client.errors import ClientError, ExitCode
from sagemaker_executor.config import Settings

CLIENT_KAFKA_ID = "sagemaker-executor-client"  # the Kafka client.id of the client commands


def _flag(setting: str) -> str:
    return "--" + setting.lower().replace("_", "-")


class Brokers:
    """A connection to the brokers of ``settings``; raises ``BROKERS_UNREACHABLE`` when none answers
    within ``connect_timeout_s`` seconds."""

    def __init__(self, settings: Settings, connect_timeout_s: float) -> None:
        self._settings = settings
        self._servers = ",".join(settings.kafka_bootstrap_servers)
        try:
            # The service's connection settings (TLS, SASL), with the client's own, shorter, wait.
            self._consumer = standalone_consumer(
                settings.kafka_options(CLIENT_KAFKA_ID),
                bootstrap_timeout_ms=int(connect_timeout_s * 1000),
                allow_auto_create_topics=False,
            )
            self._topics: set[str] = set(self._consumer.topics())
        except KafkaTimeoutError as error:
            raise ClientError(
                ExitCode.BROKERS_UNREACHABLE,
                f"no Kafka broker answered at {self._servers} within {connect_timeout_s:g}s: check "
                "KAFKA_BOOTSTRAP_SERVERS (--kafka-bootstrap-servers) and that the brokers are up and "
                "reachable from here",
            ) from error
        except KafkaError as error:  # answered, but refused: security settings, authorization
            raise ClientError(
                ExitCode.BROKERS_UNREACHABLE,
                f"the Kafka brokers at {self._servers} refused the client: {error}: check the Kafka "
                "settings and this identity's access",
            ) from error
        self._end: dict[TopicPartition, int] = {}
        self._partitions: list[TopicPartition] = []

    def require(self, topics: Mapping[str, str]) -> None:
        """Raises ``TOPIC_MISSING`` for the first of ``{setting: topic}`` that the brokers do not have."""
        for setting, topic in topics.items():
            if topic not in self._topics:
                raise ClientError(
                    ExitCode.TOPIC_MISSING,
                    f"topic {topic!r} does not exist on the brokers at {self._servers}: check {setting} "
                    f"({_flag(setting)}); the executor creates its topics when it starts, so is it running "
                    "against these brokers?",
                )

    def read(self, topics: list[str], *, from_start: bool) -> None:
        """Read ``topics`` from now on (``from_start=False``: positions are fixed before this returns,
        so nothing published afterwards is missed) or from the oldest record kept."""
        self._partitions = [
            TopicPartition(topic, partition)
            for topic in topics
            for partition in sorted(self._consumer.partitions_for_topic(topic) or [])
        ]
        self._consumer.assign(self._partitions)
        if from_start:
            self._consumer.seek_to_beginning(*self._partitions)
            self._end = dict(self._consumer.end_offsets(self._partitions))
        else:
            self._consumer.seek_to_end(*self._partitions)
            for partition in self._partitions:
                self._consumer.position(partition)  # resolve "end" now, before anything is published

    def poll(self, timeout_ms: int) -> list[tuple[str, dict[str, Any]]]:
        """``(topic, event)`` for each JSON object read within ``timeout_ms``; other records are skipped."""
        events = []
        for batch in self._consumer.poll(timeout_ms=timeout_ms).values():
            for record in batch:
                try:
                    event = json.loads(record.value) if record.value is not None else None
                except ValueError:
                    continue
                if isinstance(event, dict):
                    events.append((record.topic, event))
        return events

    def caught_up(self) -> bool:
        """Whether everything that existed when :meth:`read` started (``from_start``) has been read."""
        return all(self._consumer.position(tp) >= end for tp, end in self._end.items())

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        """Send ``event`` keyed by its ``client_id`` and wait for the brokers' acknowledgement."""
        try:
            publisher = Publisher(self._settings.kafka_options(CLIENT_KAFKA_ID))
        except KafkaError as error:
            raise ClientError(
                ExitCode.BROKERS_UNREACHABLE, f"cannot publish to the brokers at {self._servers}: {error}"
            ) from error
        try:
            publisher.send(topic, str(event["client_id"]), event)
            publisher.flush()
        except RecordTooLarge as error:
            raise ClientError(
                ExitCode.INVALID_DESCRIPTOR,
                f"the benchmark is too large to publish ({error}): make the descriptor smaller, or raise "
                "KAFKA_MAX_REQUEST_BYTES if the brokers accept larger records",
            ) from error
        except PublishError as error:
            raise ClientError(
                ExitCode.BROKERS_UNREACHABLE,
                f"the brokers at {self._servers} did not acknowledge the record on {topic}: check that "
                "they are up",
            ) from error
        finally:
            publisher.close()

    def close(self) -> None:
        self._consumer.close()
