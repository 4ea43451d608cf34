"""Gateway API HTTPRoute: every rule that routes to the stable or the canary Service must route to exactly those two
(once each, in the route's namespace); on those rules canary = weight and stable = 100 - weight. Rules that route to
neither are left untouched."""

from __future__ import annotations

from typing import Any

from ..model import RolloutSpec
from .base import Pair, RouteInvalid, exactly_the_pair


def _service(ref: dict[str, Any]) -> bool:
    return ref.get("kind", "Service") == "Service" and ref.get("group", "") in ("", "core")


def _named(ref: dict[str, Any], name: str, namespace: str) -> bool:
    return _service(ref) and ref.get("name") == name and ref.get("namespace", namespace) == namespace


class GatewayAPI:
    group = "gateway.networking.k8s.io"
    version = "v1"
    plural = "httproutes"
    kind = "HTTPRoute"

    def pairs(self, obj: dict[str, Any], spec: RolloutSpec) -> list[Pair]:
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace", ""))
        names = (spec.stable.service, spec.canary.service)
        pairs = []
        for i, rule in enumerate((obj.get("spec") or {}).get("rules") or []):
            refs = rule.get("backendRefs") or []
            if not any(_service(r) and r.get("name") in names for r in refs):
                continue
            pairs.append(exactly_the_pair(refs, [_named(r, names[0], namespace) for r in refs],
                                          [_named(r, names[1], namespace) for r in refs],
                                          f"HTTPRoute {namespace}/{meta.get('name')} rule {i}", names))
        if not pairs:
            raise RouteInvalid(f"HTTPRoute {namespace}/{meta.get('name')} has no rule whose backendRefs are "
                               f"{names[0]} and {names[1]}")
        return pairs
