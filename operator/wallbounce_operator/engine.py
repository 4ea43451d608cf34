"""The analysis loop: one task for every rollout of the operator.

Kopf's watches feed ``observe_event`` with each rollout's latest body, and the caches of Deployments, ReplicaSets
and routes (``informers``) with the objects the rollouts name. Every second the loop picks the rollouts that need
attention — their analysis interval elapsed, or something changed (an action annotation, a spec change, a route
write to confirm or retry) — asks Prometheus for all of their canaries in one batch (a rollout with its own queries
gets its own task with a time budget, so a slow tenant never delays the others), and reconciles each:

    observe (Deployments, route) → decide (pure) → act (status, then the action annotation, the route, the stable
    template, the events)

The status is written first, with the resourceVersion that was read, so a stale view is refused (409) instead of
acting twice; it carries the weight the route must carry (``desiredWeight``) and claims a weight (``weight``) only
after the route was read back carrying it. A route write that fails is retried with backoff and reported once. A
decision's events are written into ``status.pendingEvents`` with the transition, posted, and dropped from it by the
next status write (``writes``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from . import memory, metrics, writes
from .analysis.prometheus import PrometheusSource, Target
from .analysis.verdict import guard
from .kube import Conflict, Gone, Kube
from .ladder import decide
from .model import (
    ACTION_ANNOTATION,
    Decision,
    Inputs,
    Observation,
    PendingEvent,
    Phase,
    RolloutSpec,
    RolloutStatus,
    Verdict,
    parse_time,
)
from .routers import MESHES, TrafficRouter
from .shards import Shards, shard_of
from .watches import Kind, NamespaceWatches

DEPLOYMENTS = Kind("apps", "v1", "deployments")
REPLICASETS = Kind("apps", "v1", "replicasets")

log = logging.getLogger("wallbounce.engine")

Key = tuple[str, str]
OUTBOX_LIMIT = 50  # status.pendingEvents keeps the newest this many while the events API refuses them
ROUTE_BACKOFF = (2.0, 300.0)  # first retry after 2 s, doubling, at most every 5 minutes
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"  # kubectl apply's copy of the object


def on_grid(at: float, interval: float) -> float:
    """The first multiple of ``interval`` (wall clock) at or after ``at``: rollouts that share an interval are
    judged in the same tick, so one batch of queries answers all of them."""
    return math.ceil(at / interval) * interval


def _trimmed(body: dict[str, Any]) -> dict[str, Any]:
    """A rollout as the engine keeps it: without what it never reads (managedFields, the last-applied annotation),
    which is most of a small object's size, times thousands of rollouts."""
    meta = body.get("metadata") or {}
    if "managedFields" not in meta and LAST_APPLIED not in (meta.get("annotations") or {}):
        return body
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    kept = {k: v for k, v in meta.items() if k not in ("managedFields", "annotations")}
    return {**body, "metadata": {**kept, **({"annotations": annotations} if annotations else {})}}


def _rv(body: dict[str, Any]) -> int:
    try:
        return int(body["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


@dataclass(frozen=True)
class References:
    """The objects one rollout reads: its Deployments and its route."""

    deployments: tuple[Key, Key]
    mesh: str
    route: Key


@dataclass(frozen=True)
class Policy:
    """Operator-level limits on what a rollout may ask for."""

    default_prometheus: str = ""
    allowed_prometheus: tuple[str, ...] = ()  # besides the default
    allow_query_overrides: bool = False
    query_budget: float = 5.0  # seconds for a rollout's own queries

    def refusal(self, spec: RolloutSpec) -> str | None:
        address = spec.prometheus or self.default_prometheus.rstrip("/")
        allowed = {a.rstrip("/") for a in (self.default_prometheus, *self.allowed_prometheus) if a}
        if not address:
            return "no Prometheus: spec.analysis.prometheus.address is empty and the operator has no default"
        if address not in allowed:
            return (f"spec.analysis.prometheus.address {address} is not allowed by the operator "
                    "(--prometheus-allow)")
        q = spec.queries
        if not self.allow_query_overrides and any((q.requests, q.error_rate, q.latency_p95, q.consensus_confidence,
                                                   q.cost_per_request)):
            return "spec.analysis.queries are not allowed by the operator (--allow-query-overrides)"
        return None


@dataclass
class Record:
    """Everything the engine holds about one rollout."""

    key: Key
    body: dict[str, Any]
    spec: RolloutSpec | None = None
    spec_of: tuple[Any, Any] | None = None  # (uid, generation) the spec was parsed from
    refs: References | None = None
    next_check: float = 0.0  # wall-clock time of the next analysis
    next_guard: float = 0.0  # wall-clock time of the next guard look (between analyses)
    wake_at: float = math.inf  # a reconcile without analysis (route retry)
    dirty: bool = False
    in_flight: bool = False
    route_error: str | None = None
    route_attempts: int = 0
    route_retry_at: float = 0.0
    written: dict[str, Any] | None = None  # the status as this process last wrote it (the API server's reply)
    shadow: RolloutStatus | None = None  # the latest decided status, its volatile fields not written yet
    last_write: float = 0.0

    def base(self) -> RolloutStatus:
        """The status to decide from: the latest decided one while the stored status is the one we wrote (nobody
        else changed it); else the stored one."""
        stored = self.status
        if self.shadow is not None and self.written == stored:
            return self.shadow
        self.shadow, self.written = None, stored
        status = RolloutStatus.from_dict(stored)
        # its heartbeat runs on from the stored status's last look (written with it), so a restart or a takeover
        # does not rewrite every rollout at once
        last = status.last_analysis_at.timestamp() if status.last_analysis_at else time.time()
        self.last_write = max(self.last_write, last)
        return status

    @property
    def status(self) -> dict[str, Any]:
        return dict(self.body.get("status") or {})

    def latest(self) -> dict[str, Any]:
        """The latest decided status, with the volatile figures (analysed values) held in memory between writes."""
        if self.shadow is not None and self.written == self.status:
            return self.shadow.to_dict()
        return self.status

    def needs_attention(self) -> bool:
        meta, status = self.body.get("metadata") or {}, self.status
        last = status.get("lastAction") or {}
        return bool(not status.get("phase") or (meta.get("annotations") or {}).get(ACTION_ANNOTATION)
                    or status.get("observedGeneration") != meta.get("generation") or status.get("pendingEvents")
                    or (last and not last.get("annotationCleared"))
                    or status.get("weight") != status.get("desiredWeight"))


class Engine:
    def __init__(self, api: client.ApiClient, *, source: PrometheusSource | None = None, tick: float = 1.0,
                 concurrency: int = 16, policy: Policy | None = None, guard_period: float = 2.0,
                 heartbeat: float = writes.HEARTBEAT) -> None:
        self.shards: Shards | None = None  # None: one replica, every rollout is ours
        self.guard_period = guard_period
        self.heartbeat = heartbeat
        self.kube = Kube(api)
        self.source = source or PrometheusSource()
        self.routers = {kind: TrafficRouter(api, mesh) for kind, mesh in MESHES.items()}
        deliver: dict[Kind, Any] = {DEPLOYMENTS: self.observe_deployment, REPLICASETS: self.observe_replicaset}
        for kind, mesh in MESHES.items():
            deliver[Kind(mesh.group, mesh.version, mesh.plural)] = self._route_observer(kind)
        self.watches = NamespaceWatches(api, deliver)
        self.policy = policy or Policy()
        self.tick_period = tick
        self.records: dict[Key, Record] = {}
        self.health = metrics.Health()
        self._limit = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        # told of the events each time a batch is posted (metrics; notifications: they must not block)
        self._gone: dict[Key, Record] = {}  # dropped after a 404 until their next event (DELETED: forgotten)
        self.event_sinks: list[Callable[[dict[str, Any], list[PendingEvent]], None]] = [metrics.count_events]

    # ----- fed by Kopf's watches ------------------------------------------------------------------

    def observe_event(self, event_type: str | None, body: dict[str, Any]) -> None:
        body = _trimmed(body)
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if event_type == "DELETED":
            self._forget(key)
            log.info("rollout %s/%s deleted: its route is left as it is", *key)
            return
        record = self.records.get(key)
        if record is None:
            record = self.records[key] = Record(key, body)
            dropped = self._gone.pop(key, None)
            if dropped is not None:  # back after a Gone: it takes over what the dropped record wanted
                record.refs = dropped.refs
        elif _rv(record.body) > _rv(body):
            return  # we already hold a newer version (our own write came back first)
        record.body = body
        self._parse(record)
        if record.next_check == 0.0:
            record.next_check = self._first_check(record)
        if record.needs_attention():
            record.dirty = True

    def _parse(self, record: Record) -> None:
        """The spec, once per generation; the caches are told which objects it names."""
        meta = record.body.get("metadata") or {}
        of = (meta.get("uid"), meta.get("generation"))
        if record.spec_of == of and of[1] is not None:
            return
        record.spec_of = of
        try:
            record.spec = RolloutSpec.from_dict(record.body.get("spec") or {})
        except ValueError as exc:
            record.spec = None
            log.error("rollout %s/%s has an unusable spec: %s", *record.key, exc)
        self._refer(record, record.spec)

    def _forget(self, key: Key) -> None:
        """A rollout gone (its DELETED event, or a write that found it gone first): its record, the objects and
        watches it wanted, its series and counter baselines."""
        record, dropped = self.records.pop(key, None), self._gone.pop(key, None)
        for held in (record, dropped):
            if held is not None:
                self._refer(held, None)
        metrics.forget(*key)
        self.source.forget(*key)

    def _refer(self, record: Record, spec: RolloutSpec | None) -> None:
        ns = record.key[0]
        refs = None if spec is None else References(
            ((ns, spec.stable.deployment), (ns, spec.canary.deployment)), spec.routing.kind, (ns, spec.routing.name))
        if refs == record.refs:
            return
        if record.refs is not None:
            for d in record.refs.deployments:
                self.kube.unwant_deployment(d)
            self.routers[record.refs.mesh].routes.unwant(record.refs.route)
            for kind in self._kinds(record.refs):
                self.watches.unwant(ns, kind)
        if refs is not None:
            for d in refs.deployments:
                self.kube.want_deployment(d)
            self.routers[refs.mesh].routes.want(refs.route)
            for kind in self._kinds(refs):
                self.watches.want(ns, kind)
        record.refs = refs

    @staticmethod
    def _kinds(refs: References) -> tuple[Kind, ...]:
        mesh = MESHES[refs.mesh]
        return DEPLOYMENTS, REPLICASETS, Kind(mesh.group, mesh.version, mesh.plural)

    def _route_observer(self, kind: str) -> Any:
        return lambda event_type, body: self.observe_route(kind, event_type, body)

    def observe_deployment(self, event_type: str | None, body: dict[str, Any]) -> None:
        self.kube.deployments.observe(event_type, body)

    def observe_replicaset(self, event_type: str | None, body: dict[str, Any]) -> None:
        self.kube.replicasets.observe(event_type, body)

    def observe_route(self, kind: str, event_type: str | None, body: dict[str, Any]) -> None:
        self.routers[kind].routes.observe(event_type, body)

    def _first_check(self, record: Record) -> float:
        """The first analysis: on the interval's grid, at least one interval after ``status.lastAnalysisAt``
        (restart-safe: a restarted operator neither judges early nor skips a judgement)."""
        interval = record.spec.interval if record.spec else 30.0
        last = parse_time(record.status.get("lastAnalysisAt"))
        return on_grid(last.timestamp() + interval if last else time.time(), interval)

    # ----- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.tick()
            except Exception:  # the loop must outlive any one bad tick
                log.exception("analysis tick failed")
            self.health.beat()
            memory.trim()  # what the tick's answers freed goes back to the system
            await asyncio.sleep(max(0.0, self.tick_period - (time.monotonic() - started)))

    async def tick(self) -> None:
        now = time.time()
        analysed: list[Record] = []
        guarded: list[Record] = []
        urgent: list[Record] = []
        for record in self.records.values():
            if record.in_flight or record.spec is None or not self._ours(record):
                continue
            if now >= record.next_check:
                record.next_check = on_grid(now + record.spec.interval * 0.5, record.spec.interval)
                record.next_guard = now + self.guard_period
                if self._own_queries(record):
                    self._spawn(self._analyse_alone(record, now))
                else:
                    analysed.append(record)
            elif self._judged(record) and now >= record.next_guard and not self._own_queries(record):
                record.next_guard = on_grid(now + self.guard_period * 0.5, self.guard_period)
                guarded.append(record)
                if not (record.dirty or now >= record.wake_at):
                    continue
                urgent.append(record)
            elif record.dirty or now >= record.wake_at:
                urgent.append(record)
            else:
                continue
            record.dirty, record.wake_at = False, math.inf
        with metrics.TICK.labels("analysis_queries").time():
            observations = await self._observe_batches(analysed, now, analysis=True)
        jobs = [self._reconcile(r, observations.get(r.key), analysis=True) for r in analysed]
        jobs += [self._reconcile(r, None, analysis=False) for r in urgent]
        jobs += [self._guard(guarded, now)]
        await asyncio.gather(*jobs)
        metrics.TICK.labels("tick").observe(time.time() - now)
        self._publish_lag()
        metrics.WATCHES.set(len(self.watches))
        metrics.count_phases([r.status for r in self.records.values()])

    async def _targets(self, records: list[Record]) -> list[Target]:
        out = []
        for r in records:
            if r.spec is None or not self._judged(r):
                continue
            canary = await self.kube.workload(r.key[0], r.spec.canary.deployment, r.spec.completion.variant_env)
            out.append(Target(r.key[0], r.key[1], r.spec, self._address(r.spec), canary.revision,
                              int(r.status.get("step") or 1)))
        return out

    async def _observe_batches(self, records: list[Record], now: float, *, analysis: bool) -> dict[Key, Observation]:
        """One batch per grid time (rollouts that share an interval share it): their last interval ends there."""
        groups: dict[float, list[Record]] = {}
        for r in records:
            assert r.spec is not None
            at = math.floor(now / r.spec.interval) * r.spec.interval if analysis else now
            groups.setdefault(at, []).append(r)
        out: dict[Key, Observation] = {}
        for at, members in groups.items():
            targets = await self._targets(members)
            if targets:
                out.update(await self.source.observe(targets, at, analysis=analysis))
        return out

    async def _guard(self, records: list[Record], now: float) -> None:
        """Between analysis ticks: the window of the suspects only (``PrometheusSource.guard``); a rollout is
        reconciled when its guard finds a breach."""
        targets = await self._targets(records)
        if not targets:
            return
        with metrics.TICK.labels("guard").time():
            observations = await self.source.guard(targets, now)
            jobs = []
            for r in records:
                obs = observations.get(r.key)
                if obs is None or obs.window is None or r.spec is None:
                    continue
                phase = r.spec.phases[min(int(r.status.get("step") or 1), len(r.spec.phases)) - 1]
                found = guard(phase, obs.window, obs.stable_window, r.spec.confidence_level)
                shown = bool((r.status.get("analysis") or {}).get("sharedBreach"))
                if found is not None and (found.verdict is Verdict.FAIL or not shown):
                    jobs.append(self._reconcile(r, obs, analysis=True))
            if jobs:
                await asyncio.gather(*jobs)

    def reported(self) -> list[Record]:
        """The rollouts this replica acts on (their shards held; all of them unsharded): what its metrics report, so
        two replicas never both report one rollout."""
        return [record for record in list(self.records.values()) if self._ours(record)]

    def _ours(self, record: Record) -> bool:
        return self.shards is None or self.shards.acts_on(*record.key)

    def _shard_label(self, record: Record) -> str:
        return "" if self.shards is None else str(shard_of(*record.key, self.shards.count))

    def acquired(self, shard: int) -> None:
        """A shard taken over (or back): its rollouts are decided from their stored status again, their counters
        get a fresh baseline, and each is looked at at once."""
        assert self.shards is not None
        for record in self.records.values():
            if shard_of(*record.key, self.shards.count) == shard:
                record.shadow = record.written = None
                record.dirty, record.next_check = True, 0.0
                self.source.forget(*record.key)

    def _address(self, spec: RolloutSpec) -> str:
        return spec.prometheus or self.policy.default_prometheus.rstrip("/")

    def _own_queries(self, record: Record) -> bool:
        q = record.spec.queries if record.spec else None
        return bool(q and any((q.requests, q.error_rate, q.latency_p95, q.consensus_confidence, q.cost_per_request))
                    and self.policy.refusal(record.spec) is None)  # type: ignore[arg-type]

    @staticmethod
    def _judged(record: Record) -> bool:
        """Only a canary that carries traffic is judged (the ladder decides what a verdict does)."""
        return int(record.status.get("weight") or 0) > 0

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _analyse_alone(self, record: Record, now: float) -> None:
        """A rollout with its own queries: observed within its time budget, apart from the batch."""
        record.in_flight = True
        try:
            observation = None
            spec = record.spec
            targets = await self._targets([record])
            if spec is not None and targets:
                budget = min(self.policy.query_budget, max(spec.interval * 0.8, 1.0))
                at = math.floor(now / spec.interval) * spec.interval
                try:
                    async with asyncio.timeout(budget):
                        observation = await self.source.observe_own(targets[0], at, analysis=True)
                except TimeoutError:
                    observation = Observation(error=f"the rollout's own queries took longer than {budget:g}s")
        finally:
            record.in_flight = False
        await self._reconcile(record, observation, analysis=True)

    def _publish_lag(self) -> None:
        now = dt.datetime.now(dt.UTC)
        ages = []
        for record in self.records.values():
            if not self._ours(record):
                continue  # another replica's shard: it reports its own
            status = record.shadow or RolloutStatus.from_dict(record.status)
            if status.weight > 0 and status.phase not in (Phase.PROMOTED, Phase.ROLLED_BACK, Phase.ABORTED):
                last = status.last_analysis_at or status.step_started_at
                if last:
                    ages.append((now - last).total_seconds())
        metrics.TICK_LAG.set(max(ages) if ages else 0)

    # ----- one rollout: observe → decide → act ------------------------------------------------------

    async def _reconcile(self, record: Record, observation: Observation | None, *, analysis: bool) -> None:
        if record.in_flight or record.spec is None:
            return
        record.in_flight = True
        try:
            async with self._limit:
                with metrics.RECONCILE.time():
                    inputs = await self._observe(record, record.spec, observation, analysis)
                    status = record.base()
                    decision = decide(record.spec, status, inputs)
                    await self._act(record, record.spec, status, decision, inputs)
        except Conflict:
            record.dirty = True  # someone wrote meanwhile: decide again from the fresh object next tick
        except Gone:
            if self.records.get(record.key) is record:  # dropped until its next event; what it wanted stays wanted
                self._gone[record.key] = self.records.pop(record.key)
        except Exception:
            log.exception("reconciling %s/%s failed; its state is unchanged", *record.key)
        finally:
            record.in_flight = False

    async def _observe(self, record: Record, spec: RolloutSpec, observation: Observation | None,
                       analysis: bool) -> Inputs:
        namespace, name = record.key
        env = spec.completion.variant_env
        canary = await self.kube.workload(namespace, spec.canary.deployment, env)
        stable = await self.kube.workload(namespace, spec.stable.deployment, env)
        route = await self.routers[spec.routing.kind].read(namespace, spec.routing.name, spec, name)
        if analysis and observation is None and self._judged(record):
            observation = Observation(error="no observation this tick")
        meta = record.body.get("metadata") or {}
        return Inputs(now=dt.datetime.now(dt.UTC), observation=observation if analysis else None, canary=canary,
                      stable=stable, route=route, route_write_error=record.route_error,
                      action=(meta.get("annotations") or {}).get(ACTION_ANNOTATION),
                      generation=meta.get("generation"), source_refused=self.policy.refusal(spec))

    async def _act(self, record: Record, spec: RolloutSpec, before: RolloutStatus, decision: Decision,
                   inputs: Inputs) -> None:
        namespace, name = record.key
        new = decision.status
        new.pending_events = (*new.pending_events,
                              *self.kube.outbox_entries(name, decision.events, inputs.now))[-OUTBOX_LIMIT:]
        if not self._ours(record):
            return  # the fence: the shard's Lease was not renewed in time, another replica may hold it now
        cause = writes.cause(record.written, new, record.last_write, time.time(),
                             writes.heartbeat_of(*record.key, self.heartbeat))
        if cause is not None:
            body = await self.kube.patch_status(namespace, name, new.to_dict(), record.written or {},
                                                record.body["metadata"].get("resourceVersion"))
            self._remember(record, body)
            record.written, record.last_write = dict(body.get("status") or {}), time.time()
            metrics.STATUS_WRITES.labels(self._shard_label(record), cause).inc()
        record.shadow = new
        for event in decision.events:
            metrics.count("wallbounce_operator_transitions", namespace, name, str(event.reason))
            log.info("%s/%s %s: %s", namespace, name, event.reason, event.message)
        if decision.clear_action and inputs.action is not None:
            cleared = await self.kube.remove_action(namespace, name, inputs.action)
            if cleared is not None:
                self._remember(record, cleared)
            record.dirty = True  # lastAction.annotationCleared is written by the next reconcile
        await self._write_route(record, spec, inputs, decision.weight)
        if decision.apply_stable_template:
            problem = await self.kube.apply_stable_template(namespace, spec.stable.deployment,
                                                            spec.canary.deployment, spec.completion.variant_env)
            if problem:
                log.warning("%s/%s: %s", namespace, name, problem)
            record.wake_at = time.time() + 2.0
        if new.pending_events:
            await self._post_events(record, new.pending_events)
        if decision.verdict is not None:
            metrics.count("wallbounce_operator_verdicts", namespace, name, str(decision.verdict))
        if new.history:
            metrics.observe_phase_durations(namespace, name, new.history)

    async def _write_route(self, record: Record, spec: RolloutSpec, inputs: Inputs, weight: int) -> None:
        route = inputs.route
        if route is None or route.weight is None or route.weight == weight:
            if route is not None and route.weight == weight:
                record.route_error, record.route_attempts = None, 0
            return
        now = time.time()
        if now < record.route_retry_at:
            record.wake_at = record.route_retry_at
            return
        namespace, name = record.key
        problem = await self.routers[spec.routing.kind].write(namespace, spec.routing.name, spec, name, weight)
        if problem is None:
            record.route_error, record.route_attempts, record.route_retry_at = None, 0, 0.0
        else:
            record.route_attempts += 1
            delay = min(ROUTE_BACKOFF[0] * 2 ** (record.route_attempts - 1), ROUTE_BACKOFF[1])
            record.route_retry_at = now + delay
            record.wake_at = record.route_retry_at
            if record.route_error != problem:
                log.warning("route of %s/%s: %s (retry in %.0fs)", namespace, name, problem, delay)
            record.route_error = problem
        record.dirty = True  # the next reconcile confirms the weight (or records the failure)

    async def _post_events(self, record: Record, entries: tuple[PendingEvent, ...]) -> None:
        """Post the decided Events that the stored status holds (the outbox is written first); once all are posted
        the next status write drops them from it, or one of its own after ``writes.EVENTS_LINGER``."""
        stored = {entry.get("name") for entry in record.status.get("pendingEvents") or []}
        entries = tuple(entry for entry in entries if entry.name in stored)
        posted = [await self.kube.emit(record.body, entry) for entry in entries]
        if entries and all(posted):
            for sink in self.event_sinks:
                sink(record.body, list(entries))
            if record.shadow is not None:
                record.shadow.pending_events = ()
            record.wake_at = min(record.wake_at, time.time() + writes.EVENTS_LINGER + 0.5)
        # else: they stay pending in the status (and the shadow) and the next reconcile posts them

    def _remember(self, record: Record, body: dict[str, Any]) -> None:
        if _rv(body) >= _rv(record.body):
            record.body = _trimmed(body)
