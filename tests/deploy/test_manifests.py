"""``deploy/``: every overlay renders, every object validates for every supported Kubernetes version, and
the objects agree with each other and with the service (ports, labels, identity, scale, resources).

Kubernetes' own kinds are validated by ``kubernetes-validate`` (strict: unknown fields fail) against the
schemas it bundles for each minor version from :data:`OLDEST_SUPPORTED` to the newest it has; the
custom resources (KEDA, Prometheus Operator) against the minimal schemas in ``schemas/``. No network.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions

from sagemaker_executor.config import OPTIONS
from tests.deploy.manifests import (
    DEPLOY,
    OVERLAYS,
    ROOT,
    alert_rules,
    custom_schema,
    dashboard,
    one,
    render,
)

# Upstream maintains the three newest minors (1.35 to 1.37 in November 2026); managed clusters such as
# Amazon EKS still run older ones under extended support. Newer versions kubernetes-validate adds are
# validated as they come.
OLDEST_SUPPORTED = (1, 32)


def minor(version: object) -> tuple[int, int]:
    major, minor_, *_ = str(version).split(".")
    return int(major), int(minor_)


VERSIONS = [f"{m[0]}.{m[1]}" for m in sorted({minor(v) for v in all_versions()}) if m >= OLDEST_SUPPORTED]
POD_LABELS = {"app": "benchmark-ai", "service": "sm-executor"}
# The alerts issue 11 asks for, by the name each has in prometheusrule.yml.
REQUIRED_ALERTS = {
    "SageMakerExecutorNoProgress",  # no progress while the lag grows
    "SageMakerExecutorCommitStalled",
    "SageMakerExecutorNotReady",
    "SageMakerExecutorDeadLetters",
    "SageMakerExecutorErrorRateHigh",
    "SageMakerExecutorTrackingBehind",
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {overlay: render(overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="module")
def base(rendered: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return rendered["base"]


def validate(obj: dict[str, Any], version: str) -> None:
    """Raise if ``obj`` is not valid for Kubernetes ``version`` (or its custom resource's schema)."""
    schema = custom_schema(obj["apiVersion"], obj["kind"])
    if schema is not None:
        jsonschema.Draft202012Validator(schema).validate(obj)
        return
    kubernetes_validate.validate(obj, version, strict=True)


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(objects, "Deployment", "sm-executor")["spec"]["template"]["spec"]
    return spec


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (only,) = pod_spec(objects)["containers"]
    return dict(only)


# --------------------------------------------------------------------------------- schemas


def test_the_supported_versions_reach_the_newest_the_validator_knows() -> None:
    newest = max(minor(v) for v in all_versions())
    assert VERSIONS[0] == "1.32" and VERSIONS[-1] == f"{newest[0]}.{newest[1]}"
    assert len(VERSIONS) >= 6


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_every_supported_kubernetes_version(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    kinds = set()
    for obj in rendered[overlay]:
        kinds.add(obj["kind"])
        for version in VERSIONS:
            try:
                validate(obj, version)
            except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as error:
                pytest.fail(
                    f"deploy/{overlay}: {obj['kind']} {obj['metadata']['name']} on {version}: {error}"
                )
    expected = {
        "Deployment", "ConfigMap", "ServiceAccount", "ScaledObject", "PodDisruptionBudget", "NetworkPolicy",
        "PodMonitor", "PrometheusRule",
    }  # fmt: skip
    assert kinds == expected


@pytest.mark.parametrize(
    ("kind", "path", "bad"),
    [
        ("Deployment", ("spec", "template", "spec", "containers", 0), {"imagePullPolicyy": "Always"}),
        ("PodDisruptionBudget", ("spec",), {"maxUnavailable": [1]}),
        ("ScaledObject", ("spec",), {"maxReplicas": 3}),
        ("ScaledObject", ("spec", "triggers", 0, "metadata"), {"lagTreshold": "100"}),
        ("PodMonitor", ("spec", "podMetricsEndpoints", 0), {"intervall": "30s"}),
        ("PrometheusRule", ("spec", "groups", 0, "rules", 0), {"for": "ten minutes"}),
    ],
)
def test_a_misspelt_or_mistyped_field_fails_validation(
    base: list[dict[str, Any]], kind: str, path: tuple[Any, ...], bad: dict[str, Any]
) -> None:
    obj = copy.deepcopy(one(base, kind))
    validate(obj, VERSIONS[-1])
    where: Any = obj
    for step in path:
        where = where[step]
    where.update(bad)
    with pytest.raises((kubernetes_validate.ValidationError, jsonschema.ValidationError)):
        validate(obj, VERSIONS[-1])


# --------------------------------------------------------------------------------- identity


def test_irsa_is_the_default_identity(base: list[dict[str, Any]]) -> None:
    account = one(base, "ServiceAccount", "sm-executor")
    assert re.fullmatch(
        r"arn:aws:iam::\d{12}:role/sagemaker-executor-role",
        account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"],
    )
    spec = pod_spec(base)
    assert spec["serviceAccountName"] == "sm-executor"
    assert "iam.amazonaws.com/role" not in one(base, "Deployment")["spec"]["template"]["metadata"].get(
        "annotations", {}
    )
    egress_ports = {p["port"] for rule in one(base, "NetworkPolicy")["spec"]["egress"] for p in rule["ports"]}
    assert 80 not in egress_ports  # no way to the node's instance metadata, hence to the node's role


def test_kube2iam_is_an_overlay(rendered: dict[str, list[dict[str, Any]]]) -> None:
    objects = rendered["overlays/kube2iam"]
    template = one(objects, "Deployment")["spec"]["template"]
    assert template["metadata"]["annotations"]["iam.amazonaws.com/role"] == "sagemaker-executor-role"
    annotations = one(objects, "ServiceAccount")["metadata"].get("annotations") or {}
    assert not any(key.startswith("eks.amazonaws.com/") for key in annotations)
    imds = [
        rule
        for rule in one(objects, "NetworkPolicy")["spec"]["egress"]
        if rule.get("to") == [{"ipBlock": {"cidr": "169.254.169.254/32"}}]
    ]
    assert [p["port"] for rule in imds for p in rule["ports"]] == [80]


# --------------------------------------------------------------------------------- scale and image


def test_the_image_tag_is_the_package_version(rendered: dict[str, list[dict[str, Any]]]) -> None:
    version = re.search(r'version="([^"]+)"', (ROOT / "setup.py").read_text())
    assert version is not None
    for objects in rendered.values():
        assert container(objects)["image"] == f"benchmarkai/sm-executor:{version[1]}"
    assert "newTag" in (DEPLOY / "base" / "kustomization.yaml").read_text()


def test_the_scaledobject_scales_on_the_groups_lag_up_to_the_partition_count(
    base: list[dict[str, Any]],
) -> None:
    scaled = one(base, "ScaledObject")["spec"]
    deployment = one(base, "Deployment", "sm-executor")
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    assert scaled["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    settings = one(base, "ConfigMap", "sm-executor")["data"]
    partitions = int(
        settings.get("NUM_PARTITIONS") or str(next(o.default for o in OPTIONS if o.name == "num_partitions"))
    )
    assert scaled["minReplicaCount"] == 1 and scaled["maxReplicaCount"] == partitions
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "kafka" and trigger["metadata"]["allowIdleConsumers"] == "false"
    # KEDA reads the brokers, group and topic from the executor's own environment: each must be there.
    env = {e["name"] for e in container(base)["env"]}
    from_config_maps = {
        key
        for ref in container(base)["envFrom"]
        for key in one(base, "ConfigMap", ref["configMapRef"]["name"])["data"]
    }
    for key, variable in trigger["metadata"].items():
        if key.endswith("FromEnv"):
            assert variable in env | from_config_maps, (
                f"{key}: {variable} is not in the container's environment"
            )
    assert {trigger["metadata"][k] for k in ("consumerGroupFromEnv", "topicFromEnv")} == {
        "CONSUMER_GROUP_ID",
        "CONSUMER_TOPIC",
    }


def test_prod_keeps_two_replicas_at_least(rendered: dict[str, list[dict[str, Any]]]) -> None:
    scaled = one(rendered["overlays/prod"], "ScaledObject")["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 3)


def test_resources_cover_the_measured_peak_rss(base: list[dict[str, Any]]) -> None:
    bench = json.loads((ROOT / "bench" / "results" / "throughput.json").read_text())
    peak_mib = max(case["peak_rss_mib"] for case in bench["cases"])
    resources = container(base)["resources"]

    def mib(quantity: str) -> int:
        assert quantity.endswith("Mi"), quantity
        return int(quantity[:-2])

    assert peak_mib <= mib(resources["requests"]["memory"]) < peak_mib * 1.25
    # Room for MAX_IN_FLIGHT source archives of up to 16 MiB each held in memory (adapters/sagemaker.py).
    assert mib(resources["limits"]["memory"]) >= peak_mib + 16 * 16


# --------------------------------------------------------------------------------- selectors and ports


def test_pdb_podmonitor_and_networkpolicy_select_the_executor_pods(base: list[dict[str, Any]]) -> None:
    template_labels = one(base, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert POD_LABELS.items() <= template_labels.items()
    for kind, selector in [
        ("PodDisruptionBudget", one(base, "PodDisruptionBudget")["spec"]["selector"]),
        ("PodMonitor", one(base, "PodMonitor")["spec"]["selector"]),
        ("NetworkPolicy", one(base, "NetworkPolicy")["spec"]["podSelector"]),
    ]:
        assert selector == {"matchLabels": POD_LABELS}, kind
    assert one(base, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_probes_scrape_and_ingress_use_the_health_port(base: list[dict[str, Any]]) -> None:
    (port,) = container(base)["ports"]
    assert port["name"] == "http"
    assert str(port["containerPort"]) == one(base, "ConfigMap", "sm-executor")["data"]["HEALTH_PORT"]
    assert container(base)["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container(base)["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    (endpoint,) = one(base, "PodMonitor")["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    (ingress,) = one(base, "NetworkPolicy")["spec"]["ingress"]
    assert ingress["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_egress_is_dns_kafka_and_https_only(base: list[dict[str, Any]]) -> None:
    ports = {
        (p["port"], p["protocol"])
        for rule in one(base, "NetworkPolicy")["spec"]["egress"]
        for p in rule["ports"]
    }
    assert ports == {
        (53, "UDP"),
        (53, "TCP"),
        (443, "TCP"),
        (9092, "TCP"),
        (9094, "TCP"),
        (9096, "TCP"),
        (9098, "TCP"),
    }


# --------------------------------------------------------------------------------- alerts and dashboard


def test_every_alert_says_what_is_wrong_and_links_its_runbook(base: list[dict[str, Any]]) -> None:
    operations = (ROOT / "docs" / "OPERATIONS.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        for heading in re.findall(r"^#+ (.+)$", operations, re.M)
    }
    rules = alert_rules(base)
    assert {r["alert"] for r in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("critical", "warning"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        document, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert document == "docs/OPERATIONS.md" and anchor in anchors, (
            f"{rule['alert']}: no section #{anchor}"
        )


def test_the_dashboard_is_a_grafana_configmap_of_the_file_in_the_repository(
    base: list[dict[str, Any]],
) -> None:
    config_map = one(base, "ConfigMap", "sm-executor-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = dashboard(base)
    assert board == json.loads((DEPLOY / "base" / "grafana-dashboard.json").read_text())
    assert board["uid"] == "sm-executor" and len(board["panels"]) >= 8
    for panel in board["panels"]:
        assert panel["targets"] and panel["title"] and panel["description"], panel.get("title")
