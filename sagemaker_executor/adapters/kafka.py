"""The Kafka wrapper (kafka-python 3.x): topic creation, an ``acks=all`` producer whose sends can be
awaited, and a manually committed consumer.

Called by ``service.loop``. Values go out as UTF-8 JSON with the key the caller gives (``client_id``,
CONTRACT §2); what comes in is handed over as raw bytes, because deciding what a record means (and
what to do when it means nothing) is the service's job.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


@dataclass(frozen=True)
class KafkaOptions:
    bootstrap_servers: Sequence[str]
    client_id: str
    group_id: str
    auto_offset_reset: str = "latest"
    session_timeout_ms: int = 10000
    heartbeat_interval_ms: int = 3000
    max_poll_interval_ms: int = 300000
    request_timeout_ms: int = 30000


class PublishError(Exception):
    """A record could not be acknowledged by the broker; the input must not be committed."""


def ensure_topics(
    options: KafkaOptions, topics: Iterable[str], partitions: int, replication: int
) -> list[str]:
    """Create the missing topics; returns the ones created. Replication is capped at the broker count."""
    admin = KafkaAdminClient(
        bootstrap_servers=list(options.bootstrap_servers),
        client_id=options.client_id + "-admin",
        request_timeout_ms=options.request_timeout_ms,
    )
    try:
        existing = set(admin.list_topics())
        wanted = sorted({t for t in topics if t} - existing)
        if not wanted:
            return []
        brokers = len(admin.describe_cluster().get("brokers", [])) or 1
        factor = max(1, min(replication, brokers))
        created = []
        for name in wanted:
            try:
                admin.create_topics([NewTopic(name, partitions, factor)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another replica won the race
        return created
    finally:
        admin.close()


class Publisher:
    """Sends JSON records with ``acks=all``; :meth:`flush` waits for every pending ack or raises."""

    def __init__(self, options: KafkaOptions) -> None:
        self._producer = KafkaProducer(
            bootstrap_servers=list(options.bootstrap_servers),
            client_id=options.client_id,
            acks="all",
            retries=5,
            max_in_flight_requests_per_connection=1,  # keeps a client's records in order across retries
            request_timeout_ms=options.request_timeout_ms,
            linger_ms=2,
        )
        self._pending: list[Any] = []

    def send(self, topic: str, key: str | None, value: dict[str, Any] | bytes) -> None:
        data = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode("utf-8")
        self._pending.append(
            self._producer.send(topic, key=key.encode("utf-8") if key is not None else None, value=data)
        )

    def flush(self, timeout_s: float = 60.0) -> None:
        pending, self._pending = self._pending, []
        try:
            self._producer.flush(timeout=timeout_s)
            for future in pending:
                future.get(timeout=timeout_s)
        except KafkaError as error:
            raise PublishError(f"broker did not acknowledge a record: {error!r}") from error

    def close(self) -> None:
        self._producer.close(timeout=10)


class Subscriber:
    """A consumer-group member on the given topics; offsets move only through :meth:`commit`."""

    def __init__(self, options: KafkaOptions, topics: Sequence[str]) -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=list(options.bootstrap_servers),
            client_id=options.client_id,
            group_id=options.group_id,
            enable_auto_commit=False,
            auto_offset_reset=options.auto_offset_reset,
            session_timeout_ms=options.session_timeout_ms,
            heartbeat_interval_ms=options.heartbeat_interval_ms,
            max_poll_interval_ms=options.max_poll_interval_ms,
            request_timeout_ms=max(options.request_timeout_ms, options.session_timeout_ms + 5000),
        )
        self._consumer.subscribe(list(topics))

    def poll(self, timeout_ms: int, max_records: int) -> list[InboundRecord]:
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        records = [
            InboundRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
            for batch in batches.values()
            for r in batch
        ]
        records.sort(key=lambda r: (r.topic, r.partition, r.offset))
        return records

    def commit(self, record: InboundRecord) -> None:
        """Commit the offset after ``record``: it and everything before it on its partition are done."""
        tp = TopicPartition(record.topic, record.partition)
        self._consumer.commit({tp: OffsetAndMetadata(record.offset + 1, "", -1)})

    def rewind(self, record: InboundRecord) -> None:
        """Deliver ``record`` again on the next poll (its handling must be retried)."""
        self._consumer.seek(TopicPartition(record.topic, record.partition), record.offset)

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment())

    def close(self) -> None:
        self._consumer.close(autocommit=False)
