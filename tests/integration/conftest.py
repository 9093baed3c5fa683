"""Integration fixtures: a real Kafka-protocol broker, the local SageMaker over HTTP, executor processes.

The broker is the embedded Tansu (``sagemaker_executor.local.broker``) unless ``KAFKA_BOOTSTRAP_SERVERS``
is set, in which case the same tests run against that Apache Kafka. The executor runs as a separate
process (``python -m sagemaker_executor.cli``) exactly as deployed, configured only by environment
variables; each test gets its own topics and consumer group, so tests do not see each other's records.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from sagemaker_executor.adapters.kafka import KafkaOptions, ensure_topics
from sagemaker_executor.local.broker import LocalBroker
from sagemaker_executor.local.executor import ExecutorProcess
from sagemaker_executor.local.server import LocalSageMakerControl, server_process
from tests.builders import TOPIC_ROLES, topic_names

REPO = Path(__file__).resolve().parents[2]
# The image Anubis's hello-world sample names, and the directory standing in for its WORKDIR.
HELLO_WORLD_IMAGE = "benchmarkai/hello-world:latest"
HELLO_WORLD_WORKDIR = REPO / "examples" / "anubis-hello-world" / "image"
REGION = "us-east-1"
OUTPUT_BUCKET = "sm-output"
SCRIPTS_BUCKET = "scripts-exchange"
ROLE = "bai-sagemaker"


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker | None]:
    """The embedded broker we started (tests may pause it), or None when pointed at an external Kafka."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield None
        return
    with LocalBroker() as local:
        yield local


@pytest.fixture(scope="session")
def bootstrap(broker: LocalBroker | None) -> str:
    return broker.bootstrap_servers if broker is not None else os.environ["KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def local_sagemaker(tmp_path_factory) -> Iterator[tuple[str, LocalSageMakerControl]]:
    log = tmp_path_factory.mktemp("local-sagemaker") / "server.log"
    with server_process(phase_seconds=1, log_path=log) as control:
        yield control.base_url, control


@pytest.fixture(scope="session")
def running_sagemaker(tmp_path_factory) -> Iterator[tuple[str, LocalSageMakerControl]]:
    """A local SageMaker that runs command-mode jobs for real (``--run-jobs``; ``local.runner``)."""
    log = tmp_path_factory.mktemp("running-sagemaker") / "server.log"
    run = ["--run-jobs", "--stop-grace-seconds", "5", "--image", f"{HELLO_WORLD_IMAGE}={HELLO_WORLD_WORKDIR}"]
    with server_process(phase_seconds=1, log_path=log, extra_args=run) as control:
        control.prepare_site([OUTPUT_BUCKET, SCRIPTS_BUCKET, "data-pull"], ROLE, REGION)
        yield control.base_url, control


@pytest.fixture(scope="session")
def aws(local_sagemaker) -> boto3.Session:
    _, control = local_sagemaker
    control.prepare_site([OUTPUT_BUCKET, SCRIPTS_BUCKET, "data-pull"], ROLE, REGION)
    return boto3.Session(region_name=REGION)


@dataclass
class Topics:
    prefix: str
    fetcher: str = ""
    executor: str = ""
    status: str = ""
    cmd_submit: str = ""
    cmd_return: str = ""
    dead_letter: str = ""
    tracking: str = ""
    metrics: str = ""

    def __post_init__(self) -> None:
        for role, name in topic_names(self.prefix).items():
            setattr(self, role, name)

    def all(self) -> list[str]:
        return [getattr(self, role) for role in TOPIC_ROLES]

    def observed(self) -> list[str]:
        return [self.executor, self.status, self.cmd_return, self.dead_letter, self.metrics]


Executor = ExecutorProcess  # the name the tests use


@dataclass
class Pipeline:
    """One test's world: its topics, a group id, and helpers to drive and observe the executor."""

    bootstrap: str
    aws_url: str
    session: boto3.Session
    control: LocalSageMakerControl
    workdir: Path
    topics: Topics
    group: str
    # Extra keywords for the test's own Kafka clients (TLS settings against a TLS listener).
    client_config: dict[str, Any] = field(default_factory=dict)
    executors: list[Executor] = field(default_factory=list)
    _producer: KafkaProducer | None = None
    _consumer: KafkaConsumer | None = None
    seen: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    raw: dict[str, list[bytes]] = field(default_factory=dict)  # the same records, as published

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "SAGEMAKER_", "CONSUMER_"))}
        env.update(
            {
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "CONSUMER_GROUP_ID": self.group,
                "CONSUMER_TOPIC": self.topics.fetcher,
                "PRODUCER_TOPIC": self.topics.executor,
                "STATUS_TOPIC": self.topics.status,
                "CMD_SUBMIT_TOPIC": self.topics.cmd_submit,
                "CMD_RETURN_TOPIC": self.topics.cmd_return,
                "DEAD_LETTER_TOPIC": self.topics.dead_letter,
                "TRACKING_TOPIC": self.topics.tracking,
                "METRICS_TOPIC": self.topics.metrics,
                "WATCH_INTERVAL_SECONDS": "0.5",
                "HEALTH_PORT": "0",  # several executors per host: each takes a free port
                "NUM_PARTITIONS": "1",
                "REPLICATION_FACTOR": "1",
                "CONSUMER_AUTO_OFFSET_RESET": "earliest",
                "KAFKA_SESSION_TIMEOUT_MS": "6000",
                "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
                "SAGEMAKER_OUTPUT_BUCKET": OUTPUT_BUCKET,
                "SAGEMAKER_NODATASET": "s3://data-pull/no-data",
                "SAGEMAKER_ROLE": ROLE,
                "AWS_ENDPOINT_URL": self.aws_url,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "TMP_SOURCES_DIR": str(self.workdir / "sources"),
                "AWS_RETRY_ATTEMPTS": "3",
                # No pacing: the local SageMaker does not throttle, and 1 create/s would only slow this.
                "SAGEMAKER_CREATE_RATE": "off",
                "LOGGING_LEVEL": "INFO",
            }
        )
        env.update(extra)
        return env

    def start_executor(self, **extra: str) -> Executor:
        executor = ExecutorProcess.start(
            self.env(**extra), self.workdir / f"executor-{len(self.executors)}.log"
        )
        self.executors.append(executor)
        return executor

    # --- producing ---------------------------------------------------------------------------

    @property
    def producer(self) -> KafkaProducer:
        if self._producer is None:
            # Up to 4 MiB: the tests send records as large as an upstream producer could.
            self._producer = KafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                max_request_size=4 * 1024 * 1024,
                **self.client_config,
            )
        return self._producer

    def publish(self, topic: str, value: dict[str, Any] | bytes, key: str | None = None) -> None:
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        if key is None and isinstance(value, dict):
            key = str(value.get("client_id"))
        self.producer.send(topic, key=key.encode() if key else None, value=data).get(timeout=30)

    # --- observing ----------------------------------------------------------------------------

    def _ensure_consumer(self) -> KafkaConsumer:
        if self._consumer is None:
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                **self.client_config,
            )
            self._consumer.assign(
                [
                    TopicPartition(t, p)
                    for t in self.topics.observed()
                    for p in sorted(self._consumer.partitions_for_topic(t) or {0})
                ]
            )
            self._consumer.seek_to_beginning()
        return self._consumer

    def drain(self, timeout_ms: int = 200) -> None:
        consumer = self._ensure_consumer()
        for tp, records in consumer.poll(timeout_ms=timeout_ms).items():
            for r in records:
                self.raw.setdefault(tp.topic, []).append(r.value)
                self.seen.setdefault(tp.topic, []).append({"key": r.key, **json.loads(r.value)})

    def on(self, topic: str) -> list[dict[str, Any]]:
        return self.seen.get(topic, [])

    def wait_for(self, condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.drain()
            if condition():
                return
            for executor in self.executors:
                if executor.process.poll() is not None and executor.process.returncode not in (0, -9, -15):
                    pytest.fail(
                        f"executor exited with {executor.process.returncode}:\n{executor.log_text()[-4000:]}"
                    )
        logs = "\n".join(e.log_text()[-3000:] for e in self.executors)
        pytest.fail(f"timed out waiting for {what}; seen={json.dumps(self.summary(), indent=1)}\n{logs}")

    def statuses(self, action_id: str) -> list[tuple[str, str]]:
        return [
            (e["payload"]["status"], e["payload"]["message"])
            for e in self.on(self.topics.status)
            if e["action_id"] == action_id
        ]

    def statuses_only(self, action_id: str) -> list[str]:
        return [status for status, _ in self.statuses(action_id)]

    def executor_events(self, action_id: str) -> list[dict[str, Any]]:
        return [e for e in self.on(self.topics.executor) if e["action_id"] == action_id]

    def summary(self) -> dict[str, Any]:
        return {
            topic: [
                (
                    e.get("action_id", "")[:8],
                    e.get("payload", {}).get("status") if isinstance(e.get("payload"), dict) else None,
                )
                for e in events
            ]
            for topic, events in self.seen.items()
        }

    def close(self) -> None:
        for executor in self.executors:
            if executor.process.poll() is None:
                executor.kill()
        if self._producer is not None:
            self._producer.close(timeout=5)
        if self._consumer is not None:
            self._consumer.close()


@pytest.fixture
def pipeline(request, bootstrap, local_sagemaker, aws, tmp_path) -> Iterator[Pipeline]:
    """One test's world; ``@pytest.mark.parametrize("pipeline", [3], indirect=True)`` gives the input
    (and tracking) topic 3 partitions."""
    url, control = local_sagemaker
    p = _pipeline(bootstrap, url, control, aws, tmp_path, partitions=getattr(request, "param", 1))
    try:
        yield p
    finally:
        p.close()


@pytest.fixture
def running_pipeline(bootstrap, running_sagemaker, aws, tmp_path) -> Iterator[Pipeline]:
    """One test's world against the local SageMaker that runs command-mode jobs for real."""
    url, control = running_sagemaker
    p = _pipeline(bootstrap, url, control, aws, tmp_path, partitions=1)
    try:
        yield p
    finally:
        p.close()


def _pipeline(
    bootstrap: str,
    url: str,
    control: LocalSageMakerControl,
    session: boto3.Session,
    tmp_path: Path,
    partitions: int,
) -> Pipeline:
    prefix = "T" + uuid.uuid4().hex[:10]
    topics = Topics(prefix)
    # Created up front: the broker would auto-create them with its own default partition count.
    ensure_topics(
        KafkaOptions([bootstrap], client_id="tests", group_id=""),
        topics.all(),
        1,
        1,
        compacted=[topics.tracking],
        partitions_of={topics.fetcher: partitions, topics.tracking: partitions},
    )
    return Pipeline(bootstrap, url, session, control, tmp_path, topics, group=f"{prefix}-group")
