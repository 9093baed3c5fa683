"""In-memory stand-ins for the adapters, for unit tests of the service layer.

Integration tests use the real parts instead."""

from __future__ import annotations

import io
import json
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sagemaker_executor.adapters.kafka import InboundRecord, PublishError
from sagemaker_executor.domain.errors import JobAlreadyExists, JobNotFound, TransientError
from sagemaker_executor.domain.translation import TrainingJobSpec


@dataclass
class Sent:
    topic: str
    key: str | None
    value: Any
    partition: int | None = None


class FakeSink:
    """Records sends; they become 'acknowledged' only on flush, like the real publisher."""

    def __init__(self) -> None:
        self.pending: list[Sent] = []
        self.acked: list[Sent] = []
        self.fail_next_flush = False

    def send(
        self, topic: str, key: str | None, value: dict[str, Any] | bytes | None, partition: int | None = None
    ) -> None:
        self.pending.append(Sent(topic, key, value, partition))

    def flush(self, timeout_s: float = 60.0) -> None:
        if self.fail_next_flush:
            self.fail_next_flush = False
            self.pending.clear()
            raise PublishError("broker down")
        self.acked.extend(self.pending)
        self.pending.clear()

    def on(self, topic: str) -> list[Any]:
        """What was acknowledged on ``topic``, as JSON (the emitter sends encoded records)."""
        return [
            json.loads(s.value) if isinstance(s.value, bytes) else s.value
            for s in self.acked
            if s.topic == topic
        ]


class FakeSource:
    """A partitioned log with a read position per partition; commit checks nothing is left unacknowledged."""

    def __init__(self, records: list[InboundRecord], sink: FakeSink) -> None:
        self.log = list(records)
        self.position: dict[tuple[str, int], int] = {}
        self.committed: dict[tuple[str, int], int] = {}
        self.sink = sink
        self.paused = False

    def poll(self, timeout_ms: int, max_records: int) -> list[InboundRecord]:
        if self.paused:  # as KafkaConsumer: paused partitions return nothing
            return []
        batch = [r for r in self.log if r.offset >= self.position.get((r.topic, r.partition), 0)][
            :max_records
        ]
        for r in batch:
            self.position[(r.topic, r.partition)] = r.offset + 1
        return batch

    def commit_offsets(self, offsets) -> None:
        assert not self.sink.pending, "committed while sends were not acknowledged"
        for partition, offset in offsets.items():
            assert offset >= self.committed.get(partition, 0), "a commit went backwards"
            self.committed[partition] = offset

    def pause_all(self) -> None:
        self.paused = True

    def resume_all(self) -> None:
        self.paused = False


class FakeClock:
    """A monotonic clock the test moves: ``advance`` jumps over waits without sleeping."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class InlineExecutor(Executor):
    """Runs each task at submit time, on the caller's thread: deterministic unit tests of the loop."""

    def submit(self, fn, /, *args, **kwargs) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


def record(
    topic: str, value: Any, offset: int = 0, partition: int = 0, key: str | None = "client"
) -> InboundRecord:
    data = value if isinstance(value, bytes) or value is None else json.dumps(value).encode()
    return InboundRecord(topic, partition, offset, key.encode() if key else None, data, 0)


@dataclass
class FakeJob:
    spec: TrainingJobSpec | None
    status: str = "InProgress"
    tags: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


class FakeJobs:
    """SageMaker as the handlers see it: unique names, tags, stop, search by tag."""

    def __init__(self) -> None:
        self.jobs: dict[str, FakeJob] = {}
        self.create_calls = 0
        self.transient_failures = 0
        self.stopped: list[str] = []

    def create(self, spec: TrainingJobSpec, source_dir: Path | None) -> None:
        self.create_calls += 1
        if self.transient_failures:
            self.transient_failures -= 1
            raise TransientError("ThrottlingException: Rate exceeded")
        if spec.job_name in self.jobs:
            raise JobAlreadyExists(spec.job_name)
        files = {}
        if source_dir is not None:
            files = {
                str(p.relative_to(source_dir)): p.read_text() for p in source_dir.rglob("*") if p.is_file()
            }
        self.jobs[spec.job_name] = FakeJob(spec, tags=dict(spec.tags), files=files)

    def describe(self, job_name: str) -> dict[str, Any]:
        if job_name not in self.jobs:
            raise JobNotFound(job_name)
        job = self.jobs[job_name]
        return {
            "TrainingJobName": job_name,
            "TrainingJobArn": "arn:" + job_name,
            "TrainingJobStatus": job.status,
        }

    def tags(self, job_arn: str) -> dict[str, str]:
        return dict(self.jobs[job_arn.removeprefix("arn:")].tags)

    def find_by_tag(self, key: str, value: str) -> list[str]:
        return [name for name, job in self.jobs.items() if job.tags.get(key) == value]

    def stop(self, job_name: str) -> None:
        self.stopped.append(job_name)
        self.jobs[job_name].status = "Stopping"


class FakeScripts:
    def __init__(self, objects: dict[str, bytes] | None = None) -> None:
        self.objects = objects or {}

    def fetch(self, uri: str, max_bytes: int) -> IO[bytes]:
        return io.BytesIO(self.objects[uri])
