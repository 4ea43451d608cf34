"""Generated WallBounceRollouts against the real API server (server-side dry run): every malformed
one is refused with the offending field named; every valid one is accepted. ``CHAOS_EXAMPLES``
(default 100 each) raises the count for ``make chaos``."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes import client

from wallbounce_api import API_VERSION, GROUP, KIND, PLURAL, VERSION

pytestmark = pytest.mark.integration

EXAMPLES = int(os.environ.get("CHAOS_EXAMPLES", "100"))
BASE: dict[str, Any] = {
    "apiVersion": API_VERSION, "kind": KIND, "metadata": {"generateName": "gen-"},
    "spec": {"stable": {"deployment": "s", "service": "s"}, "canary": {"deployment": "c", "service": "c"},
             "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}},
             "analysis": {"prometheus": {"address": "http://prometheus:9090"}}},
}

durations = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 120), st.sampled_from(["s", "m", "h", "ms"]))


@st.composite
def valid_specs(draw: st.DrawFn) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    weights = sorted(draw(st.sets(st.integers(1, 100), min_size=1, max_size=8)))
    phases = []
    for w in weights:
        phase: dict[str, Any] = {"weight": w}
        if draw(st.booleans()):
            phase["duration"] = draw(durations)
        if draw(st.booleans()):
            phase["minRequests"] = draw(st.integers(0, 10_000))
        if draw(st.booleans()):
            limit = draw(st.floats(0.01, 0.5))
            gate = draw(st.floats(0.0, limit * 0.9))
            phase["promote"] = {"maxErrorRate": round(gate, 4), "maxLatencyP95": "2s", "minConsensusConfidence": 0.8}
            phase["rollback"] = {"errorRate": round(limit, 4) if round(limit, 4) > round(gate, 4) else 0.6,
                                 "latencyP95": "8s", "consensusConfidence": 0.5}
        phases.append(phase)
    body["spec"]["phases"] = phases
    body["spec"]["rollbackStrategy"] = draw(st.sampled_from(["Emergency", "Gradual"]))
    analysis = body["spec"]["analysis"]
    analysis["interval"] = draw(durations.filter(lambda d: not d.endswith("ms")))
    analysis["confidenceLevel"] = draw(st.sampled_from([0, 0.5, 0.9, 0.95, 0.99]))
    analysis["errorLimit"] = draw(st.integers(0, 50))
    router = draw(st.sampled_from([{"gatewayAPI": {"httpRoute": "r"}}, {"istio": {"virtualService": "v"}},
                                   {"smi": {"trafficSplit": "t"}}]))
    body["spec"]["trafficRouting"] = router
    return body


def _set(body: dict[str, Any], path: list[Any], value: Any) -> None:
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


# each mutation: (what it breaks, how, the field the server must name)
MUTATIONS: list[tuple[str, Any, str]] = [
    ("weight too big", lambda b, d: _set(b, ["spec", "phases", 0, "weight"], d(st.integers(101, 10_000))),
     "spec.phases[0].weight"),
    ("weight too small", lambda b, d: _set(b, ["spec", "phases", 0, "weight"], d(st.integers(-100, 0))),
     "spec.phases[0].weight"),
    ("decreasing", lambda b, d: _set(b, ["spec", "phases"], [{"weight": 50}, {"weight": d(st.integers(1, 50))}]),
     "spec.phases"),
    ("empty ladder", lambda b, d: _set(b, ["spec", "phases"], []), "spec.phases"),
    ("two routers", lambda b, d: _set(b, ["spec", "trafficRouting"], {"gatewayAPI": {"httpRoute": "r"},
                                                                       "istio": {"virtualService": "v"}}),
     "spec.trafficRouting"),
    ("no router", lambda b, d: _set(b, ["spec", "trafficRouting"], {}), "spec.trafficRouting"),
    ("confidence level", lambda b, d: _set(b, ["spec", "analysis", "confidenceLevel"],
                                           d(st.one_of(st.floats(1, 100), st.floats(-100, -0.01)))),
     "spec.analysis.confidenceLevel"),
    ("negative errorLimit", lambda b, d: _set(b, ["spec", "analysis", "errorLimit"], d(st.integers(-1000, -1))),
     "spec.analysis.errorLimit"),
    ("negative minRequests", lambda b, d: _set(b, ["spec", "phases", 0, "minRequests"], d(st.integers(-1000, -1))),
     "spec.phases[0].minRequests"),
    ("bad duration", lambda b, d: _set(b, ["spec", "phases", 0, "duration"],
                                       d(st.sampled_from(["-5m", "ten minutes", "5", "1d", "m5", ""]))),
     "spec.phases[0].duration"),
    ("gate looser than limit", lambda b, d: _set(b, ["spec", "phases", 0, "promote"],
                                                 {"maxErrorRate": d(st.floats(0.9, 1.0))}),
     "spec.phases[0].promote.maxErrorRate"),
    ("latency gate looser", lambda b, d: _set(b, ["spec", "phases", 0, "promote"],
                                              {"maxLatencyP95": f"{d(st.integers(10, 600))}s"}),
     "spec.phases[0].promote.maxLatencyP95"),
    ("same service", lambda b, d: _set(b, ["spec", "canary", "service"], b["spec"]["stable"]["service"]),
     "spec.canary.service"),
    ("bad strategy", lambda b, d: _set(b, ["spec", "rollbackStrategy"], d(st.sampled_from(["Fast", "", "gradual"]))),
     "spec.rollbackStrategy"),
    ("bad prometheus address", lambda b, d: _set(b, ["spec", "analysis", "prometheus", "address"],
                                                 d(st.sampled_from(["prometheus:9090", "ftp://p", ""]))),
     "spec.analysis.prometheus.address"),
]


def create(kube: Any, namespace: str, body: dict[str, Any]) -> None:
    client.CustomObjectsApi(kube).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, body, dry_run="All")


def test_generated_valid_specs_are_accepted(kube: Any, wbr_crd: str, namespace: str) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(valid_specs())
    def check(body: dict[str, Any]) -> None:
        try:
            create(kube, namespace, body)
        except client.ApiException as exc:
            raise AssertionError(f"valid spec refused: {exc.body}\n{body}") from exc

    check()


def test_generated_malformed_specs_are_refused_naming_the_field(kube: Any, wbr_crd: str, namespace: str) -> None:
    seen: set[str] = set()

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(valid_specs(), st.sampled_from(range(len(MUTATIONS))), st.data())
    def check(body: dict[str, Any], index: int, data: st.DataObject) -> None:
        what, mutate, field = MUTATIONS[index]
        body["spec"]["phases"] = body["spec"]["phases"][:1] if what not in ("decreasing", "empty ladder") \
            else body["spec"]["phases"]
        mutate(body, data.draw)
        with pytest.raises(client.ApiException) as refused:
            create(kube, namespace, body)
        assert refused.value.status == 422, (what, refused.value.body)
        assert field in str(refused.value.body), (what, field, refused.value.body)
        seen.add(what)

    check()
    assert len(seen) >= min(len(MUTATIONS), EXAMPLES // 10)  # the campaign covered most kinds of damage
