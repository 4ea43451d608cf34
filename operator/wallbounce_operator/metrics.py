"""The operator's own Prometheus metrics and its /metrics + /healthz endpoint (aiohttp).

Besides ``wallbounce_operator_info{version}``, the events posted by reason and type, the time spent in each phase
(observed from ``status.history`` when a rollout leaves a phase) and the notifications sent, the per-rollout series
are read from the engine's rollouts at scrape time by ``RolloutCollector`` — weight, step, phase, pause reasons,
``wallbounce_rollout_info``, the analysed values and the current step's promotion gates and rollback limits (so a
dashboard draws each gate beside its value) — and the per-rollout counters (verdicts, transitions) are plain numbers
in ``ROLLOUT_COUNTS``: a labelled child metric per rollout and value would cost a few KiB each, times thousands of
rollouts."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

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

from .model import HistoryEntry, PauseReason, PendingEvent, Phase, PhaseSpec, RolloutSpec

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)  # the operator's RSS and CPU, for dashboards and the scale benchmark

ROLLOUTS = Gauge("wallbounce_operator_rollouts", "Rollouts in each phase", ["phase"], registry=REGISTRY)
#: per-rollout counters: name → (help, the label of the counted value)
ROLLOUT_COUNTERS = {"wallbounce_operator_verdicts": ("Analysis verdicts", "verdict"),
                    "wallbounce_operator_transitions": ("Rollout events by reason", "reason")}
#: counter name → (namespace, rollout, value) → count, since this process started
ROLLOUT_COUNTS: dict[str, dict[tuple[str, str, str], float]] = {name: {} for name in ROLLOUT_COUNTERS}


def count(name: str, namespace: str, rollout: str, value: str) -> None:
    """One more of ``value`` for a rollout (``name``: a key of ``ROLLOUT_COUNTERS``)."""
    counts = ROLLOUT_COUNTS[name]
    key = (namespace, rollout, value)
    counts[key] = counts.get(key, 0.0) + 1.0


RECONCILE = Histogram("wallbounce_operator_reconcile_duration_seconds", "Time to reconcile one rollout",
                      buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=REGISTRY)
TICK = Histogram("wallbounce_operator_tick_seconds", "One pass of the analysis loop, by part: the whole tick, the "
                 "analysis looks' batched queries, the guard's look (queries and the reconciles of its breaches)",
                 ["part"], buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120), registry=REGISTRY)
WATCHES = Gauge("wallbounce_operator_watches", "Watches of Deployments, ReplicaSets and routes (per namespace and kind "
                "that rollouts read)", registry=REGISTRY)
SHARDS_HELD = Gauge("wallbounce_operator_shards_held", "Shards this replica holds and acts on", registry=REGISTRY)
STATUS_WRITES = Counter("wallbounce_operator_status_writes_total",
                        "Status writes by shard and cause (a steady look writes none: only visible changes — cause: "
                        "the first status field that changed — heartbeats, this process's first write of a rollout, "
                        "and Events posted)", ["shard", "cause"], registry=REGISTRY)
PROM_QUERIES = Counter("wallbounce_operator_prometheus_queries_total", "PromQL queries sent", registry=REGISTRY)
PROM_QUERY_ERRORS = Counter("wallbounce_operator_prometheus_query_errors_total", "PromQL queries that failed",
                            registry=REGISTRY)
INFO = Gauge("wallbounce_operator_info", "The operator's version (always 1)", ["version"], registry=REGISTRY)
EVENTS = Counter("wallbounce_rollout_events", "Events posted for rollouts, by reason and type", ["reason", "type"],
                 registry=REGISTRY)
PHASE_DURATION = Histogram("wallbounce_rollout_phase_duration_seconds", "Time spent in a phase before leaving it",
                           ["phase"], buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400),
                           registry=REGISTRY)
NOTIFICATIONS = Counter("wallbounce_operator_notifications", "Notifications by target and result (sent, failed, "
                        "expired, dropped)", ["target", "result"], registry=REGISTRY)
TICK_LAG = Gauge("wallbounce_operator_oldest_evaluation_age_seconds",
                 "Age of the oldest analysis among active rollouts", registry=REGISTRY)


def _version() -> str:
    try:
        return importlib.metadata.version("wallbounce-operator")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


INFO_VERSION = _version()
INFO.labels(INFO_VERSION).set(1)

#: (namespace, rollout) → time of the newest history entry already observed
_HISTORY_SEEN: dict[tuple[str, str], dt.datetime | None] = {}
_UNSEEN: Any = object()  # a rollout this process has not looked at yet


def count_events(_rollout: Mapping[str, Any], entries: list[PendingEvent]) -> None:
    """The engine's event sink: each event posted, by reason and type."""
    for entry in entries:
        EVENTS.labels(entry.reason, entry.type).inc()


def observe_phase_durations(namespace: str, name: str, history: Sequence[HistoryEntry]) -> None:
    """For each new history entry that leaves a phase, the time since the entry that entered it. The history an
    operator finds at start-up is taken as seen (a restart observes nothing twice)."""
    key = (namespace, name)
    newest = history[-1].time if history else None
    seen = _HISTORY_SEEN.get(key, _UNSEEN)
    _HISTORY_SEEN[key] = newest
    if seen is _UNSEEN or seen == newest:
        return  # found at start-up, or nothing new (most looks)
    for i, entry in enumerate(history):
        if (seen is not None and entry.time <= seen) or entry.from_ in ("", entry.to):
            continue
        entered = next((h for h in reversed(history[:i]) if h.to == entry.from_ and h.from_ != entry.from_), None)
        if entered is not None and entry.time >= entered.time:
            PHASE_DURATION.labels(entry.from_).observe((entry.time - entered.time).total_seconds())


def forget(namespace: str, name: str) -> None:
    _HISTORY_SEEN.pop((namespace, name), None)
    for counts in ROLLOUT_COUNTS.values():
        for key in [k for k in counts if k[:2] == (namespace, name)]:
            del counts[key]


def count_phases(statuses: list[Mapping[str, Any]]) -> None:
    counts = {str(p): 0 for p in Phase}
    for s in statuses:
        phase = s.get("phase")
        if phase in counts:
            counts[phase] += 1
    for phase, n in counts.items():
        ROLLOUTS.labels(phase).set(n)


class Rollout(Protocol):
    """What the collector reads of the engine's record of a rollout."""

    key: tuple[str, str]
    spec: RolloutSpec | None

    def latest(self) -> dict[str, Any]: ...


#: status.analysis field → (metric label, promotion gate of the step, rollback limit of the step)
GATES: dict[str, tuple[str, Callable[[PhaseSpec], float | None], Callable[[PhaseSpec], float | None]]] = {
    "errorRate": ("error_rate", lambda p: p.max_error_rate, lambda p: p.rollback_error_rate),
    "latencyP95": ("latency_p95_seconds", lambda p: p.max_latency_p95, lambda p: p.rollback_latency_p95),
    "consensusConfidence": ("consensus_confidence", lambda p: p.min_confidence, lambda p: p.rollback_confidence),
    "costPerRequest": ("cost_per_request_usd", lambda p: p.max_cost_per_request, lambda p: None),
}


class RolloutCollector:
    """At scrape time, from the rollouts this replica acts on: ``wallbounce_operator_rollout_{weight,step}``,
    ``wallbounce_operator_rollout_phase{phase}`` and ``_paused{reason}`` (1 for the current one, 0 for the others),
    ``wallbounce_rollout_info{namespace,name,phase,step}``,
    ``wallbounce_rollout_analysis_value{namespace,rollout,metric}`` (the last analysis) and
    ``wallbounce_rollout_threshold{namespace,rollout,metric,gate}`` (the current step's ``promote`` gate and
    ``rollback`` limit, tier defaults applied); and the per-rollout counters of this process."""

    def __init__(self, rollouts: Callable[[], Iterable[Rollout]]) -> None:
        self.rollouts = rollouts

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        pair = ["namespace", "rollout"]
        weight = GaugeMetricFamily("wallbounce_operator_rollout_weight", "Current canary weight (percent)",
                                   labels=pair)
        step_of = GaugeMetricFamily("wallbounce_operator_rollout_step", "Current step of the ladder (1-based)",
                                    labels=pair)
        phase_of = GaugeMetricFamily("wallbounce_operator_rollout_phase", "1 for the rollout's current phase",
                                     labels=[*pair, "phase"])
        paused = GaugeMetricFamily("wallbounce_operator_rollout_paused", "1 while the rollout is paused for that "
                                   "reason", labels=[*pair, "reason"])
        info = GaugeMetricFamily("wallbounce_rollout_info", "A rollout's phase and step (always 1)",
                                 labels=["namespace", "name", "phase", "step"])
        value = GaugeMetricFamily("wallbounce_rollout_analysis_value", "The last analysed value of the canary",
                                  labels=["namespace", "rollout", "metric"])
        threshold = GaugeMetricFamily("wallbounce_rollout_threshold", "The current step's promotion gate and "
                                      "rollback limit", labels=["namespace", "rollout", "metric", "gate"])
        for record in list(self.rollouts()):
            namespace, name = record.key
            status = record.latest()
            step = int(status.get("step") or 0)
            current = status.get("phase")
            weight.add_metric([namespace, name], int(status.get("weight") or 0))
            step_of.add_metric([namespace, name], step)
            for each in Phase:
                phase_of.add_metric([namespace, name, str(each)], 1 if current == each else 0)
            reason = status.get("pauseReason") if current == Phase.PAUSED else None
            for r in PauseReason:
                paused.add_metric([namespace, name, str(r)], 1 if reason == r else 0)
            info.add_metric([namespace, name, str(current or "Pending"), str(step)], 1)
            analysis = status.get("analysis") or {}
            for field, (metric, _, _) in GATES.items():
                if isinstance(analysis.get(field), int | float):
                    value.add_metric([namespace, name, metric], float(analysis[field]))
            if record.spec is None or not record.spec.phases:
                continue
            phase = record.spec.phases[min(max(step, 1), len(record.spec.phases)) - 1]
            for metric, promote, rollback in GATES.values():
                for gate, limit in (("promote", promote(phase)), ("rollback", rollback(phase))):
                    if limit is not None:
                        threshold.add_metric([namespace, name, metric, gate], float(limit))
        counters = []
        for counter, (text, label) in ROLLOUT_COUNTERS.items():
            family = CounterMetricFamily(counter, text, labels=[*pair, label])
            for labels, n in list(ROLLOUT_COUNTS[counter].items()):
                family.add_metric(list(labels), n)
            counters.append(family)
        return [weight, step_of, phase_of, paused, info, value, threshold, *counters]

    def describe(self) -> Iterable[Any]:
        return []


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
