"""The third-party CRDs from the Go module cache are installed and really validate objects."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

pytestmark = pytest.mark.integration


def test_all_router_and_monitoring_crds_are_served(third_party_crds: list[str]) -> None:
    for name in ("httproutes.gateway.networking.k8s.io", "gateways.gateway.networking.k8s.io",
                 "virtualservices.networking.istio.io", "trafficsplits.split.smi-spec.io",
                 "servicemonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"):
        assert name in third_party_crds


def test_httproute_weights_are_validated_by_the_gateway_api_schema(
    kube: Any, third_party_crds: list[str], namespace: str
) -> None:
    objects = client.CustomObjectsApi(kube)

    def route(weight: int) -> dict[str, Any]:
        return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": f"r{weight}".replace("-", "m")},
                "spec": {"rules": [{"backendRefs": [{"name": "stable", "port": 80, "weight": 100 - weight},
                                                    {"name": "canary", "port": 80, "weight": weight}]}]}}

    created = objects.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes",
                                                      route(10))
    assert created["spec"]["rules"][0]["backendRefs"][1]["weight"] == 10
    with pytest.raises(client.ApiException) as bad:
        objects.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", namespace, "httproutes",
                                                route(-5))
    assert bad.value.status == 422
    assert "weight" in bad.value.body


def test_smi_trafficsplit_v1alpha4_is_served_after_conversion(
    kube: Any, third_party_crds: list[str], namespace: str
) -> None:
    objects = client.CustomObjectsApi(kube)
    split = objects.create_namespaced_custom_object("split.smi-spec.io", "v1alpha4", namespace, "trafficsplits", {
        "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": {"name": "techsapo"},
        "spec": {"service": "techsapo", "backends": [{"service": "stable", "weight": 90},
                                                      {"service": "canary", "weight": 10}]}})
    assert split["spec"]["backends"][1] == {"service": "canary", "weight": 10}
