"""The Kafka wrapper (kafka-python 3.x): topic creation, an ``acks=all`` producer whose sends can be
awaited, a manually committed consumer, and the brokers' readiness check.

Called by ``service.loop``, ``app``, ``startup`` and the ``submit``/``cancel`` client. Every KafkaConsumer,
KafkaProducer and KafkaAdminClient the package creates is made here, and takes its connection keywords
(brokers, TLS, SASL, bootstrap bound) from ``kafka_connection.connection_config``, so a secured cluster
is configured in one place (:class:`KafkaSecurity`); the group member's lag and rebalance bookkeeping
is ``kafka_group``'s. The names of both stay importable from here. Values go out as strict JSON
(``domain.strictjson.encode``: no NaN or Infinity token, no lone surrogate) with the key the caller
gives (``client_id``, CONTRACT §2); what comes in is handed over as raw bytes, because deciding what a
record means (and what to do when it means nothing) is the service's job.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kafka import (
    KafkaAdminClient,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka.admin import NewTopic
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    MessageSizeTooLargeError,
    TopicAlreadyExistsError,
)

# How every client reaches the brokers, and the group member's bookkeeping: modules of their own,
# their names still importable from here, where the clients are made.
from sagemaker_executor.adapters.kafka_connection import PASSWORD_MECHANISMS as PASSWORD_MECHANISMS
from sagemaker_executor.adapters.kafka_connection import BrokersUnreachable as BrokersUnreachable
from sagemaker_executor.adapters.kafka_connection import KafkaOptions as KafkaOptions
from sagemaker_executor.adapters.kafka_connection import KafkaSecurity as KafkaSecurity
from sagemaker_executor.adapters.kafka_connection import bootstrapping as bootstrapping
from sagemaker_executor.adapters.kafka_connection import connection_config as connection_config
from sagemaker_executor.adapters.kafka_group import RebalanceListener, group_lag
from sagemaker_executor.domain import strictjson

# The broker's failures are the service's to handle, so they are declared with the other error kinds
# (and still importable from here, where they are raised).
from sagemaker_executor.domain.errors import FIX_BROKER as FIX_BROKER
from sagemaker_executor.domain.errors import CommitError as CommitError
from sagemaker_executor.domain.errors import KafkaOutage as KafkaOutage
from sagemaker_executor.domain.errors import PermanentError
from sagemaker_executor.domain.errors import PublishError as PublishError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int


COMMIT_TIMEOUT_MS = 5000  # a commit the broker does not answer is retried on the next loop round


class TopicSetupError(PermanentError):
    """The broker refused to create ``topic`` (policy, authorization, partitions, replication)."""

    def __init__(self, topic: str, error: KafkaError) -> None:
        super().__init__(f"cannot create topic {topic}: {error}")
        self.topic = topic


class RecordTooLarge(PermanentError):
    """A record over the producer's size limit (``max_request_bytes``): sending it again cannot help.

    The service sizes what it sends beforehand (``domain.limits``), so this is the last guard only.
    """


def ensure_topics(
    options: KafkaOptions,
    topics: Iterable[str],
    partitions: int,
    replication: int,
    *,
    compacted: Iterable[str] = (),
    partitions_of: Mapping[str, int] | None = None,
) -> list[str]:
    """Create the missing topics; returns the ones created. Replication is capped at the broker count.

    ``compacted`` topics get ``cleanup.policy=compact``; ``partitions_of`` overrides the partition
    count per topic. Raises :class:`TopicSetupError` when the broker refuses a topic, and
    kafka-python's ``KafkaTimeoutError`` when no broker answers within ``bootstrap_timeout_ms``.
    """
    admin = KafkaAdminClient(
        **connection_config(options, options.client_id + "-admin"),
        request_timeout_ms=options.request_timeout_ms,
    )
    compact = set(compacted)
    counts = dict(partitions_of or {})
    try:
        existing = set(admin.list_topics())
        wanted = sorted({t for t in topics if t} - existing)
        if not wanted:
            return []
        brokers = len(admin.describe_cluster().get("brokers", [])) or 1
        factor = max(1, min(replication, brokers))
        created = []
        for name in wanted:
            configs = {"cleanup.policy": "compact"} if name in compact else None
            try:
                admin.create_topics(
                    [NewTopic(name, counts.get(name, partitions), factor, topic_configs=configs)]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another replica won the race
            except KafkaError as error:
                raise TopicSetupError(name, error) from error
        return created
    finally:
        admin.close()


def standalone_consumer(options: KafkaOptions, client_id: str | None = None, **config: Any) -> KafkaConsumer:
    """A consumer in no consumer group, for reading topics as they are; ``config``: more kafka-python
    keywords. The group member that consumes the executor's input is :class:`Subscriber`."""
    # No group: nothing to commit (auto-commit on would only log that it is disabled).
    settings = {**connection_config(options, client_id), "group_id": None, "enable_auto_commit": False}
    return KafkaConsumer(**{**settings, **config})  # ``config`` wins, e.g. a shorter bootstrap_timeout_ms


def partition_count(options: KafkaOptions, topic: str, timeout_s: float = 30.0) -> int:
    """How many partitions ``topic`` has (waiting for its metadata to appear)."""
    consumer = standalone_consumer(options)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            found = consumer.partitions_for_topic(topic)
            if found:
                return len(found)
            if time.monotonic() > deadline:
                raise KafkaError(f"no metadata for topic {topic}")
            time.sleep(0.1)
    finally:
        consumer.close()


def read_compacted(options: KafkaOptions, topic: str, partitions: Iterable[int]) -> list[InboundRecord]:
    """Every record now in ``partitions`` of ``topic``, oldest first (a snapshot up to the current end)."""
    wanted = [TopicPartition(topic, p) for p in sorted(set(partitions))]
    if not wanted:
        return []
    consumer = standalone_consumer(options, options.client_id + "-state")
    try:
        consumer.assign(wanted)
        consumer.seek_to_beginning(*wanted)
        end = consumer.end_offsets(wanted)
        records: list[InboundRecord] = []
        remaining = {tp for tp in wanted if end[tp] > consumer.position(tp)}
        while remaining:
            for tp, batch in consumer.poll(timeout_ms=500).items():
                for r in batch:
                    if r.offset < end[tp]:
                        records.append(
                            InboundRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
                        )
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
        return records
    finally:
        consumer.close()


class Publisher:
    """Sends JSON records with ``acks=all``; :meth:`flush` waits for the acks of this thread's records.

    Thread-safe: each thread waits only for what it sent itself, so a worker finishing one record is
    never held up by the records of another.
    """

    def __init__(self, options: KafkaOptions) -> None:
        self._producer = KafkaProducer(
            **connection_config(options),
            acks="all",
            retries=5,
            max_in_flight_requests_per_connection=1,  # keeps a client's records in order across retries
            request_timeout_ms=options.request_timeout_ms,
            linger_ms=2,
            max_request_size=options.max_request_bytes,
        )
        self._local = threading.local()

    def send(
        self, topic: str, key: str | None, value: dict[str, Any] | bytes | None, partition: int | None = None
    ) -> None:
        """Queue a record; ``None`` is a tombstone. Wait for it with :meth:`flush`."""
        data = value if value is None or isinstance(value, bytes) else strictjson.encode(value)
        encoded_key = key.encode("utf-8") if key is not None else None
        try:
            future = self._producer.send(topic, key=encoded_key, value=data, partition=partition)
        except MessageSizeTooLargeError as error:
            raise RecordTooLarge(
                f"a {len(data or b'')}-byte record for {topic} is over the size limit"
            ) from error
        self._thread_pending().append(future)

    def flush(self, timeout_s: float = 60.0) -> None:
        pending = self._thread_pending()
        sent, pending[:] = list(pending), []
        try:
            for future in sent:
                future.get(timeout=timeout_s)
        except KafkaError as error:
            raise PublishError(f"broker did not acknowledge a record: {error!r}") from error

    def _thread_pending(self) -> list[Any]:
        pending: list[Any] | None = getattr(self._local, "pending", None)
        if pending is None:
            pending = self._local.pending = []
        return pending

    def close(self) -> None:
        self._producer.close(timeout=10)


class Subscriber:
    """A consumer-group member on the given topics; offsets move only through :meth:`commit_offsets`."""

    def __init__(self, options: KafkaOptions, topics: Sequence[str]) -> None:
        self._consumer = KafkaConsumer(
            **connection_config(options),
            group_id=options.group_id,
            enable_auto_commit=False,
            auto_offset_reset=options.auto_offset_reset,
            session_timeout_ms=options.session_timeout_ms,
            heartbeat_interval_ms=options.heartbeat_interval_ms,
            max_poll_interval_ms=options.max_poll_interval_ms,
            request_timeout_ms=max(options.request_timeout_ms, options.session_timeout_ms + 5000),
        )
        self._auto_offset_reset = options.auto_offset_reset
        # The group's committed offset of each assigned partition, as far as this member knows it:
        # asked once after an assignment, then what this member commits. None: never committed.
        self._committed: dict[TopicPartition, int | None] = {}
        self._listener = RebalanceListener(None, None, self._forget_committed)
        self._consumer.subscribe(list(topics), listener=self._listener)

    def poll(self, timeout_ms: int, max_records: int) -> list[InboundRecord]:
        batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        records = [
            InboundRecord(r.topic, r.partition, r.offset, r.key, r.value, r.timestamp)
            for batch in batches.values()
            for r in batch
        ]
        records.sort(key=lambda r: (r.topic, r.partition, r.offset))
        return records

    def listen(
        self,
        on_assigned: Callable[[set[tuple[str, int]]], None] | None,
        on_revoked: Callable[[set[tuple[str, int]]], None] | None,
    ) -> None:
        """Set the rebalance callbacks (before the first poll): they get ``{(topic, partition)}`` when
        the group moves partitions, and run inside :meth:`poll`."""
        self._listener.on_assigned = on_assigned
        self._listener.on_revoked = on_revoked

    def commit_offsets(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit ``{(topic, partition): next offset to read}``, waiting at most ``COMMIT_TIMEOUT_MS``.

        Raises :class:`CommitError` when the broker does not acknowledge (the caller commits again
        later). A commit the group refuses because the partitions moved to another member is dropped:
        their new owner starts from the last commit, and redelivery is harmless.
        """
        if not offsets:
            return
        wanted = {TopicPartition(t, p): offset for (t, p), offset in offsets.items()}
        try:
            self._consumer.commit(
                {tp: OffsetAndMetadata(offset, "", -1) for tp, offset in wanted.items()},
                timeout_ms=COMMIT_TIMEOUT_MS,
            )
        except CommitFailedError as error:
            log.info("offsets %s not committed, the group moved them: %s", dict(offsets), error)
        except KafkaError as error:
            raise CommitError(f"offset commit not acknowledged: {error!r}") from error
        else:
            self._committed.update(wanted)

    def pause_all(self) -> None:
        """Stop fetching (backpressure); poll() still runs, so the group keeps us."""
        assigned = self._consumer.assignment()
        if assigned:
            self._consumer.pause(*assigned)

    def resume_all(self) -> None:
        paused = self._consumer.paused()
        if paused:
            self._consumer.resume(*paused)

    def lag(self) -> dict[tuple[str, int], int]:
        """The group's lag per assigned partition, ``{(topic, partition): records}``, as
        ``kafka-consumer-groups`` and KEDA count it, from the high-water marks the consumer has and
        what this member committed (``kafka_group.group_lag``, which asks the broker at most
        ``COMMIT_TIMEOUT_MS`` in all); ``KafkaError`` when it does not answer.
        """
        return group_lag(self._consumer, self._committed, self._auto_offset_reset, COMMIT_TIMEOUT_MS)

    def _forget_committed(self, partitions: Iterable[TopicPartition]) -> None:
        """A rebalance moved ``partitions``: another member may have committed them since."""
        for tp in partitions:
            self._committed.pop(tp, None)

    def close(self) -> None:
        self._consumer.close(autocommit=False)


class BrokerCheck:
    """A readiness check of the brokers for a probe thread: one metadata round trip per call.

    Keeps its own admin connection (the consumer is not thread-safe, and its cached metadata would
    answer without asking the broker), rebuilt after a failure. Raises :class:`KafkaOutage` when
    the brokers do not answer within ``timeout_ms``.
    """

    def __init__(self, options: KafkaOptions, timeout_ms: int) -> None:
        self._options = options
        self._timeout_ms = timeout_ms
        self._admin: KafkaAdminClient | None = None

    def __call__(self) -> None:
        try:
            if self._admin is None:
                self._admin = KafkaAdminClient(
                    **{
                        **connection_config(self._options, self._options.client_id + "-probe"),
                        "bootstrap_timeout_ms": self._timeout_ms,
                    },
                    request_timeout_ms=self._timeout_ms,
                )
            self._admin.describe_cluster()
        except Exception as error:
            self.close()
            raise KafkaOutage(f"Kafka brokers not answering: {error!r}") from error

    def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            try:
                admin.close()
            except Exception as error:  # closing a broken connection must not mask why it broke
                log.debug("closing the broker probe's connection: %s", error)
