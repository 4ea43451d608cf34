"""The Helm charts (charts/wallbounce-operator, charts/wallbounce-service): ``helm lint --strict`` clean, rendered
objects accepted by the real API server (dry-run), the values schemas refusing wrong values and matching the
templates both ways (every value a template reads is in the schema, every schema value is read), the operator's
scale values (replicas, shards, PDB, anti-affinity, the downward API, Lease RBAC), the CRD both ways (crds/ and the
opt-in template), and the charts rendering the same objects as the kustomize base."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.shipping.conftest import Cluster
from tests.shipping.support import (
    CHARTS,
    CRD,
    KUBE_VERSION,
    MANIFESTS,
    OPERATOR_CHART,
    ROUTERS,
    SERVICE_CHART,
    documents,
    dry_run,
    run,
)

SERVICE_MONITORING = ["--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true"]
OPERATOR_MONITORING = ["--set", "metrics.serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true"]


def template(helm: Path, chart: Path, namespace: str, *args: str, release: str = "wb") -> list[dict[str, Any]]:
    return documents(run([helm, "template", release, chart, "--namespace", namespace, *KUBE_VERSION, *args]).stdout)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def operator_pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(of_kind(objects, "Deployment")[0]["spec"]["template"]["spec"])


@pytest.mark.parametrize("chart", CHARTS, ids=lambda c: c.name)
def test_helm_lint_is_clean(helm: Path, chart: Path) -> None:
    extra = SERVICE_MONITORING if chart == SERVICE_CHART else OPERATOR_MONITORING
    proc = run([helm, "lint", "--strict", *KUBE_VERSION, chart, *extra])
    assert "1 chart(s) linted, 0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout
    if chart == SERVICE_CHART:
        for router in ROUTERS:
            run([helm, "lint", "--strict", *KUBE_VERSION, chart, "--set", f"router={router}"])


def test_charts_declare_what_users_look_for() -> None:
    for chart in CHARTS:
        meta = yaml.safe_load((chart / "Chart.yaml").read_text())
        assert meta["name"] == chart.name and meta["kubeVersion"] and meta["apiVersion"] == "v2"
        values = yaml.safe_load((chart / "values.yaml").read_text())
        for key in ("nameOverride", "imagePullSecrets", "serviceAccount", "podAnnotations", "podLabels",
                    "podSecurityContext", "securityContext", "resources", "nodeSelector", "tolerations", "affinity",
                    "topologySpreadConstraints", "priorityClassName", "podDisruptionBudget", "extraEnv"):
            assert key in values, f"{chart.name}: values.{key}"
    operator = yaml.safe_load((OPERATOR_CHART / "values.yaml").read_text())
    for key in ("fullnameOverride", "rbac", "crds", "replicas", "shards", "extraArgs", "metrics", "prometheusRule",
                "notifications"):
        assert key in operator, f"wallbounce-operator: values.{key}"
    assert operator["rbac"]["scope"] == "cluster" and operator["replicas"] == 2 and operator["shards"] == 8


def test_default_values_are_accepted_by_the_api_server(helm: Path, cluster: Cluster, namespace: str) -> None:
    operator = template(helm, OPERATOR_CHART, namespace)
    service = template(helm, SERVICE_CHART, namespace)
    dry_run(cluster.kubectl, cluster.kubeconfig, operator + service)
    assert {o["kind"] for o in operator} == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
                                             "RoleBinding", "Deployment", "Service", "PodDisruptionBudget",
                                             "ConfigMap"}
    assert {"Deployment", "Service", "ConfigMap", "HTTPRoute", "WallBounceRollout", "Secret"} <= {
        o["kind"] for o in service}
    assert not {o["kind"] for o in operator + service} & {"ServiceMonitor", "PrometheusRule",
                                                         "CustomResourceDefinition"}, "opt-in objects"


@pytest.mark.parametrize("router", ROUTERS)
def test_each_router_is_accepted_by_the_api_server(helm: Path, cluster: Cluster, namespace: str,
                                                   router: str) -> None:
    objects = template(helm, SERVICE_CHART, namespace, "--set", f"router={router}", *SERVICE_MONITORING)
    dry_run(cluster.kubectl, cluster.kubeconfig, objects)
    route_kind = {"gatewayAPI": "HTTPRoute", "istio": "VirtualService", "smi": "TrafficSplit"}[router]
    routes = [o for o in objects if o["kind"] in {"HTTPRoute", "VirtualService", "TrafficSplit"}]
    assert [r["kind"] for r in routes] == [route_kind]
    assert routes[0]["metadata"]["annotations"] == {"wallbounce.dev/rollout": "techsapo"}, "the owner annotation"
    rollout = of_kind(objects, "WallBounceRollout")[0]
    assert list(rollout["spec"]["trafficRouting"]) == [router]
    assert "prometheus" not in rollout["spec"]["analysis"], "empty address: the operator's default"
    assert {o["kind"] for o in objects} >= {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


def test_operator_scale_values(helm: Path, cluster: Cluster, namespace: str) -> None:
    """replicas, shards and their flags, POD_NAME/POD_NAMESPACE from the downward API, the PDB, anti-affinity, a
    topologySpreadConstraints passthrough, and the Leases' Role in the release namespace."""
    spread = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
               "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "wallbounce-operator"}}}]
    objects = template(helm, OPERATOR_CHART, namespace, "--set", "replicas=3", "--set", "shards=16",
                       "--set-json", f"topologySpreadConstraints={json.dumps(spread)}", "--set", "podAntiAffinity=hard",
                       "--set", "priorityClassName=system-cluster-critical", *OPERATOR_MONITORING)
    dry_run(cluster.kubectl, cluster.kubeconfig, objects)
    deployment = of_kind(objects, "Deployment")[0]
    assert deployment["spec"]["replicas"] == 3
    pod = operator_pod(objects)
    container = pod["containers"][0]
    args = container["args"]
    flags = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--") and
             not args[i + 1].startswith("--")}
    assert flags["--shards"] == "16" and flags["--replica-id"] == "$(POD_NAME)"
    assert flags["--lease-namespace"] == "$(POD_NAMESPACE)"
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in container["env"] if "valueFrom" in e}
    assert env == {"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"}
    assert pod["topologySpreadConstraints"] == spread
    assert pod["priorityClassName"] == "system-cluster-critical"
    required = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert required["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    pdb = of_kind(objects, "PodDisruptionBudget")[0]
    assert pdb["spec"] == {"minAvailable": 1, "selector": deployment["spec"]["selector"]}
    lease_role = next(o for o in of_kind(objects, "Role") if o["metadata"]["name"].endswith("-leases"))
    assert lease_role["metadata"]["namespace"] == namespace
    assert lease_role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                                    "verbs": ["list", "create", "update", "delete"]}]
    single = template(helm, OPERATOR_CHART, namespace, "--set", "replicas=1", "--set", "podAntiAffinity=")
    assert not of_kind(single, "PodDisruptionBudget"), "a PDB of one replica would block every drain"
    assert "affinity" not in operator_pod(single)


def test_conventional_values_reach_the_pods(helm: Path, cluster: Cluster, namespace: str) -> None:
    common = ["--set", "imagePullSecrets[0].name=regcred", "--set", "podAnnotations.team=llm",
              "--set", "podLabels.tier=gold", "--set", "serviceAccount.annotations.role=x",
              "--set", "extraEnv[0].name=HTTPS_PROXY", "--set", "extraEnv[0].value=http://proxy:3128"]
    operator = template(helm, OPERATOR_CHART, namespace, *common, "--set", "nameOverride=wbo",
                        "--set", "extraArgs[0]=--verbose", "--set", "image.pullPolicy=Always")
    service = template(helm, SERVICE_CHART, namespace, *common, "--set", "canary.image.tag=v2",
                       "--set", "canary.image.pullPolicy=Always", "--set", "canary.extraEnv[0].name=ONLY_CANARY",
                       "--set-string", "canary.extraEnv[0].value=1", "--set", "podDisruptionBudget.enabled=true")
    dry_run(cluster.kubectl, cluster.kubeconfig, operator + service)
    pods = {d["metadata"]["name"]: d["spec"]["template"] for d in of_kind(operator + service, "Deployment")}
    assert set(pods) == {"wb-wbo", "techsapo-stable", "techsapo-canary"}
    for name, pod in pods.items():
        assert pod["metadata"]["annotations"]["team"] == "llm" and pod["metadata"]["labels"]["tier"] == "gold", name
        assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}], name
        env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
        assert env["HTTPS_PROXY"] == "http://proxy:3128", name
    assert pods["wb-wbo"]["spec"]["containers"][0]["args"][-1] == "--verbose"
    assert pods["wb-wbo"]["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    canary, stable = pods["techsapo-canary"]["spec"]["containers"][0], pods["techsapo-stable"]["spec"]["containers"][0]
    assert (canary["image"], canary["imagePullPolicy"]) == ("ghcr.io/wallbounce-rollouts/service:v2", "Always")
    assert (stable["image"], stable["imagePullPolicy"]) == ("ghcr.io/wallbounce-rollouts/service:0.1.0",
                                                            "IfNotPresent")
    assert "ONLY_CANARY" in {e["name"] for e in canary["env"]} and "ONLY_CANARY" not in {e["name"] for e in
                                                                                          stable["env"]}
    assert len(of_kind(service, "PodDisruptionBudget")) == 2
    accounts = {a["metadata"]["name"]: a for a in of_kind(operator + service, "ServiceAccount")}
    assert set(accounts) == {"wb-wbo", "techsapo"}


def test_custom_ladder_and_watched_namespaces(helm: Path, cluster: Cluster, namespace: str) -> None:
    service = template(
        helm, SERVICE_CHART, namespace, "--set", "rollout.phases[0].weight=5", "--set", "rollout.phases[0].duration=1m",
        "--set", "rollout.phases[1].weight=50", "--set", "rollout.rollbackStrategy=Gradual",
        "--set", "redisUrl=redis://redis:6379/0", "--set", "rollout.prometheusAddress=http://prom:9090")
    operator = template(helm, OPERATOR_CHART, namespace, "--set", "rbac.scope=namespace",
                        "--set", "watchNamespaces={llm,team-b}")
    dry_run(cluster.kubectl, cluster.kubeconfig, service + [o for o in operator if o["kind"] not in {"Role",
                                                                                                   "RoleBinding"}])
    rollout = of_kind(service, "WallBounceRollout")[0]
    assert [p["weight"] for p in rollout["spec"]["phases"]] == [5, 50]
    assert rollout["spec"]["analysis"]["prometheus"] == {"address": "http://prom:9090"}
    assert operator_pod(operator)["containers"][0]["args"][:4] == ["--namespace", "llm", "--namespace", "team-b"]
    alone = template(helm, OPERATOR_CHART, namespace, "--set", "rbac.scope=namespace")
    assert operator_pod(alone)["containers"][0]["args"][:2] == ["--namespace", namespace], "default: its own"
    proc = run([helm, "template", "wb", OPERATOR_CHART, *KUBE_VERSION, "--set", "watchNamespaces={a}"], check=False)
    assert proc.returncode != 0 and "watchNamespaces needs rbac.scope=namespace" in proc.stderr


def test_the_crd_rejects_a_bad_ladder_from_values(helm: Path, cluster: Cluster, namespace: str) -> None:
    objects = template(helm, SERVICE_CHART, namespace, "--set", "rollout.phases[0].weight=50",
                       "--set", "rollout.phases[1].weight=5")
    rollout = of_kind(objects, "WallBounceRollout")
    proc = run([cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "apply", "--dry-run=server", "-f", "-"],
               input_text=yaml.safe_dump_all(rollout), check=False)
    assert proc.returncode != 0 and "phases" in proc.stderr


@pytest.mark.parametrize(("chart", "value", "complaint"), [
    (SERVICE_CHART, "stable.replicas=two", "/stable/replicas"),
    (SERVICE_CHART, "canary.image.pullPolicy=Sometimes", "/canary/image/pullPolicy"),
    (SERVICE_CHART, "router=linkerd", "/router"),
    (SERVICE_CHART, "rollout.confidenceLevel=1", "/rollout/confidenceLevel"),
    (SERVICE_CHART, "rollout.interval=soon", "/rollout/interval"),
    (SERVICE_CHART, "serviceMonitor.enabled=maybe", "/serviceMonitor/enabled"),
    (SERVICE_CHART, "typo=1", "typo"),
    (SERVICE_CHART, "canary.extraEnv[0].name=X,canary.extraEnv[0].value=1", "/canary/extraEnv/0/value"),
    (OPERATOR_CHART, "metrics.port=eighty", "/metrics/port"),
    (OPERATOR_CHART, "rbac.scope=everywhere", "/rbac/scope"),
    (OPERATOR_CHART, "shards=0", "/shards"),
    (OPERATOR_CHART, "notifications.targets.slack=not-a-url", "/notifications/targets/slack"),
    (OPERATOR_CHART, "watchNamespaces={Bad_Name}", "/watchNamespaces/0"),
    (OPERATOR_CHART, "operator.enabled=true", "operator"),
])
def test_values_schema_rejects_wrong_values(helm: Path, chart: Path, value: str, complaint: str) -> None:
    proc = run([helm, "template", "wb", chart, *KUBE_VERSION, "--set", value], check=False)
    assert proc.returncode != 0, f"--set {value} was accepted"
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert complaint in proc.stderr


# ----- the schema and the templates, both ways ---------------------------------------------------------------------

#: template variables bound to values: `$name := .Values.path` is found by the scanner; these are bound otherwise
ALIASES = {
    SERVICE_CHART: {"$v": ["stable", "canary"], "$image": ["image", "stable.image", "canary.image"]},
    OPERATOR_CHART: {},
}


def used_paths(chart: Path) -> set[str]:
    """Every values path a template (or helper) reads: ``.Values.a.b``, and ``$x.a.b`` for variables bound to a
    values path."""
    text = "\n".join(p.read_text() for p in (chart / "templates").iterdir() if p.suffix in {".yaml", ".tpl", ".txt"})
    aliases: dict[str, list[str]] = {k: list(v) for k, v in ALIASES[chart].items()}
    for var, path in re.findall(r"(\$\w+) := \.Values((?:\.\w+)*)", text):
        aliases[var] = [path.lstrip(".")]
    used = {m for m in re.findall(r"\.Values\.([\w.]+)", text)}
    for var, bases in aliases.items():
        for sub in re.findall(re.escape(var) + r"\.([\w.]+)", text):
            used.update(f"{b}.{sub}" if b else sub for b in bases)
    return {u.rstrip(".") for u in used}


def schema_leaves(schema: dict[str, Any], prefix: str = "") -> set[str]:
    """Value paths the schema defines: properties of objects that declare them, down to scalars, arrays and
    free-form objects."""
    props = schema.get("properties")
    if not props:
        return {prefix} if prefix else set()
    out: set[str] = set()
    for name, sub in props.items():
        out |= schema_leaves(sub, f"{prefix}.{name}" if prefix else name)
    return out


def resolves(schema: dict[str, Any], path: str) -> bool:
    node = schema
    for part in path.split("."):
        props = node.get("properties")
        if props is None:
            return node.get("type") == "object"  # free-form (resources, config, ...): any key
        if part not in props:
            return False
        node = props[part]
    return True


@pytest.mark.parametrize("chart", CHARTS, ids=lambda c: c.name)
def test_every_template_value_is_in_the_schema_and_every_schema_value_is_used(chart: Path) -> None:
    schema = json.loads((chart / "values.schema.json").read_text())
    used = used_paths(chart)
    assert len(used) > 20, used
    unknown = sorted(p for p in used if not resolves(schema, p))
    assert not unknown, f"{chart.name}: templates read values the schema does not define: {unknown}"
    leaves = schema_leaves(schema) - {"global"}
    unused = sorted(leaf for leaf in leaves
                    if not any(leaf == u or leaf.startswith(u + ".") or u.startswith(leaf + ".") for u in used))
    assert not unused, f"{chart.name}: the schema allows values no template reads: {unused}"
    defaults = yaml.safe_load((chart / "values.yaml").read_text())

    def paths(value: Any, node: dict[str, Any], prefix: str) -> set[str]:
        """The values.yaml keys, down to where the schema stops declaring properties."""
        if not isinstance(value, dict) or "properties" not in node:
            return {prefix}
        out: set[str] = set()
        for key, sub in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out |= paths(sub, node["properties"][key], path) if key in node["properties"] else {path}
        return out

    missing = sorted(p for p in paths(defaults, schema, "") if not resolves(schema, p))
    assert not missing, f"{chart.name}: values.yaml has keys the schema lacks: {missing}"


def test_the_scanner_finds_an_unused_value(tmp_path: Path) -> None:
    """The both-ways check can fail: a schema value no template reads is reported."""
    import shutil

    copy = tmp_path / SERVICE_CHART.name
    shutil.copytree(SERVICE_CHART, copy)
    schema = json.loads((copy / "values.schema.json").read_text())
    schema["properties"]["canary"]["properties"]["surge"] = {"type": "integer"}
    (copy / "values.schema.json").write_text(json.dumps(schema))
    ALIASES[copy] = ALIASES[SERVICE_CHART]
    try:
        leaves = schema_leaves(schema)
        used = used_paths(copy)
        assert "canary.surge" in leaves and not any(u.startswith("canary.surge") for u in used)
        assert "canary.image.pullPolicy" in used, "the per-variant pull policy is read"
    finally:
        del ALIASES[copy]


# ----- the CRD -----------------------------------------------------------------------------------------------------

def test_the_chart_crd_is_byte_identical_to_crds(helm: Path) -> None:
    assert (OPERATOR_CHART / "crds" / "wallbouncerollouts.yaml").read_bytes() == CRD.read_bytes(), (
        "charts/wallbounce-operator/crds/wallbouncerollouts.yaml drifted from crds/: copy it again")
    assert sorted(p.name for p in (OPERATOR_CHART / "crds").iterdir()) == ["wallbouncerollouts.yaml"]
    with_crds = documents(run([helm, "template", "wb", OPERATOR_CHART, *KUBE_VERSION, "--include-crds"]).stdout)
    assert len(of_kind(with_crds, "CustomResourceDefinition")) == 1
    templated = of_kind(template(helm, OPERATOR_CHART, "wallbounce", "--set", "crds.install=true"),
                        "CustomResourceDefinition")
    assert len(templated) == 1
    assert templated[0]["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    original = yaml.safe_load(CRD.read_text())
    assert templated[0]["spec"] == original["spec"], "the template is the same CRD"
    unkept = of_kind(template(helm, OPERATOR_CHART, "wallbounce", "--set", "crds.install=true", "--set",
                              "crds.keep=false"), "CustomResourceDefinition")
    assert "helm.sh/resource-policy" not in (unkept[0]["metadata"].get("annotations") or {})


def test_no_secret_value_in_the_charts(helm: Path) -> None:
    objects = template(helm, SERVICE_CHART, "llm", *SERVICE_MONITORING)
    # the one Secret is the API keys file: tenants and SHA-256 digests, never a key
    secrets = of_kind(objects, "Secret")
    assert [s["metadata"]["name"] for s in secrets] == ["techsapo-api-keys"]
    keys = yaml.safe_load(secrets[0]["stringData"]["keys.yaml"])
    assert set(keys) == {"tenants", "keys"} and all("key" not in k for k in keys["keys"])
    digest = "0" * 64
    entry = json.dumps([{"id": "a", "tenant": "default", "sha256": digest}])
    objects = template(helm, SERVICE_CHART, "llm", "--set-json", f"apiKeys.keys={entry}")
    keys = yaml.safe_load(of_kind(objects, "Secret")[0]["stringData"]["keys.yaml"])
    assert keys["keys"] == [{"id": "a", "tenant": "default", "sha256": digest}]
    objects = template(helm, SERVICE_CHART, "llm", "--set", "apiKeys.existingSecret=mine")
    assert not of_kind(objects, "Secret")
    dep = next(o for o in of_kind(objects, "Deployment") if o["metadata"]["name"].endswith("-canary"))
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["api-keys"]["secret"]["secretName"] == "mine"
    for dep in of_kind(objects, "Deployment"):
        for env in dep["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if env["name"].endswith("_API_KEY"):
                assert "value" not in env and env["valueFrom"]["secretKeyRef"]["optional"] is True
    # notification URLs carry tokens: a Secret, mounted, never in the Deployment
    url = "json://hooks.example:8080/wallbounce"
    operator = template(helm, OPERATOR_CHART, "wallbounce", "--set", "notifications.enabled=true",
                        "--set", f"notifications.targets.audit={url}")
    secret = of_kind(operator, "Secret")[0]
    assert yaml.safe_load(secret["stringData"]["notifications.yaml"])["targets"] == {"audit": url}
    assert url not in yaml.safe_dump(of_kind(operator, "Deployment"))
    mine = template(helm, OPERATOR_CHART, "wallbounce", "--set", "notifications.enabled=true",
                    "--set", "notifications.existingSecret=my-hooks")
    assert not of_kind(mine, "Secret")
    volume = next(v for v in operator_pod(mine)["volumes"] if v["name"] == "notifications")
    assert volume["secret"]["secretName"] == "my-hooks"


def test_charts_match_the_kustomize_base(helm: Path, cluster: Cluster) -> None:
    """Same container contract (args, env names, probes, security, ports) and the same RBAC rules as the kustomize
    base (both run the operator's replicas on 8 shards)."""
    operator = template(helm, OPERATOR_CHART, "wallbounce", *OPERATOR_MONITORING)
    service = template(helm, SERVICE_CHART, "wallbounce", *SERVICE_MONITORING, "--set", "rollout.create=false")
    base = documents(run([cluster.kubectl, "kustomize", MANIFESTS / "base"]).stdout)

    def container(objects: list[dict[str, Any]], suffix: str) -> dict[str, Any]:
        dep = next(o for o in of_kind(objects, "Deployment") if o["metadata"]["name"].endswith(suffix))
        c = dict(dep["spec"]["template"]["spec"]["containers"][0])
        c["env"] = sorted(e["name"] for e in c.get("env", []))
        return {k: c.get(k) for k in ("args", "env", "livenessProbe", "readinessProbe", "securityContext", "ports")}

    for suffix in ("-stable", "-canary"):
        assert container(service, suffix) == container(base, suffix), suffix
    chart_op, base_op = container(operator, "-operator"), container(base, "-operator")
    assert chart_op.pop("args") == base_op.pop("args")
    assert chart_op == base_op
    assert chart_op["env"] == ["POD_NAME", "POD_NAMESPACE"]

    def rules(objects: list[dict[str, Any]], kind: str) -> Any:
        return of_kind(objects, kind)[0]["rules"]

    assert rules(operator, "ClusterRole") == rules(base, "ClusterRole")
    assert rules(operator, "Role") == rules(base, "Role")  # the shard Leases
    base_groups = of_kind(base, "PrometheusRule")[0]["spec"]["groups"]
    chart_groups = [g for o in of_kind(operator + service, "PrometheusRule") for g in o["spec"]["groups"]]
    assert sorted(chart_groups, key=lambda g: g["name"]) == sorted(base_groups, key=lambda g: g["name"])


def test_chart_service_monitors_select_the_right_services(helm: Path) -> None:
    objects = (template(helm, SERVICE_CHART, "llm", *SERVICE_MONITORING)
               + template(helm, OPERATOR_CHART, "llm", *OPERATOR_MONITORING))
    services = of_kind(objects, "Service")
    selected: dict[str, list[str]] = {}
    for monitor in of_kind(objects, "ServiceMonitor"):
        labels = monitor["spec"]["selector"]["matchLabels"].items()
        relabelings = monitor["spec"]["endpoints"][0]["relabelings"]
        job = next(r["replacement"] for r in relabelings if r["targetLabel"] == "job")
        selected[job] = sorted(s["metadata"]["name"] for s in services if labels <= s["metadata"]["labels"].items())
    assert selected == {"wallbounce-service": ["techsapo-canary", "techsapo-stable"],
                        "wallbounce-operator": ["wb-wallbounce-operator-metrics"]}
