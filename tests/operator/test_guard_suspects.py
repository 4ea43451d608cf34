"""The guard's two-step look against the real Prometheus scraping the traffic exporter: the suspects query names
exactly the canaries whose window holds something a rollback limit could be breached by, so the guard fetches the
full window of those only — and it never misses a breach that the full window shows (each canary's guard judgement
is the same either way). A healthy fleet costs one query per guard look."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from wallbounce_local.components import Exporter
from wallbounce_local.procs import wait_for
from wallbounce_local.prometheus import Prometheus
from wallbounce_local.traffic import HEALTHY, ExporterTraffic
from wallbounce_operator import metrics
from wallbounce_operator.analysis import queries
from wallbounce_operator.analysis.prometheus import PrometheusSource, Target
from wallbounce_operator.analysis.verdict import guard
from wallbounce_operator.model import RolloutSpec

pytestmark = pytest.mark.integration

#: Each canary's traffic (stable healthy beside every one), and whether its window makes it a suspect.
CANARIES: dict[str, tuple[dict[str, Any], bool]] = {
    "healthy": ({}, False),
    "errors": ({"errorRatio": 0.05}, True),
    "fourxx": ({"clientErrorRatio": 0.3}, True),
    "slow": ({"slowRatio": 0.2, "slowLatency": 30.0}, True),  # above the 10 s rollback limit
    "slowish": ({"slowRatio": 0.5, "slowLatency": 7.0}, False),  # over the 5 s gate, under the limit: no breach
    "low": ({"confidence": 0.3}, True),  # under the 0.6 rollback limit
    "middling": ({"confidence": 0.65}, False),  # under the gate (0.7), over the limit
}


def spec(name: str, prometheus: str) -> RolloutSpec:
    return RolloutSpec.from_dict({
        "stable": {"deployment": f"{name}-stable", "service": f"{name}-stable"},
        "canary": {"deployment": f"{name}-canary", "service": f"{name}-canary"},
        "trafficRouting": {"gatewayAPI": {"httpRoute": name}},
        "analysis": {"prometheus": {"address": prometheus}, "interval": "30s", "window": "6s",
                     "confidenceLevel": 0.95},
        "phases": [{"weight": 10, "duration": "10m", "minRequests": 20}],
    })


@pytest.fixture
def fleet(exporter: Exporter, prometheus: Prometheus) -> list[Target]:
    namespace = f"suspects-{uuid.uuid4().hex[:8]}"
    traffic = ExporterTraffic(exporter.url, namespace)
    targets = []
    for name, (profile, _) in CANARIES.items():
        for variant in ("canary", "stable"):
            traffic.revisions[f"{name}-{variant}"] = "r1"
        traffic.set(f"{name}-stable", variant="stable", **HEALTHY)
        traffic.set(f"{name}-canary", variant="canary", **{**HEALTHY, **profile})
        targets.append(Target(namespace, name, spec(name, prometheus.url), prometheus.url, "r1"))
    wait_for("a full window of every canary", lambda: len(prometheus.query(
        f'count_over_time(wallbounce_requests_total{{namespace="{namespace}",outcome="success"}}[6s]) >= 5'))
        == 2 * len(CANARIES), timeout=30)
    return targets


def judgements(observations: dict[tuple[str, str], Any], targets: list[Target]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for t in targets:
        obs = observations.get((t.namespace, t.name))
        found = None if obs is None or obs.window is None else guard(t.phase, obs.window, obs.stable_window, 0.95)
        out[t.name] = None if found is None else str(found.verdict)
    return out


def test_the_guard_fetches_the_suspects_only_and_misses_no_breach(fleet: list[Target]) -> None:
    source = PrometheusSource()
    at = time.time()
    first = asyncio.run(source.guard(fleet, at))  # no bucket boundaries known yet: every window, in full
    assert set(first) == {(t.namespace, t.name) for t in fleet}
    assert all(o.error is None for o in first.values())

    full = asyncio.run(source.observe(fleet, at, analysis=False))
    suspects = asyncio.run(source.guard(fleet, at))
    assert sorted(name for _, name in suspects) == sorted(n for n, (_, suspect) in CANARIES.items() if suspect)
    # what the full windows judge, the suspects' windows judge the same: a breach is never missed
    assert judgements(suspects, fleet) == judgements(full, fleet)
    assert {name for name, verdict in judgements(full, fleet).items() if verdict} >= {"errors", "slow", "low"}
    for key, obs in suspects.items():  # the same figures as the full window (the selector narrows, never changes)
        assert obs.window == full[key].window and obs.stable_window == full[key].stable_window

    healthy = [t for t in fleet if not CANARIES[t.name][1]]
    before = metrics.PROM_QUERIES._value.get()
    assert asyncio.run(source.guard(healthy, at)) == {}
    assert metrics.PROM_QUERIES._value.get() - before == 1  # one small query, whatever the fleet's size


def test_a_failed_suspects_query_is_an_error_never_a_clean_bill(fleet: list[Target]) -> None:
    source = PrometheusSource(timeout=2.0)
    asyncio.run(source.observe(fleet, time.time(), analysis=False))  # boundaries known
    gone = [Target(t.namespace, t.name, t.spec, "http://127.0.0.1:9", t.revision) for t in fleet]
    source._layouts["http://127.0.0.1:9"] = source._layouts[fleet[0].address]
    out = asyncio.run(source.guard(gone, time.time()))
    assert set(out) == {(t.namespace, t.name) for t in fleet}
    assert all(o.error and "unreachable" in o.error and o.window is None for o in out.values())


def test_a_mass_of_suspects_is_fetched_in_full_not_with_a_selector_too_long_to_send(fleet: list[Target]) -> None:
    """A shared outage makes every canary a suspect: thousands of names do not go into the query (a URL too long
    for the server would leave the guard blind exactly then); the window of every Service is fetched instead."""
    many = [(f"team-{i:04d}", f"service-{i:04d}-canary") for i in range(3000)]
    assert queries.selector(many) == ""
    assert queries.selector(many[:3]) == ('{namespace=~"team-0000|team-0001|team-0002",service=~"service-0000-canary|'
                                          'service-0001-canary|service-0002-canary"}')
    assert queries.selector([("ns", 'x",service=~".*')]) == ""  # not a Kubernetes name: everything, never injected
    source, at = PrometheusSource(), time.time()
    full = asyncio.run(source.observe(fleet, at, analysis=False))
    mass = asyncio.run(source.observe(fleet, at, analysis=False,
                                      services=[*many, *((t.namespace, t.spec.canary.service) for t in fleet)]))
    assert {k: (o.error, o.window) for k, o in mass.items()} == {k: (o.error, o.window) for k, o in full.items()}
