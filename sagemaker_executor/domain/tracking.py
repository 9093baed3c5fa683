"""The durable record of one tracked training job, and how it is built from the executor event.

``service.tracker`` keeps one :class:`TrackedJob` per job it created, in a compacted Kafka topic keyed by
job name, in the partition whose number is that of the submission's input partition -- so whoever owns
input partition *p* in the consumer group also owns the tracking of the jobs submitted through it,
and a rebalance moves both together. The record says what was last reported, so a restarted or new
owner publishes only what changed since. A job that ended leaves a tombstone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sagemaker_executor.domain.lifecycle import JobState


@dataclass(frozen=True)
class TrackedJob:
    job_name: str
    action_id: str
    client_id: str
    partition: int
    created_ms: int
    executor_event: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    merge: bool = False
    dashboard: str | None = None
    region: str | None = None
    reported: JobState | None = None

    def with_reported(self, state: JobState) -> TrackedJob:
        return replace(self, reported=state)

    def to_json(self) -> dict[str, Any]:
        return {
            "job_name": self.job_name,
            "action_id": self.action_id,
            "client_id": self.client_id,
            "partition": self.partition,
            "created_ms": self.created_ms,
            "executor_event": self.executor_event,
            "labels": self.labels,
            "merge": self.merge,
            "dashboard": self.dashboard,
            "region": self.region,
            "reported": self.reported.to_json() if self.reported else None,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrackedJob:
        reported = data.get("reported")
        return cls(
            job_name=str(data["job_name"]),
            action_id=str(data["action_id"]),
            client_id=str(data["client_id"]),
            partition=int(data["partition"]),
            created_ms=int(data["created_ms"]),
            executor_event=dict(data["executor_event"]),
            labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
            merge=bool(data.get("merge", False)),
            dashboard=data.get("dashboard"),
            region=data.get("region"),
            reported=JobState(str(data["job_name"]), reported["status"], reported["secondary"])
            if isinstance(reported, Mapping)
            else None,
        )


def tracked_job(executor_event: Mapping[str, Any], partition: int, now_ms: int) -> TrackedJob:
    """The record for a job just created from ``executor_event`` (already validated upstream)."""
    contents = executor_event["payload"]["toml"]["contents"]
    info = contents.get("info") or {}
    params = contents.get("custom_params") or {}
    return TrackedJob(
        job_name=str(executor_event["payload"]["job"]["id"]),
        action_id=str(executor_event["action_id"]),
        client_id=str(executor_event["client_id"]),
        partition=partition,
        created_ms=now_ms,
        executor_event=dict(executor_event),
        labels={str(k): str(v) for k, v in (info.get("labels") or {}).items()},
        merge=bool(params.get("merge", False)),
        dashboard=params.get("dashboard"),
        region=params.get("region"),
    )


def metric_labels(job: TrackedJob) -> dict[str, str]:
    """Labels of the job's metrics: as the Kubernetes path has them (CONTRACT §4.5)."""
    return {"action-id": job.action_id, "client-id": job.client_id, **job.labels}


@dataclass(frozen=True)
class MetricsBatch:
    """A finished job's final metrics for CloudWatch (``custom_params.merge``), with its labels as
    dimensions and, with ``dashboard``, the dashboard to show them on."""

    region: str
    job_name: str
    labels: dict[str, str]
    metrics: list[tuple[str, float, int]]  # (name, value, timestamp ms)
    dashboard: str | None = None
