"""Typed views of a WallBounceRollout: the spec as users write it (with the seed's tier defaults
filled in), the status the operator writes, and the observations and decisions that pass between
observe, decide and act. No I/O here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

# re-exported: the operator's modules import these names from here
from wallbounce_api import ACTION_ANNOTATION as ACTION_ANNOTATION
from wallbounce_api import GROUP as GROUP
from wallbounce_api import KIND as KIND
from wallbounce_api import PLURAL as PLURAL
from wallbounce_api import VERSION as VERSION
from wallbounce_api import Action as Action
from wallbounce_api import PauseReason as PauseReason
from wallbounce_api import Phase as Phase
from wallbounce_api import Verdict as Verdict

HISTORY_LIMIT = 20

TERMINAL = frozenset({Phase.COMPLETED, Phase.ROLLED_BACK, Phase.ABORTED})


# ----- durations ---------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | int | float) -> float:
    """Seconds in a Go-style duration (``1h30m``, ``500ms``, ``2m``); a bare number is seconds."""
    if isinstance(text, int | float):
        return float(text)
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"not a duration: {text!r}") from None
    return total


def format_time(when: dt.datetime) -> str:
    """RFC 3339 with milliseconds (whole seconds would let a dwell end up to a second early)."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# ----- spec --------------------------------------------------------------------------------------

DEFAULT_LADDER = (1, 2, 10, 20, 35, 50)


def tier_defaults(weight: int) -> tuple[float, float]:
    """(promote maxErrorRate, rollback errorRate) for a weight, from the seed's three tiers."""
    if weight <= 10:
        return 0.002, 0.008
    if weight < 35:
        return 0.005, 0.015
    return 0.015, 0.03


@dataclass(frozen=True)
class PhaseSpec:
    weight: int
    duration: float  # seconds
    min_requests: int
    max_error_rate: float
    max_latency_p95: float
    min_confidence: float
    max_cost_per_request: float | None
    rollback_error_rate: float
    rollback_latency_p95: float
    rollback_confidence: float

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PhaseSpec:
        weight = int(raw["weight"])
        promote = raw.get("promote") or {}
        rollback = raw.get("rollback") or {}
        gate, limit = tier_defaults(weight)
        cost = promote.get("maxCostPerRequest")
        return cls(
            weight=weight,
            duration=parse_duration(raw.get("duration", "10m")),
            min_requests=int(raw.get("minRequests", 100)),
            max_error_rate=float(promote.get("maxErrorRate", gate)),
            max_latency_p95=parse_duration(promote.get("maxLatencyP95", "5s")),
            min_confidence=float(promote.get("minConsensusConfidence", 0.7)),
            max_cost_per_request=None if cost is None else float(cost),
            rollback_error_rate=float(rollback.get("errorRate", limit)),
            rollback_latency_p95=parse_duration(rollback.get("latencyP95", "10s")),
            rollback_confidence=float(rollback.get("consensusConfidence", 0.6)),
        )


@dataclass(frozen=True)
class Target:
    deployment: str
    service: str


@dataclass(frozen=True)
class Routing:
    kind: str  # gatewayAPI | istio | smi
    name: str
    routes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Queries:
    requests: str | None = None
    error_rate: str | None = None
    latency_p95: str | None = None
    consensus_confidence: str | None = None
    cost_per_request: str | None = None

    def any(self) -> bool:
        return any((self.requests, self.error_rate, self.latency_p95, self.consensus_confidence,
                    self.cost_per_request))


@dataclass(frozen=True)
class RolloutSpec:
    stable: Target
    canary: Target
    routing: Routing
    prometheus: str
    interval: float
    window: float
    window_text: str
    confidence_level: float
    error_limit: int
    queries: Queries
    phases: tuple[PhaseSpec, ...]
    rollback_strategy: str = "Emergency"
    paused: bool = False

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> RolloutSpec:
        routing_raw = spec.get("trafficRouting") or {}
        if "gatewayAPI" in routing_raw:
            routing = Routing("gatewayAPI", routing_raw["gatewayAPI"]["httpRoute"])
        elif "istio" in routing_raw:
            istio = routing_raw["istio"]
            routing = Routing("istio", istio["virtualService"], tuple(istio.get("routes") or ()))
        elif "smi" in routing_raw:
            routing = Routing("smi", routing_raw["smi"]["trafficSplit"])
        else:
            raise ValueError("spec.trafficRouting names no router")
        analysis = spec.get("analysis") or {}
        q = analysis.get("queries") or {}
        phases_raw = spec.get("phases") or [{"weight": w} for w in DEFAULT_LADDER]
        window_text = str(analysis.get("window", "2m"))
        return cls(
            stable=Target(spec["stable"]["deployment"], spec["stable"]["service"]),
            canary=Target(spec["canary"]["deployment"], spec["canary"]["service"]),
            routing=routing,
            prometheus=str((analysis.get("prometheus") or {}).get("address", "")).rstrip("/"),
            interval=parse_duration(analysis.get("interval", "30s")),
            window=parse_duration(window_text),
            window_text=window_text,
            confidence_level=float(analysis.get("confidenceLevel", 0.95)),
            error_limit=int(analysis.get("errorLimit", 5)),
            queries=Queries(q.get("requests"), q.get("errorRate"), q.get("latencyP95"),
                            q.get("consensusConfidence"), q.get("costPerRequest")),
            phases=tuple(PhaseSpec.from_dict(p) for p in phases_raw),
            rollback_strategy=str(spec.get("rollbackStrategy", "Emergency")),
            paused=bool(spec.get("paused", False)),
        )


# ----- observations and decisions ----------------------------------------------------------------


def _clean(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return float(value)


@dataclass(frozen=True)
class Observation:
    """What Prometheus said about the canary over the window. ``None`` = no sample (or NaN)."""

    requests: float | None = None
    errors: float | None = None
    latency_p95: float | None = None
    confidence: float | None = None
    cost_per_request: float | None = None
    error: str | None = None  # the metrics source failed (Prometheus down, bad answer, timeout)

    def __post_init__(self) -> None:
        for name in ("requests", "errors", "latency_p95", "confidence", "cost_per_request"):
            object.__setattr__(self, name, _clean(getattr(self, name)))


@dataclass(frozen=True)
class RouteState:
    """The route as read just now: its canary weight, or why it cannot be used."""

    weight: int | None  # None when missing/unusable
    problem: str | None = None  # e.g. "HTTPRoute llm/techsapo not found"


@dataclass(frozen=True)
class Inputs:
    """Everything decide() may look at besides spec and status."""

    now: dt.datetime
    observation: Observation | None = None  # None: not an analysis tick
    canary_available: bool = True
    canary_revision: str | None = None
    route: RouteState | None = None  # None: not read this tick
    action: Action | str | None = None
    generation: int | None = None


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: str = "Normal"  # or Warning


@dataclass
class Decision:
    status: dict[str, Any]  # the complete new status
    weight: int  # the canary weight the route must carry
    events: list[Event] = field(default_factory=list)
    verdict: Verdict | None = None
    action_handled: bool = False  # the action annotation was consumed
