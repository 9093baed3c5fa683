"""The alerts and the dashboard use only metrics and labels the service really exports.

A real :class:`ServiceMetrics` behind a real :class:`HealthServer` is driven through each of its
reports, ``/metrics`` is scraped over HTTP, and every metric name, label name and (pre-exported) label
value in ``deploy/base/prometheusrule.yml`` and the Grafana dashboard is looked up in what came back. A
renamed metric or label fails here instead of leaving an alert that can never fire.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sagemaker_executor.adapters.http import HealthServer
from sagemaker_executor.service.observability import Health, ServiceMetrics
from sagemaker_executor.service.submission import SubmissionOutcome
from tests.deploy.manifests import alert_rules, dashboard, dashboard_exprs, promql_names, render

ROOT = Path(__file__).resolve().parents[2]
# Labels Prometheus adds to every series it scrapes through the PodMonitor (target labels), and the
# histogram bucket bound.
TARGET_LABELS = {"namespace", "pod", "container", "endpoint", "job", "instance"}


@pytest.fixture(scope="module")
def exported() -> Iterator[dict[str, dict[str, set[str]]]]:
    """``{series name: {label: values}}`` as scraped from /metrics after every report was made once."""
    metrics = ServiceMetrics()
    metrics.consumed("submission-submitted")
    metrics.submitted()
    metrics.failure("transient")
    metrics.set_in_flight(2)
    metrics.observe_submission(0.3)
    metrics.set_lag("BAI_APP_FETCHER", 0, 5, group="sm-executor")
    metrics.set_tracked(1)
    metrics.set_dependency_up("aws", True)
    metrics.set_dependency_up("kafka", False)
    metrics.set_outage(None)
    server = HealthServer(Health(), metrics, host="127.0.0.1", port=0)
    server.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        server.stop()
    series: dict[str, dict[str, set[str]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = series.setdefault(sample.name, {})
            for label, value in sample.labels.items():
                labels.setdefault(label, set()).add(value)
    yield series


def known_outcomes() -> set[str]:
    """The ``outcome`` label values the consumer loop reports (service/attempts.py and its handlers)."""
    attempts = (ROOT / "sagemaker_executor" / "service" / "attempts.py").read_text()
    literals = {"dead-letter", "internal-error", "gave-up"}
    for literal in literals:
        assert f'"{literal}"' in attempts, f"service/attempts.py no longer reports the outcome {literal!r}"
    return {f"submission-{o.value}" for o in SubmissionOutcome} | literals


def expressions() -> list[tuple[str, str]]:
    objects = render("base")
    return [(rule["alert"], rule["expr"]) for rule in alert_rules(objects)] + [
        ("dashboard", expr) for expr in dashboard_exprs(dashboard(objects))
    ]


def problems(expr: str, exported: dict[str, dict[str, set[str]]]) -> list[str]:
    """What ``expr`` uses that /metrics does not have."""
    metrics, matchers, grouping = promql_names(expr)
    found = []
    for metric in sorted(metrics | set(matchers)):
        if metric not in exported:
            found.append(f"metric {metric} is not exported")
            continue
        for label, values in matchers.get(metric, {}).items():
            if label in TARGET_LABELS:
                continue
            if label not in exported[metric]:
                found.append(f"{metric} has no label {label}")
            elif label == "outcome":
                found += [f"{metric}: no outcome {v!r}" for v in sorted(values - known_outcomes())]
            else:
                found += [
                    f"{metric}{{{label}={v!r}}} is not exported"
                    for v in sorted(values - exported[metric][label])
                ]
    labels = TARGET_LABELS | {label for m in metrics if m in exported for label in exported[m]}
    found += [f"no metric in it has the label {label}" for label in sorted(grouping - labels)]
    return found


def test_the_name_reader_finds_metrics_labels_and_values() -> None:
    metrics, matchers, grouping = promql_names(
        'sum by (namespace, topic) (rate(foo_total{kind="dead_letter", outcome=~"a|b-c"}[5m])) > 0.5 '
        "and on (pod) histogram_quantile(0.95, sum by (le) (rate(bar_bucket[5m]))) unless baz offset 30m"
    )
    assert metrics == {"foo_total", "bar_bucket", "baz"}
    assert matchers == {"foo_total": {"kind": {"dead_letter"}, "outcome": {"a", "b-c"}}}
    assert grouping == {"namespace", "topic", "pod", "le"}


def test_a_metric_or_label_the_service_does_not_export_is_caught(
    exported: dict[str, dict[str, set[str]]],
) -> None:
    assert problems("sum by (namespace) (rate(sm_executor_messages_consumed_total[5m]))", exported) == []
    assert problems("rate(sm_executor_records_total[5m])", exported) == [
        "metric sm_executor_records_total is not exported"
    ]
    assert problems('sm_executor_failures_total{kind="dead_letters"}', exported) == [
        "sm_executor_failures_total{kind='dead_letters'} is not exported"
    ]
    assert problems('sm_executor_outage{dependency="aws", reason="x"}', exported) == [
        "sm_executor_outage has no label reason"
    ]
    assert problems("sum by (group) (sm_executor_tracked_jobs)", exported) == [
        "no metric in it has the label group"
    ]
    assert problems('sm_executor_messages_consumed_total{outcome="submission-failed"}', exported) == [
        "sm_executor_messages_consumed_total: no outcome 'submission-failed'"
    ]


@pytest.mark.parametrize(("where", "expr"), expressions())
def test_every_alert_and_dashboard_query_uses_only_what_metrics_exports(
    exported: dict[str, dict[str, set[str]]], where: str, expr: str
) -> None:
    one_line = " ".join(expr.split())
    assert problems(expr, exported) == [], f"{where}: {one_line}"


def test_every_metric_of_the_service_appears_on_the_dashboard(
    exported: dict[str, dict[str, set[str]]],
) -> None:
    """The service's own ``sm_executor_*`` series; the client library's process and platform series
    and an ``*_info`` gauge are for ad-hoc queries, not panels."""
    used = set()
    for expr in dashboard_exprs(dashboard(render("base"))):
        metrics, matchers, _ = promql_names(expr)
        used |= metrics | set(matchers)
    families = {
        re.sub(r"_(bucket|count|sum)$", "", name)
        for name in exported
        if name.startswith("sm_executor_") and not name.endswith(("_created", "_info"))
    }
    missing = {f for f in families if not any(u == f or u.startswith(f + "_") for u in used)}
    assert len(families) >= 9 and missing == set()
