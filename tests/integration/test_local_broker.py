"""The embedded Tansu broker behaves like the Kafka the executor relies on, seen through kafka-python 3.x.

Checks what the service needs from a broker: topic creation, ``acks='all'`` produce, a consumer group
with manual commits that a second member resumes from, and a pause that delays a produce until resume.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from sagemaker_executor.local.broker import BrokerError, LocalBroker

# kafka-python 3.0.12 reads its protocol schemas with importlib.resources.read_text/open_text, deprecated
# since 3.11, at import time; pyproject turns warnings into errors. Not ours to fix.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import NewTopic
    from kafka.consumer.fetcher import ConsumerRecord
    from kafka.errors import KafkaTimeoutError

pytestmark = pytest.mark.integration

GROUP_SETTINGS = {
    "session_timeout_ms": 6000,
    "heartbeat_interval_ms": 1000,
    "enable_auto_commit": False,
    "auto_offset_reset": "earliest",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as running:
        yield running


@pytest.fixture
def admin(broker: LocalBroker) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, client_id="test-admin")
    yield client
    client.close()


@pytest.fixture
def producer(broker: LocalBroker) -> Iterator[KafkaProducer]:
    client = KafkaProducer(
        bootstrap_servers=broker.bootstrap_servers,
        acks="all",
    )
    yield client
    client.close(timeout=5)


def produce(producer: KafkaProducer, topic: str, values: list[str]) -> None:
    futures = [producer.send(topic, key=b"client-1", value=value.encode()) for value in values]
    producer.flush(timeout=10)
    for future in futures:
        future.get(timeout=10)


def join_group(consumer: KafkaConsumer, topic: str, timeout: float = 30.0) -> float:
    """Subscribe and poll until the group assigns partitions; returns the seconds it took."""
    started = time.monotonic()
    consumer.subscribe([topic])
    while not consumer.assignment():
        assert time.monotonic() - started < timeout, "no partitions assigned"
        consumer.poll(timeout_ms=200, max_records=1, update_offsets=False)
    return time.monotonic() - started


def poll_records(consumer: KafkaConsumer, count: int, timeout: float = 20.0) -> list[ConsumerRecord]:
    received: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    while len(received) < count:
        assert time.monotonic() < deadline, f"received {len(received)} of {count} records"
        for records in consumer.poll(timeout_ms=500).values():
            received.extend(records)
    return received


def consume(consumer: KafkaConsumer, count: int) -> list[str]:
    return [record.value.decode() for record in poll_records(consumer, count)]


def group_consumer(broker: LocalBroker, group_id: str) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=group_id, **GROUP_SETTINGS)


def test_admin_creates_topics(broker: LocalBroker, admin: KafkaAdminClient) -> None:
    topics = [unique("BAI_APP_FETCHER"), unique("BAI_APP_STATUS")]

    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1) for name in topics])
    admin.wait_for_topics(topics, timeout_ms=10_000)

    assert set(topics) <= set(admin.list_topics())
    described = {topic["name"]: topic for topic in admin.describe_topics(topics)}
    assert all(len(described[name]["partitions"]) == 3 for name in topics)


def test_group_commits_and_second_member_resumes_after_commit(
    broker: LocalBroker, admin: KafkaAdminClient, producer: KafkaProducer
) -> None:
    topic, group_id = unique("BAI_APP_FETCHER"), unique("sm-executor")
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.wait_for_topics([topic], timeout_ms=10_000)
    first_batch = [f"first-{i}" for i in range(5)]
    produce(producer, topic, first_batch)

    first = group_consumer(broker, group_id)
    join_seconds = join_group(first, topic)
    print(f"\nconsumer group join (first member): {join_seconds:.2f} s")
    assert sorted(consume(first, len(first_batch))) == sorted(first_batch)
    first.commit()
    committed = {tp: first.committed(tp) for tp in first.assignment()}
    assert sum(offset or 0 for offset in committed.values()) == len(first_batch)
    first.close()

    second_batch = [f"second-{i}" for i in range(5)]
    produce(producer, topic, second_batch)
    second = group_consumer(broker, group_id)
    try:
        join_seconds = join_group(second, topic)
        print(f"consumer group join (second member, after the first left): {join_seconds:.2f} s")
        received = consume(second, len(second_batch))
        # Nothing already committed may come back, and nothing may follow the second batch.
        assert sorted(received) == sorted(second_batch)
        assert not any(second.poll(timeout_ms=500).values())
    finally:
        second.close()


def test_produce_during_pause_completes_after_resume() -> None:
    with LocalBroker() as paused_broker:
        topic = unique("BAI_APP_EXECUTOR")
        client = KafkaProducer(bootstrap_servers=paused_broker.bootstrap_servers, acks="all")
        try:
            # Connect and learn the topic's metadata before freezing the broker.
            client.send(topic, b"before-pause", partition=0).get(timeout=10)
            paused_broker.pause()
            pending = client.send(topic, b"during-pause", partition=0)
            # Asserts an absence, so it has to wait a little: the broker must not answer while frozen.
            with pytest.raises(KafkaTimeoutError):
                pending.get(timeout=1.0)
            paused_broker.resume()
            metadata = pending.get(timeout=15)
        finally:
            client.close(timeout=5)
        assert metadata.offset == 1

        reader = KafkaConsumer(
            bootstrap_servers=paused_broker.bootstrap_servers, auto_offset_reset="earliest"
        )
        try:
            partition = TopicPartition(topic, metadata.partition)
            reader.assign([partition])
            values = [record.value for record in poll_records(reader, 2)]
        finally:
            reader.close()
        assert values == [b"before-pause", b"during-pause"]


def test_stop_is_idempotent_and_stops_the_process() -> None:
    running = LocalBroker()
    running.start()
    pid = running.pid
    assert pid is not None
    running.pause()
    running.stop()  # a paused broker still stops promptly
    running.stop()
    assert running.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_start_reports_the_log_tail_when_the_port_is_taken() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = LocalBroker(port=port)
        with pytest.raises(BrokerError, match="log tail"):
            broker.start(timeout=5)
        broker.stop()


def test_module_runs_in_the_foreground_until_sigterm(tmp_path: Path) -> None:
    log_file = tmp_path / "tansu.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sagemaker_executor.local.broker", "--log-file", str(log_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        assert ready[0] == "READY" and ready[1].startswith("127.0.0.1:")
        admin = KafkaAdminClient(bootstrap_servers=ready[1])
        try:
            assert admin.describe_cluster()["brokers"]
        finally:
            admin.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
    assert "listening on: tcp://127.0.0.1:" in log_file.read_text()
