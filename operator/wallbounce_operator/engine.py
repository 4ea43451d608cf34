"""The analysis loop: one task for every rollout of the operator.

Kopf's watch feeds ``observe_event`` with each rollout's latest body, and the caches of canary
Deployments and routes (``informers``) with the objects the rollouts name. Every second the loop picks
the rollouts that need attention — their analysis interval elapsed, or something a human did
(an action annotation, a spec change, a new rollout) — asks Prometheus for all of their canaries
in one batch, and reconciles each: observe (Deployment, route) → decide (pure) → act (status, then
route weights, then events). Status is written with the resourceVersion that was read, so a stale
view is refused by the API server (409) instead of promoting twice; the next tick decides again.
A decision's events are written into ``status.pendingEvents`` together with the transition and
cleared once posted, so an operator killed between the two posts them after its restart, once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from typing import Any

from kubernetes import client

from . import metrics
from .analysis.prometheus import PrometheusSource, Target
from .kube import Conflict, Gone, Kube
from .ladder import decide
from .model import ACTION_ANNOTATION, TERMINAL, Inputs, Observation, Phase, RolloutSpec, RouteState, parse_time
from .routers import MESHES, TrafficRouter

log = logging.getLogger("wallbounce.engine")

Key = tuple[str, str]
References = tuple[tuple[str, str], str, tuple[str, str]]  # canary Deployment, mesh kind, route
OUTBOX_LIMIT = 50  # status.pendingEvents keeps the newest this many while the events API refuses them


def on_grid(at: float, interval: float) -> float:
    """The first multiple of ``interval`` (wall clock) at or after ``at``: rollouts that share an interval are
    judged in the same tick, so one batch of queries answers all of them."""
    return math.ceil(at / interval) * interval


def _rv(body: dict[str, Any]) -> int:
    try:
        return int(body["metadata"].get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class Engine:
    def __init__(self, api: client.ApiClient, *, source: PrometheusSource | None = None, tick: float = 1.0,
                 concurrency: int = 16) -> None:
        self.kube = Kube(api)
        self.source = source or PrometheusSource()
        self.routers = {kind: TrafficRouter(api, mesh) for kind, mesh in MESHES.items()}
        self.tick_period = tick
        self.rollouts: dict[Key, dict[str, Any]] = {}
        self.next_check: dict[Key, float] = {}  # wall-clock time of the next analysis
        self.dirty: set[Key] = set()
        self.pending_action: dict[Key, str] = {}
        self.in_flight: set[Key] = set()
        self.references: dict[Key, References] = {}
        self._referred_generation: dict[Key, Any] = {}
        self.health = metrics.Health()
        self._limit = asyncio.Semaphore(concurrency)

    # ----- fed by Kopf's watch --------------------------------------------------------------------

    def observe_event(self, event_type: str | None, body: dict[str, Any]) -> None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if event_type == "DELETED":
            self._refer(key, None)
            self.rollouts.pop(key, None)
            self.next_check.pop(key, None)
            self.dirty.discard(key)
            self.pending_action.pop(key, None)
            metrics.forget(*key)
            log.info("rollout %s/%s deleted: its route is left as it is", *key)
            return
        current = self.rollouts.get(key)
        if current is not None and _rv(current) > _rv(body):
            return  # we already hold a newer version (our own write came back first)
        self.rollouts[key] = body
        self._refer(key, body)
        if key not in self.next_check:
            self.next_check[key] = self._first_check(body)
        status = body.get("status") or {}
        if (not status.get("phase") or (meta.get("annotations") or {}).get(ACTION_ANNOTATION)
                or status.get("observedGeneration") != meta.get("generation") or status.get("pendingEvents")):
            self.dirty.add(key)

    def _refer(self, key: Key, body: dict[str, Any] | None) -> None:
        """Tell the caches which canary Deployment and route this rollout reads (none once it is gone)."""
        meta = (body or {}).get("metadata") or {}
        generation = (meta.get("uid"), meta.get("generation"))
        if body is not None and generation[1] is not None and self._referred_generation.get(key) == generation:
            return  # the spec has not changed since (our own status writes come back as events)
        refs: References | None = None
        if body is not None:
            try:
                spec = RolloutSpec.from_dict(body.get("spec") or {})
                refs = ((key[0], spec.canary.deployment), spec.routing.kind, (key[0], spec.routing.name))
            except (KeyError, ValueError, TypeError):
                refs = None
        if body is None:
            self._referred_generation.pop(key, None)
        else:
            self._referred_generation[key] = generation
        old = self.references.get(key)
        if refs == old:
            return
        if old is not None:
            self.kube.deployments.unwant(old[0])
            self.routers[old[1]].routes.unwant(old[2])
        if refs is not None:
            self.kube.deployments.want(refs[0])
            self.routers[refs[1]].routes.want(refs[2])
            self.references[key] = refs
        else:
            self.references.pop(key, None)

    def observe_deployment(self, event_type: str | None, body: dict[str, Any]) -> None:
        self.kube.deployments.observe(event_type, body)

    def observe_route(self, kind: str, event_type: str | None, body: dict[str, Any]) -> None:
        self.routers[kind].routes.observe(event_type, body)

    def _first_check(self, body: dict[str, Any]) -> float:
        """The first analysis: on the interval's grid, at least one interval after ``status.lastAnalysisAt``
        (restart-safe: a restarted operator neither judges early nor skips a judgement)."""
        try:
            interval = RolloutSpec.from_dict(body.get("spec") or {}).interval
        except (KeyError, ValueError, TypeError):
            interval = 30.0
        last = parse_time((body.get("status") or {}).get("lastAnalysisAt"))
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
            await asyncio.sleep(max(0.0, self.tick_period - (time.monotonic() - started)))

    async def tick(self) -> None:
        now = time.time()
        periodic = [k for k in self.rollouts if now >= self.next_check.get(k, 0) and k not in self.in_flight]
        urgent = [k for k in self.dirty if k in self.rollouts and k not in self.in_flight and k not in periodic]
        self.dirty.difference_update(urgent)
        self.dirty.difference_update(periodic)
        targets = []
        specs: dict[Key, RolloutSpec] = {}
        for key in periodic:
            body = self.rollouts[key]
            try:
                spec = RolloutSpec.from_dict(body.get("spec") or {})
            except (KeyError, ValueError, TypeError) as exc:
                log.error("rollout %s/%s has an unusable spec: %s", *key, exc)
                self.next_check[key] = now + 30
                continue
            specs[key] = spec
            self.next_check[key] = on_grid(now + spec.interval * 0.5, spec.interval)
            status = body.get("status") or {}
            if status.get("phase") in (Phase.PROGRESSING, Phase.HOLDING) and int(status.get("weight") or 0) > 0:
                targets.append(Target(key[0], key[1], spec))
        observations = await self.source.observe(targets) if targets else {}
        self._publish_lag()
        jobs = [self._reconcile(k, observations.get(k), analysis=True) for k in specs]
        jobs += [self._reconcile(k, None, analysis=False) for k in urgent]
        if jobs:
            await asyncio.gather(*jobs)
        metrics.count_phases([b.get("status") or {} for b in self.rollouts.values()])

    def _publish_lag(self) -> None:
        now = dt.datetime.now(dt.UTC)
        ages = []
        for body in self.rollouts.values():
            status = body.get("status") or {}
            if status.get("phase") in (Phase.PROGRESSING, Phase.HOLDING) and int(status.get("weight") or 0) > 0:
                last = parse_time(status.get("lastAnalysisAt")) or parse_time(status.get("stepStartedAt"))
                if last:
                    ages.append((now - last).total_seconds())
        metrics.TICK_LAG.set(max(ages) if ages else 0)

    async def _reconcile(self, key: Key, observation: Observation | None, *, analysis: bool) -> None:
        if key in self.in_flight:
            return
        self.in_flight.add(key)
        try:
            async with self._limit:
                with metrics.RECONCILE.time():
                    await self._reconcile_one(key, observation, analysis)
        except Conflict:
            self.dirty.add(key)  # someone wrote meanwhile: decide again from the fresh object next tick
        except Gone:
            self.rollouts.pop(key, None)
        except Exception:
            log.exception("reconciling %s/%s failed; its state is unchanged", *key)
        finally:
            self.in_flight.discard(key)

    async def _reconcile_one(self, key: Key, observation: Observation | None, analysis: bool) -> None:
        namespace, name = key
        body = self.rollouts.get(key)
        if body is None:
            return
        spec = RolloutSpec.from_dict(body.get("spec") or {})
        meta = body["metadata"]
        annotation = (meta.get("annotations") or {}).get(ACTION_ANNOTATION)
        if annotation:
            # consume the request first: at most once, never a double promotion after a crash
            body = await self.kube.clear_action(namespace, name, meta.get("resourceVersion"))
            self._remember(key, body)
            self.pending_action[key] = annotation
            meta = body["metadata"]
        status: dict[str, Any] = dict(body.get("status") or {})
        phase = status.get("phase")
        canary = await self.kube.canary(namespace, spec.canary.deployment)
        router = self.routers[spec.routing.kind]
        route: RouteState | None = await router.read(namespace, spec.routing.name, spec)
        if observation is None and analysis and phase in (Phase.PROGRESSING, Phase.HOLDING) \
                and int(status.get("weight") or 0) > 0:
            observation = Observation(error="no observation this tick")
        inputs = Inputs(
            now=dt.datetime.now(dt.UTC),
            observation=observation if analysis else None,
            canary_available=canary.available,
            canary_revision=canary.revision,
            route=route,
            action=self.pending_action.get(key),
            generation=meta.get("generation"),
        )
        decision = decide(spec, status, inputs)
        # the events go into status with the transition (an outbox): a crash after this write still posts them
        new_status = dict(decision.status)
        outbox = [*(status.get("pendingEvents") or []), *self.kube.outbox_entries(name, decision.events)]
        new_status.pop("pendingEvents", None)
        if outbox:
            new_status["pendingEvents"] = outbox[-OUTBOX_LIMIT:]
        if new_status != status:
            body = await self.kube.patch_status(namespace, name, new_status, status, meta.get("resourceVersion"))
            self._remember(key, body)
        self.pending_action.pop(key, None)
        for event in decision.events:
            metrics.TRANSITIONS.labels(namespace, name, event.reason).inc()
            log.info("%s/%s %s: %s", namespace, name, event.reason, event.message)

        if route is not None and route.weight is not None and route.weight != decision.weight:
            written = await router.write(namespace, spec.routing.name, spec, decision.weight)
            if written.problem:
                log.warning("route of %s/%s: %s", namespace, name, written.problem)
                self.dirty.add(key)
        if outbox:
            posted = [await self.kube.emit(body, entry) for entry in new_status["pendingEvents"]]
            if all(posted):
                body = await self.kube.patch_status(namespace, name, {}, {"pendingEvents": None},
                                                    body["metadata"].get("resourceVersion"))
                self._remember(key, body)
            # else: they stay in status.pendingEvents and the next reconcile posts them
        if decision.verdict is not None:
            metrics.VERDICTS.labels(namespace, name, str(decision.verdict)).inc()
        metrics.publish(namespace, name, decision.status)
        if decision.status.get("phase") in TERMINAL:
            self.pending_action.pop(key, None)

    def _remember(self, key: Key, body: dict[str, Any]) -> None:
        current = self.rollouts.get(key)
        if current is None or _rv(body) >= _rv(current):
            self.rollouts[key] = body
