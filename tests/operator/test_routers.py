"""The three routers against real HTTPRoute, VirtualService and TrafficSplit objects (their real CRDs from the Go
module cache): ownership (the ``wallbounce.dev/rollout`` annotation), rules that must be exactly the stable and
canary backends, Istio's two forms (two hosts, two subsets of one host), and one rollout driven end to end by the
operator on each mesh — and a route it does not own left untouched."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kubernetes import client

from wallbounce_api import ROLLOUT_ANNOTATION
from wallbounce_local.components import Operator
from wallbounce_local.procs import wait_for
from wallbounce_operator.model import RolloutSpec, RouteProblem
from wallbounce_operator.routers import MESHES, TrafficRouter

from .conftest import Driver

pytestmark = pytest.mark.integration

GATEWAY = ("gateway.networking.k8s.io", "v1", "httproutes")
ISTIO = ("networking.istio.io", "v1", "virtualservices")
SMI = ("split.smi-spec.io", "v1alpha4", "trafficsplits")
OWNER = "r"  # the rollout the routes below belong to


def spec_for(kind: str, name: str, routes: list[str] | None = None, subsets: bool = False) -> RolloutSpec:
    istio: dict[str, Any] = {"virtualService": name, **({"routes": routes} if routes else {})}
    if subsets:
        istio["destinationRule"] = {"name": "techsapo", "host": "techsapo", "stableSubset": "v1",
                                    "canarySubset": "v2"}
    routing: dict[str, Any] = {"gatewayAPI": {"httpRoute": name}} if kind == "gatewayAPI" else (
        {"istio": istio} if kind == "istio" else {"smi": {"trafficSplit": name}})
    return RolloutSpec.from_dict({
        "stable": {"deployment": "techsapo-stable", "service": "techsapo-stable"},
        "canary": {"deployment": "techsapo-canary", "service": "techsapo-canary"},
        "trafficRouting": routing})


def meta(name: str, owner: str | None = OWNER) -> dict[str, Any]:
    return {"name": name, **({"annotations": {ROLLOUT_ANNOTATION: owner}} if owner else {})}


def httproute(name: str, *rules: list[dict[str, Any]], owner: str | None = OWNER) -> dict[str, Any]:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta(name, owner),
            "spec": {"rules": [{"backendRefs": refs} for refs in rules]}}


PAIR = [{"name": "techsapo-stable", "port": 80, "weight": 100}, {"name": "techsapo-canary", "port": 80, "weight": 0}]


def virtual_service(name: str, owner: str | None = OWNER) -> dict[str, Any]:
    return {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": meta(name, owner),
            "spec": {"hosts": ["techsapo"], "http": [
                {"name": "primary", "route": [
                    {"destination": {"host": "techsapo-stable"}, "weight": 100},
                    {"destination": {"host": "techsapo-canary"}, "weight": 0}]},
                {"name": "mirror", "route": [
                    {"destination": {"host": "techsapo-stable"}, "weight": 100},
                    {"destination": {"host": "techsapo-canary"}, "weight": 0}]}]}}


def traffic_split(name: str, owner: str | None = OWNER) -> dict[str, Any]:
    return {"apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit", "metadata": meta(name, owner),
            "spec": {"service": "techsapo", "backends": [{"service": "techsapo-stable", "weight": 100},
                                                         {"service": "techsapo-canary", "weight": 0}]}}


def create(kube: Any, ns: str, kind: tuple[str, str, str], body: dict[str, Any]) -> None:
    client.CustomObjectsApi(kube).create_namespaced_custom_object(kind[0], kind[1], ns, kind[2], body)


def get(kube: Any, ns: str, kind: tuple[str, str, str], name: str) -> Any:
    return client.CustomObjectsApi(kube).get_namespaced_custom_object(kind[0], kind[1], ns, kind[2], name)


def test_httproute_router_weights_the_pair_and_leaves_rules_without_it(kube: Any, driver: Driver) -> None:
    ns = driver.namespace
    create(kube, ns, GATEWAY, httproute("mixed", PAIR, [{"name": "admin", "port": 80, "weight": 7}]))
    router = TrafficRouter(kube, MESHES["gatewayAPI"])
    spec = spec_for("gatewayAPI", "mixed")
    assert asyncio.run(router.read(ns, "mixed", spec, OWNER)).weight == 0
    assert asyncio.run(router.write(ns, "mixed", spec, OWNER, 35)) is None
    obj = get(kube, ns, GATEWAY, "mixed")
    assert [r["weight"] for r in obj["spec"]["rules"][0]["backendRefs"]] == [65, 35]
    assert obj["spec"]["rules"][1]["backendRefs"] == [{"group": "", "kind": "Service", "name": "admin", "port": 80,
                                                       "weight": 7}]
    missing = asyncio.run(router.read(ns, "absent", spec, OWNER))
    assert (missing.weight, missing.problem) == (None, RouteProblem.MISSING) and "not found" in (missing.message or "")


@pytest.mark.parametrize(("case", "refs"), [
    ("a third backend", [*PAIR, {"name": "experiment", "port": 80, "weight": 10}]),
    ("the canary listed twice", [*PAIR, {"name": "techsapo-canary", "port": 80, "weight": 5}]),
    ("a same-named canary in another namespace", [PAIR[0], {**PAIR[1], "namespace": "elsewhere"}]),
    ("the stable alone", [PAIR[0]]),
])
def test_a_rule_that_is_not_exactly_the_pair_is_refused_and_never_diluted(case: str, refs: list[dict[str, Any]],
                                                                         kube: Any, driver: Driver) -> None:
    ns = driver.namespace
    create(kube, ns, GATEWAY, httproute("odd", PAIR, refs))
    before = get(kube, ns, GATEWAY, "odd")["spec"]
    router = TrafficRouter(kube, MESHES["gatewayAPI"])
    spec = spec_for("gatewayAPI", "odd")
    state = asyncio.run(router.read(ns, "odd", spec, OWNER))
    assert (state.weight, state.problem) == (None, RouteProblem.INVALID), case
    assert "rule 1 must route to exactly techsapo-stable and techsapo-canary" in (state.message or "")
    problem = asyncio.run(router.write(ns, "odd", spec, OWNER, 20))
    assert problem is not None and "exactly" in problem
    assert get(kube, ns, GATEWAY, "odd")["spec"] == before  # not touched


def test_a_route_without_the_ownership_annotation_or_owned_by_another_rollout_is_not_ours(kube: Any,
                                                                                       driver: Driver) -> None:
    ns = driver.namespace
    create(kube, ns, GATEWAY, httproute("theirs", PAIR, owner=None))
    create(kube, ns, GATEWAY, httproute("other", PAIR, owner="someone-else"))
    router = TrafficRouter(kube, MESHES["gatewayAPI"])
    for name, why in (("theirs", "has no such annotation"), ("other", "it names rollout 'someone-else'")):
        spec = spec_for("gatewayAPI", name)
        state = asyncio.run(router.read(ns, name, spec, OWNER))
        assert (state.weight, state.problem) == (None, RouteProblem.NOT_OWNED) and why in (state.message or "")
        assert "wallbounce.dev/rollout: r" in (state.message or "")
        assert asyncio.run(router.write(ns, name, spec, OWNER, 50)) is not None
        assert [r["weight"] for r in get(kube, ns, GATEWAY, name)["spec"]["rules"][0]["backendRefs"]] == [100, 0]


def test_virtualservice_router_honours_named_routes(kube: Any, driver: Driver) -> None:
    ns = driver.namespace
    create(kube, ns, ISTIO, virtual_service("vs"))
    router = TrafficRouter(kube, MESHES["istio"])
    only_primary = spec_for("istio", "vs", ["primary"])
    assert asyncio.run(router.write(ns, "vs", only_primary, OWNER, 20)) is None
    obj = get(kube, ns, ISTIO, "vs")
    assert [d["weight"] for d in obj["spec"]["http"][0]["route"]] == [80, 20]
    assert [d["weight"] for d in obj["spec"]["http"][1]["route"]] == [100, 0]  # not named: untouched
    every = spec_for("istio", "vs")
    assert asyncio.run(router.read(ns, "vs", every, OWNER)).weight == 20  # the rules disagree: the most the canary gets
    assert asyncio.run(router.write(ns, "vs", every, OWNER, 10)) is None
    assert asyncio.run(router.read(ns, "vs", every, OWNER)).weight == 10
    wrong = spec_for("istio", "vs", ["nope"])
    state = asyncio.run(router.read(ns, "vs", wrong, OWNER))
    assert state.weight is None and "nope" in (state.message or "")


def test_virtualservice_with_two_subsets_of_one_host(kube: Any, driver: Driver) -> None:
    ns = driver.namespace
    body = virtual_service("subsets")
    body["spec"]["http"] = [{"name": "primary", "route": [
        {"destination": {"host": "techsapo", "subset": "v1"}, "weight": 100},
        {"destination": {"host": "techsapo", "subset": "v2"}, "weight": 0}]}]
    create(kube, ns, ISTIO, body)
    router = TrafficRouter(kube, MESHES["istio"])
    spec = spec_for("istio", "subsets", subsets=True)
    assert asyncio.run(router.read(ns, "subsets", spec, OWNER)).weight == 0
    assert asyncio.run(router.write(ns, "subsets", spec, OWNER, 35)) is None
    route = get(kube, ns, ISTIO, "subsets")["spec"]["http"][0]["route"]
    assert [(d["destination"]["subset"], d["weight"]) for d in route] == [("v1", 65), ("v2", 35)]
    # the two-host form does not match this route, and a third subset of the host is refused
    assert asyncio.run(router.read(ns, "subsets", spec_for("istio", "subsets"), OWNER)).problem == RouteProblem.INVALID
    body = get(kube, ns, ISTIO, "subsets")
    body["spec"]["http"][0]["route"].append({"destination": {"host": "techsapo", "subset": "v3"}, "weight": 0})
    client.CustomObjectsApi(kube).replace_namespaced_custom_object(*ISTIO[:2], ns, ISTIO[2], "subsets", body)
    assert wait_for("the third subset seen", lambda: asyncio.run(
        router.read(ns, "subsets", spec, OWNER)).problem == RouteProblem.INVALID, timeout=10)


def test_trafficsplit_router(kube: Any, driver: Driver) -> None:
    ns = driver.namespace
    create(kube, ns, SMI, traffic_split("ts"))
    router = TrafficRouter(kube, MESHES["smi"])
    spec = spec_for("smi", "ts")
    assert asyncio.run(router.write(ns, "ts", spec, OWNER, 50)) is None
    assert get(kube, ns, SMI, "ts")["spec"]["backends"] == [{"service": "techsapo-stable", "weight": 50},
                                                            {"service": "techsapo-canary", "weight": 50}]
    third = traffic_split("ts3")
    third["spec"]["backends"].append({"service": "techsapo-shadow", "weight": 0})
    create(kube, ns, SMI, third)
    assert asyncio.run(router.read(ns, "ts3", spec_for("smi", "ts3"), OWNER)).problem == RouteProblem.INVALID


@pytest.mark.parametrize("mesh", ["istio", "smi"])
def test_the_operator_drives_istio_and_smi(mesh: str, kube: Any, driver: Driver, operator: Operator) -> None:
    ns = driver.namespace
    driver.healthy()
    if mesh == "istio":
        create(kube, ns, ISTIO, virtual_service("route", owner="m"))
        routing: dict[str, Any] = {"istio": {"virtualService": "route"}}
    else:
        create(kube, ns, SMI, traffic_split("route", owner="m"))
        routing = {"smi": {"trafficSplit": "route"}}
    driver.apply("m", trafficRouting=routing, phases=[{"weight": 5, "duration": "1s", "minRequests": 20},
                                                      {"weight": 25, "duration": "1s", "minRequests": 20}])
    driver.wait_phase("m", "Completed", timeout=60)
    router = TrafficRouter(kube, MESHES[mesh])
    spec = spec_for(mesh, "route")
    assert wait_for("25% on the route", lambda: asyncio.run(router.read(ns, "route", spec, "m")).weight == 25,
                    timeout=30)


def test_a_rollout_never_touches_a_route_it_does_not_own(kube: Any, driver: Driver, operator: Operator) -> None:
    """Anyone who may edit a WallBounceRollout cannot steer a route its owner did not hand over: RouteNotOwned,
    Paused and Stalled, the route as it was."""
    driver.healthy()
    driver.set_route_weights(90, 10)  # the route's owner's own choice
    driver.apply("intruder", own_route=False)
    status = driver.wait_phase("intruder", "Paused", timeout=30)
    assert status["pauseReason"] == "RouteNotOwned"
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "RouteNotOwned")
    assert driver.route_weights() == (90, 10)
    # a second rollout naming a route another one owns is refused the same way
    driver.own_route("techsapo", "owner")
    driver.apply("second", own_route=False)
    assert driver.wait_phase("second", "Paused", timeout=30)["pauseReason"] == "RouteNotOwned"
    assert driver.route_weights() == (90, 10)
