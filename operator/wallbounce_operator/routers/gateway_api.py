"""Gateway API HTTPRoute: on every rule whose backendRefs name both the stable and the canary
Service, canary = weight and stable = 100 - weight. Other rules and backends are left untouched."""

from __future__ import annotations

import copy
from typing import Any

from ..model import RolloutSpec
from .base import RouteError


def _is_service(ref: dict[str, Any], name: str) -> bool:
    return ref.get("name") == name and ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core")


def _pairs(obj: dict[str, Any], spec: RolloutSpec) -> list[tuple[dict[str, Any], dict[str, Any]]]:
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
        shares = set()
        for stable, canary in pairs:
            s, c = int(stable.get("weight", 1)), int(canary.get("weight", 1))
            shares.add(round(100 * c / (s + c)) if s + c > 0 else 0)
        if len(shares) > 1:
            return -1  # rules disagree: drift, re-asserted by the next write
        return shares.pop()

    def with_weight(self, obj: dict[str, Any], spec: RolloutSpec, weight: int) -> dict[str, Any]:
        new = copy.deepcopy(obj)
        for stable, canary in _pairs(new, spec):
            stable["weight"] = 100 - weight
            canary["weight"] = weight
        return new
