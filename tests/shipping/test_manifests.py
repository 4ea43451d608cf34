"""The kustomize manifests: every file under manifests/ is accepted by a real kube-apiserver
(``kubectl apply --dry-run=server --validate=strict``) with our CRD and the third-party CRDs installed,
and the objects have the shape the operator and the alerts rely on (RBAC checked with ``kubectl auth can-i``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.shipping.conftest import Cluster
from tests.shipping.support import MANIFESTS, ROOT, documents, dry_run, kinds, load_yaml_file, run
from wallbounce_api import CRD_NAME, GROUP, KIND, PLURAL
from wallbounce_local.procs import wait_for

KUSTOMIZATIONS = ("base", "overlays/istio", "overlays/smi", "flux")
STABLE_ONLY = [("techsapo-stable", 100), ("techsapo-canary", 0)]


def build(cluster: Cluster, path: str) -> list[dict[str, Any]]:
    return documents(run([cluster.kubectl, "kustomize", MANIFESTS / path]).stdout)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_kustomization_is_accepted_by_the_api_server(cluster: Cluster, path: str) -> None:
    objects = build(cluster, path)
    dry_run(cluster.kubectl, cluster.kubeconfig, objects)
    names = kinds(objects)
    assert ("CustomResourceDefinition", CRD_NAME) in names
    assert ("Deployment", "techsapo-stable") in names and ("Deployment", "techsapo-canary") in names
    routes = {"base": "HTTPRoute", "overlays/istio": "VirtualService", "overlays/smi": "TrafficSplit",
              "flux": "HTTPRoute"}
    route_kinds = {k for k, _ in names} & {"HTTPRoute", "VirtualService", "TrafficSplit"}
    assert route_kinds == {routes[path]}, f"{path} must route with exactly one {routes[path]}"


@pytest.mark.parametrize("sample", sorted(p.name for p in (MANIFESTS / "samples").glob("*.yaml")))
def test_sample_rollouts_are_accepted(cluster: Cluster, sample: str) -> None:
    objects = load_yaml_file(MANIFESTS / "samples" / sample)
    assert [o["kind"] for o in objects] == [KIND]
    dry_run(cluster.kubectl, cluster.kubeconfig, objects)


def test_samples_cover_the_default_ladder_and_custom_phases() -> None:
    rollouts = [o for p in (MANIFESTS / "samples").glob("*.yaml") for o in load_yaml_file(p)]
    assert any("phases" not in r["spec"] for r in rollouts), "one sample must use the default ladder"
    assert any(r["spec"].get("phases") for r in rollouts), "one sample must have custom phases"


def test_a_sample_with_a_bad_ladder_is_rejected(cluster: Cluster) -> None:
    """The dry-run really validates against the CRD: decreasing weights fail."""
    rollout = load_yaml_file(MANIFESTS / "samples" / "rollout-custom-phases.yaml")[0]
    rollout["spec"]["phases"][1]["weight"] = 1
    proc = run([cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "apply", "--dry-run=server", "-f", "-"],
               input_text=yaml.safe_dump(rollout), check=False)
    assert proc.returncode != 0
    assert "phases" in proc.stderr


def test_every_manifest_file_is_validated() -> None:
    """Each YAML file under manifests/ is a kustomization, is reached from one, or is in samples/ or
    argocd/ or is flux/flux-kustomization.yaml (validated on their own), so nothing ships unvalidated."""
    referenced: set[Path] = set()
    for kustomization in MANIFESTS.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for entry in spec.get("resources", []):
            referenced.add((kustomization.parent / entry).resolve())
        for gen in [*spec.get("configMapGenerator", []), *spec.get("secretGenerator", [])]:
            for f in gen.get("files", []):
                referenced.add((kustomization.parent / f.split("=")[-1]).resolve())
    for path in MANIFESTS.rglob("*"):
        if path.suffix not in {".yaml", ".yml", ".json"} or path.name == "kustomization.yaml":
            continue
        rel = path.relative_to(MANIFESTS)
        if rel.parts[0] in {"samples", "argocd"} or rel.as_posix() == "flux/flux-kustomization.yaml":
            continue
        assert path.resolve() in referenced, f"manifests/{rel} is not part of any kustomization"


def test_operator_rbac_is_exactly_the_contract() -> None:
    rbac = {o["kind"]: o for o in load_yaml_file(MANIFESTS / "base" / "operator-rbac.yaml")}
    granted = {
        (group, resource, verb)
        for rule in rbac["ClusterRole"]["rules"]
        for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]
    }
    contract: set[tuple[str, str, str]] = set()

    def allow(group: str, resources: str, verbs: str) -> None:
        contract.update((group, r, v) for r in resources.split() for v in verbs.split())

    allow(GROUP, PLURAL, "get list watch patch")  # patch: a consumed action annotation removed
    allow(GROUP, f"{PLURAL}/status", "patch")
    allow("apps", "deployments", "get list watch patch")  # patch: completion.promoteStable
    allow("apps", "replicasets", "list watch")
    for group, resource in (("gateway.networking.k8s.io", "httproutes"), ("networking.istio.io", "virtualservices"),
                            ("split.smi-spec.io", "trafficsplits")):
        allow(group, resource, "get list watch update")  # update: a PUT with the resourceVersion read
    allow("", "events", "create")
    allow("", "namespaces", "list watch")
    allow("apiextensions.k8s.io", "customresourcedefinitions", "list watch")
    assert granted == contract
    assert not any("*" in str(rule) for rule in rbac["ClusterRole"]["rules"])
    leases = {(g, r, v) for rule in rbac["Role"]["rules"] for g in rule["apiGroups"] for r in rule["resources"]
              for v in rule["verbs"]}
    assert leases == {("coordination.k8s.io", "leases", v) for v in ("list", "create", "update", "delete")}


def test_operator_rbac_grants_what_it_needs_and_nothing_more(cluster: Cluster, namespace: str) -> None:
    """The real authorizer (RBAC) answers ``kubectl auth can-i`` for the operator's ServiceAccount."""
    objects = load_yaml_file(MANIFESTS / "base" / "operator-rbac.yaml")
    suffix = namespace[-6:]
    for o in objects:
        o["metadata"]["name"] = f"{o['metadata']['name']}-{suffix}"
        if o["kind"] == "ServiceAccount":
            o["metadata"]["namespace"] = namespace
        if o["kind"] in ("Role", "RoleBinding"):
            o["metadata"]["namespace"] = namespace  # the operator's own namespace
    binding = next(o for o in objects if o["kind"] == "ClusterRoleBinding")
    binding["roleRef"]["name"] = f"wallbounce-operator-{suffix}"
    binding["subjects"][0].update(name=f"wallbounce-operator-{suffix}", namespace=namespace)
    leases = next(o for o in objects if o["kind"] == "RoleBinding")
    leases["roleRef"]["name"] = f"wallbounce-operator-leases-{suffix}"
    leases["subjects"][0].update(name=f"wallbounce-operator-{suffix}", namespace=namespace)
    base: list[str | Path] = [cluster.kubectl, "--kubeconfig", cluster.kubeconfig]
    run([*base, "apply", "-f", "-"], input_text=yaml.safe_dump_all(objects))
    try:
        who = f"system:serviceaccount:{namespace}:wallbounce-operator-{suffix}"

        def can(verb: str, resource: str, ns: str | None = "llm") -> bool:
            cmd = [*base, "auth", "can-i", verb, resource, "--as", who]
            cmd += ["-n", ns] if ns else []
            return run(cmd, check=False).stdout.strip() == "yes"

        # the authorizer learns of new bindings through an informer: wait until the first grant shows
        wait_for("the binding to take effect", lambda: can("get", CRD_NAME), 20)
        for verb in ("get", "list", "watch", "patch"):
            assert can(verb, CRD_NAME)
        assert can("patch", f"{CRD_NAME}/status")
        assert can("watch", "deployments.apps") and can("patch", "deployments.apps")
        assert can("watch", "replicasets.apps") and not can("patch", "replicasets.apps")
        for route in ("httproutes.gateway.networking.k8s.io", "virtualservices.networking.istio.io",
                      "trafficsplits.split.smi-spec.io"):
            assert can("update", route) and not can("patch", route) and not can("delete", route)
        assert can("create", "events")
        assert can("list", "namespaces", None)
        assert can("update", "leases.coordination.k8s.io", namespace)  # the shard Leases, in its own namespace
        assert not can("update", "leases.coordination.k8s.io", "llm")
        forbidden = [("get", "secrets"), ("list", "configmaps"), ("create", "pods"), ("update", CRD_NAME),
                     ("delete", CRD_NAME), ("create", "leases.coordination.k8s.io"), ("create", CRD_NAME),
                     ("delete", "deployments.apps"), ("patch", "events")]
        for verb, resource in forbidden:
            assert not can(verb, resource), f"the operator must not be able to {verb} {resource}"
    finally:
        run([*base, "delete", "--ignore-not-found", "-f", "-"], input_text=yaml.safe_dump_all(objects), check=False)


def test_service_deployments_follow_the_contract(cluster: Cluster) -> None:
    objects = build(cluster, "base")
    for variant in ("stable", "canary"):
        dep = next(o for o in by_kind(objects, "Deployment") if o["metadata"]["name"] == f"techsapo-{variant}")
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e for e in container["env"]}
        assert env["WALLBOUNCE_VARIANT"]["value"] == variant
        assert env["WALLBOUNCE_CONFIG_FILE"]["value"] == "/etc/wallbounce/config.yaml"
        assert env["WALLBOUNCE_AUTH__KEYS_FILE"]["value"] == "/etc/wallbounce/keys/keys.yaml"
        assert env["WALLBOUNCE_REVISION"]["valueFrom"]["fieldRef"]["fieldPath"] == (
            "metadata.labels['pod-template-hash']")
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert mounts["api-keys"] == "/etc/wallbounce/keys"
        for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"):
            ref = env[key]["valueFrom"]["secretKeyRef"]
            assert ref["key"] == key and ref["optional"] is True and "value" not in env[key]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["args"] == ["--host", "0.0.0.0", "--port", "4000"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["resources"]["limits"]["memory"]
    secrets = by_kind(objects, "Secret")
    assert [s["metadata"]["name"] for s in secrets] == ["techsapo-api-keys"], "the only Secret: the API keys file"
    import base64

    keys = yaml.safe_load(base64.b64decode(secrets[0]["data"]["keys.yaml"]))
    assert keys["keys"] == [] and "default" in keys["tenants"], "it ships tenants, and no key"
    operator = next(o for o in by_kind(objects, "Deployment") if o["metadata"]["name"] == "wallbounce-operator")
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert operator["spec"]["template"]["spec"]["serviceAccountName"] == "wallbounce-operator"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert "--all-namespaces" in container["args"] and "--shards" in container["args"]
    assert operator["spec"]["replicas"] == 2
    assert by_kind(objects, "PodDisruptionBudget")[0]["spec"]["maxUnavailable"] == 1


def test_routes_start_with_all_traffic_on_stable(cluster: Cluster) -> None:
    route = by_kind(build(cluster, "base"), "HTTPRoute")[0]
    refs = route["spec"]["rules"][0]["backendRefs"]
    assert [(r["name"], r["weight"]) for r in refs] == STABLE_ONLY
    vs = by_kind(build(cluster, "overlays/istio"), "VirtualService")[0]
    dests = vs["spec"]["http"][0]["route"]
    assert [(d["destination"]["host"], d["weight"]) for d in dests] == STABLE_ONLY
    ts = by_kind(build(cluster, "overlays/smi"), "TrafficSplit")[0]
    assert [(b["service"], b["weight"]) for b in ts["spec"]["backends"]] == STABLE_ONLY
    assert ts["spec"]["service"] == "techsapo"


def test_service_monitors_give_the_labels_the_queries_select_by(cluster: Cluster) -> None:
    objects = build(cluster, "base")
    monitors = {o["metadata"]["name"]: o for o in by_kind(objects, "ServiceMonitor")}
    services = by_kind(objects, "Service")
    for name, job in (("techsapo", "wallbounce-service"), ("wallbounce-operator", "wallbounce-operator")):
        spec = monitors[name]["spec"]
        selected = [s["metadata"]["name"] for s in services
                    if spec["selector"]["matchLabels"].items() <= s["metadata"].get("labels", {}).items()]
        endpoint = spec["endpoints"][0]
        relabel = {r["targetLabel"]: r for r in endpoint["relabelings"]}
        assert relabel["namespace"]["sourceLabels"] == ["__meta_kubernetes_namespace"]
        assert relabel["service"]["sourceLabels"] == ["__meta_kubernetes_service_name"]
        assert relabel["job"]["replacement"] == job
        for svc in selected:
            ports = next(s for s in services if s["metadata"]["name"] == svc)["spec"]["ports"]
            assert endpoint["port"] in {p["name"] for p in ports}
        if name == "techsapo":
            assert sorted(selected) == ["techsapo-canary", "techsapo-stable"]
        else:
            assert selected == ["wallbounce-operator-metrics"]
            assert endpoint["honorLabels"] is True, "the operator's own namespace label must win"


def test_base_references_the_crd_file_itself(cluster: Cluster) -> None:
    """The CRD in the base is crds/wallbouncerollouts.yaml (through crds/Kustomization), not a copy."""
    built = by_kind(build(cluster, "base"), "CustomResourceDefinition")
    original = load_yaml_file(ROOT / "crds" / "wallbouncerollouts.yaml")
    assert len(built) == 1
    labels = built[0]["metadata"].get("labels", {})
    labels.pop("app.kubernetes.io/part-of", None)
    if not labels:
        built[0]["metadata"].pop("labels", None)
    # kustomize re-emits folded (>-) scalars with more-indented lines with extra line breaks (CEL does
    # not care), so strings are compared with their whitespace collapsed.
    assert squash(built) == squash(original)


def squash(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: squash(v) for k, v in value.items()}
    if isinstance(value, list):
        return [squash(v) for v in value]
    return " ".join(value.split()) if isinstance(value, str) else value


def test_service_config_is_valid_for_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ConfigMap's config.yaml (kustomize) and the chart's default service.config are the same, load
    into the service's Settings, and name only keys it knows (it ignores unknown ones silently)."""
    from wallbounce_service.config import Settings

    path = MANIFESTS / "base" / "service-config.yaml"
    config = yaml.safe_load(path.read_text())
    chart_values = yaml.safe_load((ROOT / "charts" / "wallbounce-service" / "values.yaml").read_text())
    assert chart_values["config"] == config
    assert set(config) <= set(Settings.model_fields), set(config) - set(Settings.model_fields)
    monkeypatch.setenv("WALLBOUNCE_CONFIG_FILE", str(path))
    settings = Settings()
    assert settings.min_confidence == config["min_confidence"]
    assert settings.cache.ttl_s == config["cache"]["ttl_s"]


def test_the_dry_run_is_strict_about_fields(cluster: Cluster) -> None:
    """An unknown field in a third-party object fails the dry-run, so the checks above really validate."""
    route = by_kind(build(cluster, "base"), "HTTPRoute")[0]
    route["spec"]["rules"][0]["backendRefs"][0]["weigth"] = 100
    proc = run([cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "apply", "--dry-run=server", "--validate=strict",
                "-f", "-"], input_text=yaml.safe_dump(route), check=False)
    assert proc.returncode != 0 and "weigth" in proc.stderr
