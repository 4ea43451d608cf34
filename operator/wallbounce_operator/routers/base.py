"""The router protocol and the shared I/O: read a route object (watch-fed cache, else a GET), read its
canary weight, rewrite the weights with optimistic concurrency (replace with the resourceVersion of a
fresh read), and check the reply.

Each mesh only says where its objects live and how weights sit in them (pure functions on dicts).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from kubernetes import client

from ..informers import Informer, trim_route
from ..model import RolloutSpec, RouteState


class RouteError(RuntimeError):
    """The route exists but cannot carry the rollout (no rule with both services, write failed…)."""


class RouteNotFound(RouteError):
    pass


Pair = tuple[dict[str, Any], dict[str, Any]]  # (stable, canary) entries of one route rule


def canary_share(pairs: list[Pair], default_weight: int) -> int:
    """The canary's percentage across rules; -1 when the rules disagree (drift, re-asserted by a write)."""
    shares = set()
    for stable, canary in pairs:
        s, c = int(stable.get("weight", default_weight)), int(canary.get("weight", default_weight))
        shares.add(round(100 * c / (s + c)) if s + c > 0 else 0)
    return shares.pop() if len(shares) == 1 else -1


def set_share(pairs: list[Pair], weight: int) -> None:
    for stable, canary in pairs:
        stable["weight"] = 100 - weight
        canary["weight"] = weight


class Mesh(Protocol):
    group: str
    version: str
    plural: str
    kind: str

    def canary_weight(self, obj: dict[str, Any], spec: RolloutSpec) -> int:
        """The canary weight the object carries; RouteError when it has none or its rules disagree."""

    def with_weight(self, obj: dict[str, Any], spec: RolloutSpec, weight: int) -> dict[str, Any]:
        """A copy of the object with canary = weight and stable = 100 - weight."""


class TrafficRouter:
    """Reads (from the watch-fed cache, else a GET) and writes one rollout's route through the Kubernetes API
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

    async def read(self, namespace: str, name: str, spec: RolloutSpec) -> RouteState:
        try:
            obj = self.routes.get(namespace, name)
            if obj is None:
                obj = await asyncio.to_thread(self._get, namespace, name)
            return RouteState(self.mesh.canary_weight(obj, spec))
        except RouteError as exc:
            return RouteState(None, str(exc))

    async def write(self, namespace: str, name: str, spec: RolloutSpec, weight: int) -> RouteState:
        """Set the weights on a fresh read and check the API server's reply; a concurrent writer (409) is
        retried once from a fresh read."""
        m = self.mesh
        for attempt in range(2):
            try:
                obj = await asyncio.to_thread(self._get, namespace, name)
                body = m.with_weight(obj, spec, weight)
                stored: Any = await asyncio.to_thread(self.objects.replace_namespaced_custom_object, m.group,
                                                      m.version, namespace, m.plural, name, body)
                self.routes.store(dict(stored))
                break
            except client.ApiException as exc:
                if exc.status == 409 and attempt == 0:
                    continue
                return RouteState(None, f"writing {m.kind} {namespace}/{name}: HTTP {exc.status} {exc.reason}")
            except RouteError as exc:
                return RouteState(None, str(exc))
        state = await self.read(namespace, name, spec)
        if state.weight is not None and state.weight != weight:
            return RouteState(state.weight,
                              f"{m.kind} {namespace}/{name} reads {state.weight}% after writing {weight}%")
        return state
