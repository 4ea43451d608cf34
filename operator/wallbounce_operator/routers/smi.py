"""SMI TrafficSplit (split.smi-spec.io/v1alpha4): its backends must be exactly the stable and the canary Service;
they get 100 - weight and weight."""

from __future__ import annotations

from typing import Any

from ..model import RolloutSpec
from .base import Pair, exactly_the_pair


class SMI:
    group = "split.smi-spec.io"
    version = "v1alpha4"
    plural = "trafficsplits"
    kind = "TrafficSplit"

    def pairs(self, obj: dict[str, Any], spec: RolloutSpec) -> list[Pair]:
        meta = obj.get("metadata") or {}
        backends = (obj.get("spec") or {}).get("backends") or []
        names = (spec.stable.service, spec.canary.service)
        return [exactly_the_pair(backends, [b.get("service") == names[0] for b in backends],
                                 [b.get("service") == names[1] for b in backends],
                                 f"TrafficSplit {meta.get('namespace')}/{meta.get('name')}", names)]
