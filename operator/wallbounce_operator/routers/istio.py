"""Istio VirtualService: in the named http routes (all when none are named), the destinations whose
host is the stable or canary Service get 100 - weight and weight."""

from __future__ import annotations

import copy
from typing import Any

from ..model import RolloutSpec
from .base import Pair, RouteError, canary_share, set_share


def _host_is(host: str, service: str, namespace: str) -> bool:
    return host in (service, f"{service}.{namespace}", f"{service}.{namespace}.svc",
                    f"{service}.{namespace}.svc.cluster.local")


def _pairs(obj: dict[str, Any], spec: RolloutSpec) -> list[Pair]:
    namespace = obj["metadata"].get("namespace", "")
    wanted = set(spec.routing.routes)
    pairs = []
    for http in (obj.get("spec") or {}).get("http") or []:
        if wanted and http.get("name") not in wanted:
            continue
        dests = http.get("route") or []
        stable = next((d for d in dests
                       if _host_is((d.get("destination") or {}).get("host", ""), spec.stable.service, namespace)), None)
        canary = next((d for d in dests
                       if _host_is((d.get("destination") or {}).get("host", ""), spec.canary.service, namespace)), None)
        if stable is not None and canary is not None:
            pairs.append((stable, canary))
    return pairs


class Istio:
    group = "networking.istio.io"
    version = "v1"
    plural = "virtualservices"
    kind = "VirtualService"

    def canary_weight(self, obj: dict[str, Any], spec: RolloutSpec) -> int:
        pairs = _pairs(obj, spec)
        if not pairs:
            routes = f" among http routes {sorted(spec.routing.routes)}" if spec.routing.routes else ""
            raise RouteError(f"VirtualService {obj['metadata']['name']} has no http route{routes} with both "
                             f"{spec.stable.service} and {spec.canary.service} as destinations")
        return canary_share(pairs, default_weight=0)

    def with_weight(self, obj: dict[str, Any], spec: RolloutSpec, weight: int) -> dict[str, Any]:
        new = copy.deepcopy(obj)
        set_share(_pairs(new, spec), weight)
        return new
