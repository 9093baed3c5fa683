"""custom_params.merge / dashboard: final metrics reach CloudWatch from the publisher's own thread (moto)."""

from __future__ import annotations

import json

import boto3
from moto import mock_aws

from sagemaker_executor.adapters.cloudwatch import NAMESPACE, CloudWatchPublisher, MetricsBatch


def test_metrics_and_dashboard_are_published_off_the_callers_thread() -> None:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        publisher = CloudWatchPublisher(session, "us-east-1", retry_attempts=2)
        publisher.submit(
            MetricsBatch(
                region="us-east-1",
                job_name="job-1",
                labels={"task_name": "resnet", "batch_size": "32"},
                metrics=[("throughput", 123.5, 1_700_000_000_000), ("loss", 0.25, 1_700_000_000_000)],
                dashboard="anubis_dashboards",
            )
        )
        publisher.close()  # drains the queue
        cloudwatch = session.client("cloudwatch")
        listed = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
        assert {m["MetricName"] for m in listed} == {"throughput", "loss"}
        dimensions = {d["Name"]: d["Value"] for d in listed[0]["Dimensions"]}
        assert dimensions == {"task_name": "resnet", "batch_size": "32"}
        body = json.loads(cloudwatch.get_dashboard(DashboardName="anubis_dashboards")["DashboardBody"])
        assert [w["properties"]["metrics"][0][1] for w in body["widgets"]] == ["throughput", "loss"]


def test_a_failing_publication_is_logged_and_the_next_one_still_goes_out(caplog, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        publisher = CloudWatchPublisher(session, "us-east-1", retry_attempts=1)
        real = publisher.publish
        calls: list[str] = []

        def flaky(batch: MetricsBatch) -> None:
            calls.append(batch.job_name)
            if batch.job_name == "bad":
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "PutMetricData")
            real(batch)

        monkeypatch.setattr(publisher, "publish", flaky)
        for name in ("bad", "good"):
            publisher.submit(
                MetricsBatch(region="us-east-1", job_name=name, labels={}, metrics=[("m", 1.0, 0)])
            )
        publisher.close()
        assert calls == ["bad", "good"]
        assert "CloudWatch publishing for bad failed" in caplog.text
        assert session.client("cloudwatch").list_metrics(Namespace=NAMESPACE)["Metrics"]
