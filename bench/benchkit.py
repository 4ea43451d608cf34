"""Shared pieces of the operator benchmarks: our CRD and the Gateway API CRDs in a fresh API server,
and one rollout's objects (two available Deployments, an HTTPRoute at 100/0, the WallBounceRollout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from wallbounce_local import thirdparty

ROOT = Path(__file__).resolve().parents[1]


def install_crds(api: client.ApiClient) -> None:
    thirdparty.install(api, ["gateway-api"])
    crd = yaml.safe_load((ROOT / "crds" / "wallbouncerollouts.yaml").read_text())
    ext: Any = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(crd)
    thirdparty.wait_established(api, [crd["metadata"]["name"]])


def create_rollout(api: client.ApiClient, ns: str, name: str, analysis: dict[str, Any],
                   phases: list[dict[str, Any]]) -> None:
    apps, objects = client.AppsV1Api(api), client.CustomObjectsApi(api)
    for variant in ("stable", "canary"):
        dep = f"{name}-{variant}"
        template = {"metadata": {"labels": {"app": dep}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}
        apps.create_namespaced_deployment(ns, {"metadata": {"name": dep}, "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": dep}}, "template": template}})
        apps.patch_namespaced_deployment_status(dep, ns, {"status": {"replicas": 1, "readyReplicas": 1,
                                                                     "availableReplicas": 1}})
    objects.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": name},
        "spec": {"rules": [{"backendRefs": [{"name": f"{name}-stable", "port": 80, "weight": 100},
                                            {"name": f"{name}-canary", "port": 80, "weight": 0}]}]}})
    objects.create_namespaced_custom_object("wallbounce.dev", "v1alpha1", ns, "wallbouncerollouts", {
        "apiVersion": "wallbounce.dev/v1alpha1", "kind": "WallBounceRollout", "metadata": {"name": name},
        "spec": {"stable": {"deployment": f"{name}-stable", "service": f"{name}-stable"},
                 "canary": {"deployment": f"{name}-canary", "service": f"{name}-canary"},
                 "trafficRouting": {"gatewayAPI": {"httpRoute": name}}, "analysis": analysis, "phases": phases}})
