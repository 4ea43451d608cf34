"""Gateway API HTTPRoute: on every rule whose backendRefs name both the stable and the canary
Service, canary = weight and stable = 100 - weight. Other rules and backends are left untouched."""

from __future__ import annotations

import copy
from typing import Any

from ..model import RolloutSpec
from .base import Pair, RouteError, canary_share, set_share


def _is_service(ref: dict[str, Any], name: str) -> bool:
    return ref.get("name") == name and ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core")


def _pairs(obj: dict[str, Any], spec: RolloutSpec) -> list[Pair]:
    pairs = []
    for rule in (obj.get("spec") or {}).get("rules") or []:
        refs = rule.get("backendRefs") or []
        stable = next((r for r in refs if _is_service(r, spec.stable.service)), None)
        canary = next((r for r in refs if _is_service(r, spec.canary.service)), None)
        if stable is not None and canary is not None:
            pairs.append((stable, canary))
    return pairs


class GatewayAPI:
    group = "gateway.networking.k8s.io"
    version = "v1"
    plural = "httproutes"
    kind = "HTTPRoute"

    def canary_weight(self, obj: dict[str, Any], spec: RolloutSpec) -> int:
        pairs = _pairs(obj, spec)
        if not pairs:
            raise RouteError(f"HTTPRoute {obj['metadata']['name']} has no rule whose backendRefs name both "
                             f"{spec.stable.service} and {spec.canary.service}")
        return canary_share(pairs, default_weight=1)  # Gateway API: an unset weight is 1

    def with_weight(self, obj: dict[str, Any], spec: RolloutSpec, weight: int) -> dict[str, Any]:
        new = copy.deepcopy(obj)
        set_share(_pairs(new, spec), weight)
        return new
