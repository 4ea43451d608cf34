"""The three routers against real HTTPRoute, VirtualService and TrafficSplit objects (their real CRDs
from the Go module cache), and one rollout driven end to end by the operator on each mesh."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes import client

from wallbounce_local.components import Operator
from wallbounce_local.procs import wait_for
from wallbounce_operator.model import RolloutSpec
from wallbounce_operator.routers import MESHES, TrafficRouter

from .conftest import Driver

pytestmark = pytest.mark.integration


def spec_for(kind: str, name: str, routes: list[str] | None = None) -> RolloutSpec:
    routing: dict[str, Any] = {"gatewayAPI": {"httpRoute": name}} if kind == "gatewayAPI" else (
        {"istio": {"virtualService": name, **({"routes": routes} if routes else {})}} if kind == "istio"
        else {"smi": {"trafficSplit": name}})
    return RolloutSpec.from_dict({
        "stable": {"deployment": "techsapo-stable", "service": "techsapo-stable"},
        "canary": {"deployment": "techsapo-canary", "service": "techsapo-canary"},
        "trafficRouting": routing, "analysis": {"prometheus": {"address": "http://p:9090"}}})


def virtual_service(name: str) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": name},
            "spec": {"hosts": ["techsapo"], "http": [
                {"name": "primary", "route": [
                    {"destination": {"host": "techsapo-stable"}, "weight": 100},
                    {"destination": {"host": "techsapo-canary"}, "weight": 0}]},
                {"name": "mirror", "route": [
                    {"destination": {"host": "techsapo-stable"}, "weight": 100},
                    {"destination": {"host": "techsapo-canary"}, "weight": 0}]}]}}


def traffic_split(name: str) -> dict[str, Any]:
    return {"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": {"name": name},
            "spec": {"service": "techsapo", "backends": [{"service": "techsapo-stable", "weight": 100},
                                                         {"service": "techsapo-canary", "weight": 0}]}}


def test_httproute_router_weights_both_services_and_leaves_other_backends(kube: Any, driver: Driver) -> None:
    ns = driver.namespace
    objects = client.CustomObjectsApi(kube)
    objects.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "mixed"},
        "spec": {"rules": [
            {"backendRefs": [{"name": "techsapo-stable", "port": 80, "weight": 100},
                             {"name": "techsapo-canary", "port": 80, "weight": 0}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/admin"}}],
             "backendRefs": [{"name": "admin", "port": 80, "weight": 7}]}]}})
    router = TrafficRouter(kube, MESHES["gatewayAPI"])
    spec = spec_for("gatewayAPI", "mixed")
    assert asyncio.run(router.read(ns, "mixed", spec)).weight == 0
    state = asyncio.run(router.write(ns, "mixed", spec, 35))
    assert (state.weight, state.problem) == (35, None)
    obj: Any = objects.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes",
                                                    "mixed")
    assert [r["weight"] for r in obj["spec"]["rules"][0]["backendRefs"]] == [65, 35]
    assert obj["spec"]["rules"][1]["backendRefs"] == [{"group": "", "kind": "Service", "name": "admin", "port": 80,
                                                       "weight": 7}]
    missing = asyncio.run(router.read(ns, "absent", spec))
    assert missing.weight is None and "not found" in (missing.problem or "")


def test_virtualservice_router_honours_named_routes(kube: Any, driver: Driver) -> None:
    ns = driver.namespace
    objects = client.CustomObjectsApi(kube)
    objects.create_namespaced_custom_object("networking.istio.io", "v1", ns, "virtualservices",
                                            virtual_service("vs"))
    router = TrafficRouter(kube, MESHES["istio"])
    only_primary = spec_for("istio", "vs", ["primary"])
    assert asyncio.run(router.write(ns, "vs", only_primary, 20)).weight == 20
    obj: Any = objects.get_namespaced_custom_object("networking.istio.io", "v1", ns, "virtualservices", "vs")
    assert [d["weight"] for d in obj["spec"]["http"][0]["route"]] == [80, 20]
    assert [d["weight"] for d in obj["spec"]["http"][1]["route"]] == [100, 0]  # not named: untouched
    every = spec_for("istio", "vs")
    assert asyncio.run(router.read(ns, "vs", every)).weight == -1  # routes disagree: drift
    assert asyncio.run(router.write(ns, "vs", every, 10)).weight == 10
    wrong = spec_for("istio", "vs", ["nope"])
    state = asyncio.run(router.read(ns, "vs", wrong))
    assert state.weight is None and "nope" in (state.problem or "")


def test_trafficsplit_router(kube: Any, driver: Driver) -> None:
    ns = driver.namespace
    objects = client.CustomObjectsApi(kube)
    objects.create_namespaced_custom_object("split.smi-spec.io", "v1alpha4", ns, "trafficsplits",
                                            traffic_split("ts"))
    router = TrafficRouter(kube, MESHES["smi"])
    spec = spec_for("smi", "ts")
    assert asyncio.run(router.write(ns, "ts", spec, 50)).weight == 50
    obj: Any = objects.get_namespaced_custom_object("split.smi-spec.io", "v1alpha4", ns, "trafficsplits", "ts")
    assert obj["spec"]["backends"] == [{"service": "techsapo-stable", "weight": 50},
                                       {"service": "techsapo-canary", "weight": 50}]


@pytest.mark.parametrize("mesh", ["istio", "smi"])
def test_the_operator_drives_istio_and_smi(mesh: str, kube: Any, driver: Driver, operator: Operator) -> None:
    ns = driver.namespace
    objects = client.CustomObjectsApi(kube)
    driver.healthy()
    if mesh == "istio":
        objects.create_namespaced_custom_object("networking.istio.io", "v1", ns, "virtualservices",
                                                virtual_service("route"))
        routing = {"istio": {"virtualService": "route"}}
    else:
        objects.create_namespaced_custom_object("split.smi-spec.io", "v1alpha4", ns, "trafficsplits",
                                                traffic_split("route"))
        routing = {"smi": {"trafficSplit": "route"}}
    driver.apply("m", trafficRouting=routing, phases=[{"weight": 5, "duration": "1s", "minRequests": 20},
                                                      {"weight": 25, "duration": "1s", "minRequests": 20}])
    driver.wait_phase("m", "Completed", timeout=60)
    router = TrafficRouter(kube, MESHES["istio" if mesh == "istio" else "smi"])
    spec = spec_for("istio" if mesh == "istio" else "smi", "route")
    assert wait_for("25% on the route", lambda: asyncio.run(router.read(ns, "route", spec)).weight == 25,
                    timeout=30)
