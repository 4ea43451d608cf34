"""The Helm chart: ``helm lint --strict`` clean, ``helm template`` for the default values and for each
router accepted by a real API server (dry-run, CRDs installed), the values schema rejecting wrong types,
the chart's CRD byte-identical to crds/, and the chart rendering the same objects as the kustomize base."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.shipping.conftest import Cluster
from tests.shipping.support import CHART, CRD, MANIFESTS, ROUTERS, documents, dry_run, run
from wallbounce_api import CRD_NAME
from wallbounce_local.procs import wait_for

MONITORING = ["--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true"]


def template(helm: Path, namespace: str, *args: str) -> list[dict[str, Any]]:
    return documents(run([helm, "template", "wb", CHART, "--namespace", namespace, *args]).stdout)


def test_helm_lint_is_clean(helm: Path) -> None:
    proc = run([helm, "lint", "--strict", CHART, *MONITORING])
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout
    for router in ROUTERS:
        run([helm, "lint", "--strict", CHART, "--set", f"router={router}"])


def test_default_values_are_accepted_by_the_api_server(helm: Path, cluster: Cluster, namespace: str) -> None:
    objects = template(helm, namespace)
    dry_run(cluster.kubectl, cluster.kubeconfig, objects)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "ConfigMap", "HTTPRoute", "WallBounceRollout", "ClusterRole"} <= kinds
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}, "monitoring CRD objects are opt-in"


@pytest.mark.parametrize("router", ROUTERS)
def test_each_router_is_accepted_by_the_api_server(helm: Path, cluster: Cluster, namespace: str,
                                                   router: str) -> None:
    objects = template(helm, namespace, "--set", f"router={router}", *MONITORING)
    dry_run(cluster.kubectl, cluster.kubeconfig, objects)
    route_kind = {"gatewayAPI": "HTTPRoute", "istio": "VirtualService", "smi": "TrafficSplit"}[router]
    assert {o["kind"] for o in objects} & {"HTTPRoute", "VirtualService", "TrafficSplit"} == {route_kind}
    rollout = next(o for o in objects if o["kind"] == "WallBounceRollout")
    assert list(rollout["spec"]["trafficRouting"]) == [router]
    assert {o["kind"] for o in objects} >= {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


def test_custom_ladder_and_watched_namespaces(helm: Path, cluster: Cluster, namespace: str) -> None:
    objects = template(
        helm, namespace, "--set", "rollout.phases[0].weight=5", "--set", "rollout.phases[0].duration=1m",
        "--set", "rollout.phases[1].weight=50", "--set", "rollout.rollbackStrategy=Gradual",
        "--set", "operator.watchNamespaces={llm,team-b}", "--set", "service.redisUrl=redis://redis:6379/0")
    dry_run(cluster.kubectl, cluster.kubeconfig, objects)
    rollout = next(o for o in objects if o["kind"] == "WallBounceRollout")
    assert [p["weight"] for p in rollout["spec"]["phases"]] == [5, 50]
    operator = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-operator"))
    assert operator["spec"]["template"]["spec"]["containers"][0]["args"][:4] == [
        "--namespace", "llm", "--namespace", "team-b"]


def test_the_crd_rejects_a_bad_ladder_from_values(helm: Path, cluster: Cluster, namespace: str) -> None:
    objects = template(helm, namespace, "--set", "rollout.phases[0].weight=50", "--set", "rollout.phases[1].weight=5")
    rollout = [o for o in objects if o["kind"] == "WallBounceRollout"]
    proc = run([cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "apply", "--dry-run=server", "-f", "-"],
               input_text=yaml.safe_dump_all(rollout), check=False)
    assert proc.returncode != 0 and "phases" in proc.stderr


@pytest.mark.parametrize(("value", "complaint"), [
    ("service.stable.replicas=two", "/service/stable/replicas"),
    ("router=linkerd", "/router"),
    ("operator.metricsPort=eighty", "/operator/metricsPort"),
    ("rollout.confidenceLevel=1", "/rollout/confidenceLevel"),
    ("rollout.interval=soon", "/rollout/interval"),
    ("serviceMonitor.enabled=maybe", "/serviceMonitor/enabled"),
    ("typo=1", "typo"),
])
def test_values_schema_rejects_wrong_values(helm: Path, value: str, complaint: str) -> None:
    proc = run([helm, "template", "wb", CHART, "--set", value], check=False)
    assert proc.returncode != 0, f"--set {value} was accepted"
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert complaint in proc.stderr


def test_the_chart_crd_is_byte_identical_to_crds(helm: Path) -> None:
    assert (CHART / "crds" / "wallbouncerollouts.yaml").read_bytes() == CRD.read_bytes(), (
        "charts/wallbounce/crds/wallbouncerollouts.yaml drifted from crds/: copy it again")
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == ["wallbouncerollouts.yaml"]
    with_crds = documents(run([helm, "template", "wb", CHART, "--include-crds"]).stdout)
    assert any(o["kind"] == "CustomResourceDefinition" for o in with_crds)


def test_no_secret_value_in_the_chart(helm: Path) -> None:
    objects = template(helm, "llm", *MONITORING)
    # the one Secret is the API keys file: tenants and SHA-256 digests, never a key
    secrets = [o for o in objects if o["kind"] == "Secret"]
    assert [s["metadata"]["name"] for s in secrets] == ["techsapo-api-keys"]
    keys = yaml.safe_load(secrets[0]["stringData"]["keys.yaml"])
    assert set(keys) == {"tenants", "keys"} and all("key" not in k for k in keys["keys"])
    digest = "0" * 64
    entry = json.dumps([{"id": "a", "tenant": "default", "sha256": digest}])
    objects = template(helm, "llm", "--set-json", f"service.apiKeys.keys={entry}")
    keys = yaml.safe_load(next(o for o in objects if o["kind"] == "Secret")["stringData"]["keys.yaml"])
    assert keys["keys"] == [{"id": "a", "tenant": "default", "sha256": digest}]
    objects = template(helm, "llm", "--set", "service.apiKeys.existingSecret=mine")
    assert not [o for o in objects if o["kind"] == "Secret"]
    dep = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-canary"))
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["api-keys"]["secret"]["secretName"] == "mine"
    for dep in (o for o in objects if o["kind"] == "Deployment"):
        for env in dep["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if env["name"].endswith("_API_KEY"):
                assert "value" not in env and env["valueFrom"]["secretKeyRef"]["optional"] is True


def test_chart_matches_the_kustomize_base(helm: Path, cluster: Cluster) -> None:
    """Same kinds of objects, same container contract (args, env names, probes, security), same RBAC."""
    chart = template(helm, "wallbounce", *MONITORING, "--set", "rollout.create=false")
    base = documents(run([cluster.kubectl, "kustomize", MANIFESTS / "base"]).stdout)

    def count(objects: list[dict[str, Any]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in objects:
            if o["kind"] not in {"Namespace", "CustomResourceDefinition"}:
                out[o["kind"]] = out.get(o["kind"], 0) + 1
        return out

    assert count(chart) == count(base)

    def container(objects: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
        dep = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"].endswith(suffix))
        c = dict(dep["spec"]["template"]["spec"]["containers"][0])
        c["env"] = sorted(e["name"] for e in c.get("env", []))
        return {k: c[k] for k in ("args", "env", "livenessProbe", "readinessProbe", "securityContext", "ports")}

    for suffix in ("-stable", "-canary", "-operator"):
        assert container(chart, suffix) == container(base, suffix), suffix

    def rules(objects: list[dict[str, Any]]) -> Any:
        return next(o for o in objects if o["kind"] == "ClusterRole")["rules"]

    assert rules(chart) == rules(base)
    chart_rule = next(o for o in chart if o["kind"] == "PrometheusRule")
    base_rule = next(o for o in base if o["kind"] == "PrometheusRule")
    assert chart_rule["spec"] == base_rule["spec"]


def test_chart_service_monitors_select_the_right_services(helm: Path) -> None:
    objects = template(helm, "llm", *MONITORING)
    services = [o for o in objects if o["kind"] == "Service"]
    selected: dict[str, list[str]] = {}
    for monitor in (o for o in objects if o["kind"] == "ServiceMonitor"):
        labels = monitor["spec"]["selector"]["matchLabels"].items()
        relabelings = monitor["spec"]["endpoints"][0]["relabelings"]
        job = next(r["replacement"] for r in relabelings if r["targetLabel"] == "job")
        selected[job] = sorted(s["metadata"]["name"] for s in services if labels <= s["metadata"]["labels"].items())
    assert selected == {"wallbounce-service": ["techsapo-canary", "techsapo-stable"],
                        "wallbounce-operator": ["wb-wallbounce-operator-metrics"]}


def _can(cluster: Cluster, who: str, verb: str, resource: str, ns: str | None) -> bool:
    cmd: list[str | Path] = [cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "auth", "can-i", verb, resource,
                             "--as", who]
    cmd += ["-n", ns] if ns else []
    return run(cmd, check=False).stdout.strip() == "yes"


@pytest.mark.parametrize("scope", ["namespaced", "cluster"])
def test_operator_rbac_follows_the_watched_namespaces(scope: str, helm: Path, cluster: Cluster,
                                                      namespace: str) -> None:
    """With ``watchNamespaces``: a Role and a RoleBinding in each watched namespace and nothing cluster-wide; without:
    a ClusterRole. The real authorizer answers ``kubectl auth can-i`` both ways."""
    from kubernetes import client, config

    watched = [f"{namespace}-a", f"{namespace}-b"]
    other = f"{namespace}-c"
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
    for ns in [*watched, other]:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    release = f"wb{namespace[-6:]}"
    extra = ["--set", f"operator.watchNamespaces={{{','.join(watched)}}}"] if scope == "namespaced" else []
    objects = documents(run([helm, "template", release, CHART, "--namespace", namespace, *extra]).stdout)
    rbac = [o for o in objects if o["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole",
                                                 "ClusterRoleBinding")]
    kinds = sorted(o["kind"] for o in rbac)
    if scope == "namespaced":
        assert kinds == ["Role", "Role", "RoleBinding", "RoleBinding", "ServiceAccount"]
        assert sorted(o["metadata"]["namespace"] for o in rbac if o["kind"] == "Role") == watched
    else:
        assert kinds == ["ClusterRole", "ClusterRoleBinding", "ServiceAccount"]
    base: list[str | Path] = [cluster.kubectl, "--kubeconfig", cluster.kubeconfig]
    run([*base, "apply", "-n", namespace, "-f", "-"], input_text=yaml.safe_dump_all(rbac))
    try:
        sa = next(o["metadata"]["name"] for o in rbac if o["kind"] == "ServiceAccount")
        who = f"system:serviceaccount:{namespace}:{sa}"
        wait_for("the binding to take effect", lambda: _can(cluster, who, "watch", CRD_NAME, watched[0]), 20)
        for ns in watched:
            assert _can(cluster, who, "patch", f"{CRD_NAME}/status", ns)
            assert _can(cluster, who, "update", "httproutes.gateway.networking.k8s.io", ns)
            assert _can(cluster, who, "list", "replicasets.apps", ns)
            assert not _can(cluster, who, "get", "secrets", ns)
        everywhere = scope == "cluster"
        assert _can(cluster, who, "watch", CRD_NAME, other) is everywhere
        assert _can(cluster, who, "update", "httproutes.gateway.networking.k8s.io", other) is everywhere
        assert _can(cluster, who, "list", "namespaces", None) is everywhere
        assert _can(cluster, who, "list", "customresourcedefinitions.apiextensions.k8s.io", None) is everywhere
    finally:
        run([*base, "delete", "-n", namespace, "--ignore-not-found", "-f", "-"], input_text=yaml.safe_dump_all(rbac),
            check=False)
        api.close()
