"""The router protocol and the shared I/O: read a route object (watch-fed cache, else a GET), check that this rollout
owns it (annotation ``wallbounce.dev/rollout: <rollout>``) and that its rules are exactly the stable and canary
backends, read its canary weight, rewrite the weights with optimistic concurrency (replace with the resourceVersion
of a fresh read), and check the reply.

Each mesh only says where its objects live and how weights sit in them (pure functions on dicts): ``pairs`` returns
the (stable, canary) entries of every rule that routes to either backend, or raises ``RouteInvalid`` when such a
rule has anything else in it (a third backend, a backend listed twice, a same-named backend in another namespace).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any, Protocol

from kubernetes import client

from ..informers import Informer, trim_route
from ..model import ROUTE_OWNER_ANNOTATION, RolloutSpec, RouteProblem, RouteState


class RouteError(RuntimeError):
    """The route cannot carry the rollout."""

    problem = RouteProblem.MISSING


class RouteNotFound(RouteError):
    problem = RouteProblem.MISSING


class RouteInvalid(RouteError):
    problem = RouteProblem.INVALID


class RouteNotOwned(RouteError):
    problem = RouteProblem.NOT_OWNED


Pair = tuple[dict[str, Any], dict[str, Any]]  # (stable, canary) entries of one route rule


def canary_share(pairs: list[Pair], default_weight: int) -> int:
    """The canary's percentage; when rules disagree, the largest (the most traffic the canary may get)."""
    shares = []
    for stable, canary in pairs:
        s, c = int(stable.get("weight", default_weight)), int(canary.get("weight", default_weight))
        shares.append(round(100 * c / (s + c)) if s + c > 0 else 0)
    return max(shares)


def set_share(pairs: list[Pair], weight: int) -> None:
    for stable, canary in pairs:
        stable["weight"] = 100 - weight
        canary["weight"] = weight


def exactly_the_pair(entries: list[dict[str, Any]], is_stable: list[bool], is_canary: list[bool],
                     where: str, names: tuple[str, str]) -> Pair:
    """The (stable, canary) of a rule that must route to exactly those two backends, once each."""
    stable = [e for e, s in zip(entries, is_stable, strict=True) if s]
    canary = [e for e, c in zip(entries, is_canary, strict=True) if c]
    others = len(entries) - len(stable) - len(canary)
    if len(stable) != 1 or len(canary) != 1 or others:
        raise RouteInvalid(f"{where} must route to exactly {names[0]} and {names[1]} in the route's namespace, "
                           f"once each (found {len(stable)} × stable, {len(canary)} × canary, {others} other)")
    return stable[0], canary[0]


class Mesh(Protocol):
    group: str
    version: str
    plural: str
    kind: str

    def pairs(self, obj: dict[str, Any], spec: RolloutSpec) -> list[Pair]:
        """The (stable, canary) entries of every rule that routes to either; RouteInvalid when a rule is not
        exactly those two or when there is none."""


class TrafficRouter:
    """Reads (from the watch-fed cache, else a GET) and writes one kind of route through the Kubernetes API
    (blocking calls off the loop)."""

    def __init__(self, api: client.ApiClient, mesh: Mesh) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.mesh = mesh
        self.routes = Informer(trim_route)

    def _get(self, namespace: str, name: str) -> dict[str, Any]:
        m = self.mesh
        try:
            obj: Any = self.objects.get_namespaced_custom_object(m.group, m.version, namespace, m.plural, name)
        except client.ApiException as exc:
            if exc.status == 404:
                raise RouteNotFound(f"{m.kind} {namespace}/{name} not found") from exc
            raise RouteError(f"reading {m.kind} {namespace}/{name}: HTTP {exc.status} {exc.reason}") from exc
        self.routes.store(dict(obj))
        return dict(obj)

    def _owned_pairs(self, obj: dict[str, Any], spec: RolloutSpec, rollout: str) -> list[Pair]:
        meta = obj.get("metadata") or {}
        owner = (meta.get("annotations") or {}).get(ROUTE_OWNER_ANNOTATION)
        if owner != rollout:
            held = f"it names rollout {owner!r}" if owner else "it has no such annotation"
            raise RouteNotOwned(f"{self.mesh.kind} {meta.get('namespace')}/{meta.get('name')} is not owned by this "
                                f"rollout: it needs the annotation {ROUTE_OWNER_ANNOTATION}: {rollout} ({held})")
        return self.mesh.pairs(obj, spec)

    async def read(self, namespace: str, name: str, spec: RolloutSpec, rollout: str) -> RouteState:
        try:
            obj = self.routes.get(namespace, name)
            if obj is None:
                obj = await asyncio.to_thread(self._get, namespace, name)
            return RouteState(canary_share(self._owned_pairs(obj, spec, rollout), self.default_weight))
        except RouteError as exc:
            return RouteState.unusable(exc.problem, str(exc))

    @property
    def default_weight(self) -> int:
        return 1 if self.mesh.kind == "HTTPRoute" else 0  # Gateway API: an unset weight is 1

    async def write(self, namespace: str, name: str, spec: RolloutSpec, rollout: str, weight: int) -> str | None:
        """Set the weights on a fresh read (ownership and rules checked again) and check the API server's reply;
        a concurrent writer (409) is retried once from a fresh read. The problem, or None."""
        m = self.mesh
        for attempt in range(2):
            try:
                obj = await asyncio.to_thread(self._get, namespace, name)
                body = copy.deepcopy(obj)
                set_share(self._owned_pairs(body, spec, rollout), weight)
                stored: Any = await asyncio.to_thread(self.objects.replace_namespaced_custom_object, m.group,
                                                      m.version, namespace, m.plural, name, body)
                self.routes.store(dict(stored))
                break
            except client.ApiException as exc:
                if exc.status == 409 and attempt == 0:
                    continue
                return f"writing {m.kind} {namespace}/{name}: HTTP {exc.status} {exc.reason}"
            except RouteError as exc:
                return str(exc)
        state = await self.read(namespace, name, spec, rollout)
        if state.weight != weight:
            return f"{m.kind} {namespace}/{name} reads {state.weight}% after writing {weight}%"
        return None
