"""What ``deploy/`` renders to, and the PromQL of its alerts and dashboard, for the tests in this folder.

:func:`render` runs ``kubectl kustomize`` on an overlay (the same command a deployment runs);
:func:`promql_names` reads the metric and label names out of a PromQL expression without a PromQL
parser: good enough for the expressions in ``deploy/`` and checked on examples in the tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
OVERLAYS = ("base", "overlays/prod", "overlays/kube2iam")
SCHEMAS = Path(__file__).resolve().parent / "schemas"
# Custom resources: validated against the minimal schemas in schemas/ (kubernetes-validate has none).
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.keda.sh-v1alpha1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor.monitoring.coreos.com-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.monitoring.coreos.com-v1.json",
}


def render(overlay: str) -> list[dict[str, Any]]:
    """Every object of ``deploy/<overlay>`` as ``kubectl kustomize`` renders it."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI"):
            pytest.fail("kubectl (with its built-in kustomize) is needed to validate deploy/ and is missing")
        pytest.skip("kubectl is not installed: deploy/ cannot be rendered here")
    out = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / overlay)], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, f"kubectl kustomize deploy/{overlay} failed:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def custom_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    name = CUSTOM_KINDS.get((api_version, kind))
    if name is None:
        return None
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return schema


def alert_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rule = one(objects, "PrometheusRule")
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]


def dashboard(objects: list[dict[str, Any]]) -> dict[str, Any]:
    config_map = one(objects, "ConfigMap", "sm-executor-dashboard")
    (text,) = config_map["data"].values()
    result: dict[str, Any] = json.loads(text)
    return result


def dashboard_exprs(board: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for panel in board["panels"] for t in panel.get("targets", [])]
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            query = query["query"] if isinstance(query, dict) else query
            # Grafana's label_values(selector, label) asks Prometheus what count by (label) (selector) has.
            exprs.append(re.sub(r"^label_values\((.+),\s*(\w+)\)$", r"count by (\2) (\1)", query))
    return exprs


# --------------------------------------------------------------------------------- PromQL names

AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}  # fmt: skip
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp", "floor",
    "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_sum",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln", "log2",
    "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar", "sgn", "sort",
    "sort_desc", "sqrt", "time", "timestamp", "vector", "year", "avg_over_time", "min_over_time",
    "max_over_time", "sum_over_time", "count_over_time", "quantile_over_time", "stddev_over_time",
    "stdvar_over_time", "last_over_time", "present_over_time",
}  # fmt: skip
KEYWORDS = {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "group_left",
            "group_right", "inf", "nan"}  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![\w$])([a-zA-Z_:][a-zA-Z0-9_:]*)")


def promql_names(expr: str) -> tuple[set[str], dict[str, dict[str, set[str]]], set[str]]:
    """``(metrics, matchers, grouping)`` of ``expr``: the metric names it selects, for each the label
    names it matches and the values it asks for (``{metric: {label: {value, ...}}}``, alternatives of a
    plain ``a|b`` regex split), and the labels named in ``by``/``on``/... clauses."""
    matchers: dict[str, dict[str, set[str]]] = {}
    for metric, body in _SELECTOR.findall(expr):
        labels = matchers.setdefault(metric, {})
        for label, op, value in _MATCHER.findall(body):
            values = labels.setdefault(label, set())
            if op == "=":
                values.add(value)
            elif op == "=~" and re.fullmatch(r"[\w-]+(\|[\w-]+)*", value):
                values.update(value.split("|"))
    grouping = {label.strip() for _, labels in _GROUPING.findall(expr) for label in labels.split(",")}
    grouping.discard("")
    text = _STRING.sub('""', expr)
    text = _SELECTOR.sub(lambda m: m.group(1) or "", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b\d+(\.\d+)?[smhdwy]?\b", " ", text)
    words = {w for w in _IDENT.findall(text)}
    metrics = words - AGGREGATIONS - FUNCTIONS - KEYWORDS
    matchers.pop("", None)
    return metrics, matchers, grouping
