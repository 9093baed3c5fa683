"""The CloudWatch wrapper for ``custom_params.merge`` / ``dashboard``: final metrics of a job become
CloudWatch metrics in ``ANUBIS/METRICS`` with the descriptor's labels as dimensions, and optionally a
dashboard showing them -- what the original did, minus blocking the consumer while the job ran.

``CloudWatchPublisher`` works off a queue on its own daemon thread; ``service.tracker`` hands it work
and never waits. Failures are logged, never raised: these metrics also go out on ``BAI_METRICS``.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sagemaker_executor.adapters.aws import client
from sagemaker_executor.domain import strictjson

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch.type_defs import DimensionTypeDef, MetricDatumTypeDef

# What the service hands over, declared with the tracked job it comes from (importable here too).
from sagemaker_executor.domain.tracking import MetricsBatch as MetricsBatch

log = logging.getLogger(__name__)

NAMESPACE = "ANUBIS/METRICS"
MAX_DIMENSIONS = 30


class CloudWatchPublisher:
    def __init__(self, session: boto3.Session, default_region: str, retry_attempts: int) -> None:
        self._session = session
        self._default_region = default_region
        self._retry_attempts = retry_attempts
        self._queue: queue.Queue[MetricsBatch | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="cloudwatch-publisher", daemon=True)
        self._thread.start()

    def submit(self, batch: MetricsBatch) -> None:
        self._queue.put(batch)

    def close(self, timeout_s: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            try:
                self.publish(batch)
            except (ClientError, BotoCoreError) as error:
                log.warning("CloudWatch publishing for %s failed: %s", batch.job_name, error)

    def publish(self, batch: MetricsBatch) -> None:
        cloudwatch = client(
            boto3.Session(region_name=batch.region or self._default_region)
            if batch.region and batch.region != self._default_region
            else self._session,
            "cloudwatch",
            self._retry_attempts,
        )
        # Typed before the slice: mypy reads a dict literal as a TypedDict only where one is expected.
        labelled: list[DimensionTypeDef] = [
            {"Name": k, "Value": v} for k, v in sorted(batch.labels.items()) if v
        ]
        dimensions = labelled[:MAX_DIMENSIONS]
        data: list[MetricDatumTypeDef] = [
            {
                "MetricName": name,
                "Dimensions": dimensions,
                "Value": value,
                "Timestamp": datetime.fromtimestamp(stamp / 1000, UTC) if stamp else datetime.now(UTC),
            }
            for name, value, stamp in batch.metrics
        ]
        for start in range(0, len(data), 20):
            cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data[start : start + 20])
        if batch.dashboard:
            body = strictjson.dumps(dashboard_body(batch, dimensions))
            cloudwatch.put_dashboard(DashboardName=batch.dashboard, DashboardBody=body)
        log.info("published %d metrics of %s to CloudWatch", len(data), batch.job_name)


def dashboard_body(batch: MetricsBatch, dimensions: Sequence[DimensionTypeDef]) -> dict[str, Any]:
    """One single-value widget per metric of the job."""
    flat: list[str] = [item for d in dimensions for item in (d["Name"], d["Value"])]
    widgets = [
        {
            "type": "metric",
            "x": (index % 3) * 8,
            "y": (index // 3) * 6,
            "width": 8,
            "height": 6,
            "properties": {
                "metrics": [[NAMESPACE, name, *flat]],
                "view": "singleValue",
                "region": batch.region,
                "title": f"{name} ({batch.job_name})",
                "stat": "Average",
                "period": 300,
            },
        }
        for index, (name, _value, _stamp) in enumerate(batch.metrics)
    ]
    return {"widgets": widgets}
