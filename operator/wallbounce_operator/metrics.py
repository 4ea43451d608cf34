"""The operator's own Prometheus metrics and its /metrics + /healthz endpoint (aiohttp)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from .model import PauseReason, Phase

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # the operator's RSS and CPU, for dashboards and the scale benchmark

ROLLOUTS = Gauge("wallbounce_operator_rollouts", "Rollouts in each phase", ["phase"], registry=REGISTRY)
WEIGHT = Gauge("wallbounce_operator_rollout_weight", "Current canary weight (percent)", ["namespace", "rollout"],
               registry=REGISTRY)
STEP = Gauge("wallbounce_operator_rollout_step", "Current step of the ladder (1-based)", ["namespace", "rollout"],
             registry=REGISTRY)
PHASE = Gauge("wallbounce_operator_rollout_phase", "1 for the rollout's current phase",
              ["namespace", "rollout", "phase"], registry=REGISTRY)
PAUSED = Gauge("wallbounce_operator_rollout_paused", "1 while the rollout is paused for that reason",
               ["namespace", "rollout", "reason"], registry=REGISTRY)
VERDICTS = Counter("wallbounce_operator_verdicts_total", "Analysis verdicts", ["namespace", "rollout", "verdict"],
                   registry=REGISTRY)
TRANSITIONS = Counter("wallbounce_operator_transitions_total", "Rollout events by reason",
                      ["namespace", "rollout", "reason"], registry=REGISTRY)
RECONCILE = Histogram("wallbounce_operator_reconcile_duration_seconds", "Time to reconcile one rollout",
                      buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
WATCHES = Gauge("wallbounce_operator_watches", "Watches of Deployments, ReplicaSets and routes (per namespace and kind "
                "that rollouts read)", registry=REGISTRY)
SHARDS_HELD = Gauge("wallbounce_operator_shards_held", "Shards this replica holds and acts on", registry=REGISTRY)
STATUS_WRITES = Counter("wallbounce_operator_status_writes_total",
                        "Status writes by shard (a steady look writes none: only visible changes and heartbeats)",
                        ["shard"], registry=REGISTRY)
PROM_QUERIES = Counter("wallbounce_operator_prometheus_queries_total", "PromQL queries sent", registry=REGISTRY)
PROM_QUERY_ERRORS = Counter("wallbounce_operator_prometheus_query_errors_total", "PromQL queries that failed",
                            registry=REGISTRY)
TICK_LAG = Gauge("wallbounce_operator_oldest_evaluation_age_seconds",
                 "Age of the oldest analysis among active rollouts", registry=REGISTRY)


def publish(namespace: str, name: str, status: Mapping[str, Any]) -> None:
    """Per-rollout gauges from its status."""
    WEIGHT.labels(namespace, name).set(int(status.get("weight") or 0))
    STEP.labels(namespace, name).set(int(status.get("step") or 0))
    current = status.get("phase")
    for phase in Phase:
        PHASE.labels(namespace, name, str(phase)).set(1 if current == phase else 0)
    reason = status.get("pauseReason") if current == Phase.PAUSED else None
    for r in PauseReason:
        PAUSED.labels(namespace, name, str(r)).set(1 if reason == r else 0)


def forget(namespace: str, name: str) -> None:
    for gauge in (WEIGHT, STEP):
        try:
            gauge.remove(namespace, name)
        except KeyError:
            pass
    for phase in Phase:
        try:
            PHASE.remove(namespace, name, str(phase))
        except KeyError:
            pass
    for r in PauseReason:
        try:
            PAUSED.remove(namespace, name, str(r))
        except KeyError:
            pass


def count_phases(statuses: list[Mapping[str, Any]]) -> None:
    counts = {str(p): 0 for p in Phase}
    for s in statuses:
        phase = s.get("phase")
        if phase in counts:
            counts[phase] += 1
    for phase, n in counts.items():
        ROLLOUTS.labels(phase).set(n)


class Health:
    """Healthy while the analysis loop has ticked recently."""

    def __init__(self, stale_after: float = 60.0) -> None:
        self.stale_after = stale_after
        self.last_tick = time.monotonic()

    def beat(self) -> None:
        self.last_tick = time.monotonic()

    def healthy(self) -> bool:
        return time.monotonic() - self.last_tick < self.stale_after


async def serve(port: int, health: Health, host: str = "0.0.0.0") -> web.AppRunner:  # noqa: S104 - probes
    async def metrics_view(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        if health.healthy():
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "stale", "lastTickAgo": time.monotonic() - health.last_tick},
                                 status=503)

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
