"""SMI TrafficSplit (split.smi-spec.io/v1alpha4): the stable and canary backends get 100 - weight and weight."""

from __future__ import annotations

import copy
from typing import Any

from ..model import RolloutSpec
from .base import RouteError, canary_share, set_share


def _backends(obj: dict[str, Any], spec: RolloutSpec) -> tuple[dict[str, Any], dict[str, Any]]:
    backends = (obj.get("spec") or {}).get("backends") or []
    stable = next((b for b in backends if b.get("service") == spec.stable.service), None)
    canary = next((b for b in backends if b.get("service") == spec.canary.service), None)
    if stable is None or canary is None:
        raise RouteError(f"TrafficSplit {obj['metadata']['name']} does not list both {spec.stable.service} and "
                         f"{spec.canary.service} as backends")
    return stable, canary


class SMI:
    group = "split.smi-spec.io"
    version = "v1alpha4"
    plural = "trafficsplits"
    kind = "TrafficSplit"

    def canary_weight(self, obj: dict[str, Any], spec: RolloutSpec) -> int:
        return canary_share([_backends(obj, spec)], default_weight=0)

    def with_weight(self, obj: dict[str, Any], spec: RolloutSpec, weight: int) -> dict[str, Any]:
        new = copy.deepcopy(obj)
        set_share([_backends(new, spec)], weight)
        return new
