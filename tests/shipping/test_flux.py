"""Flux: manifests/flux builds the kustomize base with the route annotated so that Flux's server-side apply creates
it once and never resets the weights the operator writes; every object, and the Flux Kustomization itself (its CRD
from kustomize-controller's Go module), is accepted by the real API server; the health expressions compile and
decide the documented cases (the same CEL runs against the operator's own status objects in
tests/operator/test_gitops.py)."""

from __future__ import annotations

from typing import Any

import celpy
import pytest

from tests.shipping.conftest import Cluster
from tests.shipping.flux import FLUX_KUSTOMIZATION, flux_health, health_check
from tests.shipping.support import MANIFESTS, documents, dry_run, load_yaml_file, run
from wallbounce_local import thirdparty

KUSTOMIZE_CONTROLLER = ("github.com/fluxcd/kustomize-controller", "v1.7.3")  # healthCheckExprs since v1.5


def test_the_route_is_created_once_and_left_to_the_operator(cluster: Cluster) -> None:
    objects = documents(run([cluster.kubectl, "kustomize", MANIFESTS / "flux"]).stdout)
    dry_run(cluster.kubectl, cluster.kubeconfig, objects)
    base = documents(run([cluster.kubectl, "kustomize", MANIFESTS / "base"]).stdout)
    assert sorted((o["kind"], o["metadata"]["name"]) for o in objects) == sorted(
        (o["kind"], o["metadata"]["name"]) for o in base)
    [route] = [o for o in objects if o["kind"] == "HTTPRoute"]
    assert route["metadata"]["annotations"] == {"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent",
                                                "wallbounce.dev/rollout": "techsapo"}
    others = [o for o in objects if o["kind"] != "HTTPRoute"]
    assert not any("kustomize.toolkit.fluxcd.io/ssa" in (o["metadata"].get("annotations") or {}) for o in others)


def test_the_flux_kustomization_is_accepted_by_the_api_server(cluster: Cluster, kube: Any) -> None:
    try:
        root = thirdparty.module_dir(*KUSTOMIZE_CONTROLLER)
    except thirdparty.ThirdPartyError as exc:
        pytest.fail(f"kustomize-controller's Go module (for the Kustomization CRD) is not available: {exc}",
                    pytrace=False)
    crd = root / "config" / "crd" / "bases" / "kustomize.toolkit.fluxcd.io_kustomizations.yaml"
    run([cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "apply", "--server-side", "--force-conflicts", "-f",
         crd])
    thirdparty.wait_established(kube, ["kustomizations.kustomize.toolkit.fluxcd.io"])
    proc = run([cluster.kubectl, "--kubeconfig", cluster.kubeconfig, "create", "namespace", "flux-system"],
               check=False)
    assert proc.returncode == 0 or "AlreadyExists" in proc.stderr
    dry_run(cluster.kubectl, cluster.kubeconfig, load_yaml_file(FLUX_KUSTOMIZATION))


def test_the_health_expressions_compile() -> None:
    env = celpy.Environment()
    check = health_check()
    assert set(check) == {"apiVersion", "kind", "inProgress", "failed", "current"}
    for field in ("inProgress", "failed", "current"):
        env.compile(check[field])


def rollout(generation: int = 2, **status: Any) -> dict[str, Any]:
    return {"apiVersion": "wallbounce.dev/v1alpha1", "kind": "WallBounceRollout",
            "metadata": {"name": "techsapo", "generation": generation}, "spec": {}, "status": status}


def condition(kind: str, value: bool) -> dict[str, str]:
    return {"type": kind, "status": "True" if value else "False"}


def test_the_cases_the_manifest_documents() -> None:
    fresh = rollout()
    assert flux_health(fresh) == "InProgress"
    assert flux_health(rollout(phase="Completed", observedGeneration=1,
                               conditions=[condition("Ready", True)])) == "InProgress", "an unobserved spec"
    assert flux_health(rollout(phase="Progressing", observedGeneration=2,
                               conditions=[condition("Stalled", True)])) == "Failed", "a passed progress deadline"
    assert flux_health(rollout(phase="Paused", observedGeneration=2,
                               conditions=[condition("Stalled", False), condition("Ready", False)])) == "InProgress"
    assert flux_health(rollout(phase="Promoted", observedGeneration=2,
                               conditions=[condition("Stalled", False), condition("Ready", True)])) == "Current"
