"""Typed views of a WallBounceRollout: the spec as users write it (pydantic, with the CRD's camelCase names and the
tier defaults filled in), the status the operator writes, and the observations and decisions that pass between
observe, decide and act. No I/O here.

``RolloutSpec`` is parsed once per generation of the object; ``RolloutStatus`` is read and written whole (the
engine writes a status only when it differs from the one it read). ``tests/unit/test_model_schema.py`` proves that
these models and ``crds/wallbouncerollouts.yaml`` describe the same fields.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

import durationpy
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

# re-exported: the operator's modules import these names from here
from wallbounce_api import ACTION_ANNOTATION as ACTION_ANNOTATION
from wallbounce_api import FIELD_MANAGER as FIELD_MANAGER
from wallbounce_api import GROUP as GROUP
from wallbounce_api import KIND as KIND
from wallbounce_api import PLURAL as PLURAL
from wallbounce_api import ROLLOUT_ANNOTATION as ROLLOUT_ANNOTATION
from wallbounce_api import VERSION as VERSION
from wallbounce_api import Action as Action
from wallbounce_api import ConditionType as ConditionType
from wallbounce_api import EventReason as EventReason
from wallbounce_api import PauseReason as PauseReason
from wallbounce_api import Phase as Phase
from wallbounce_api import Verdict as Verdict

Reason = EventReason
ROUTE_OWNER_ANNOTATION = ROLLOUT_ANNOTATION
HISTORY_LIMIT = 20

LADDER = frozenset({Phase.PROGRESSING, Phase.HOLDING, Phase.PAUSED, Phase.ROLLING_BACK})
FINISHED = frozenset({Phase.PROMOTED, Phase.ROLLED_BACK, Phase.ABORTED})  # weight 0 until a retry/new revision
STICKY_PAUSES = frozenset({PauseReason.MANUAL, PauseReason.ANALYSIS_ERRORS, PauseReason.ROLLED_BACK})
ROUTE_PAUSES = frozenset({PauseReason.ROUTE_MISSING, PauseReason.ROUTE_NOT_OWNED, PauseReason.ROUTE_INVALID})


# ----- durations and times ------------------------------------------------------------------------


def parse_duration(text: str | int | float) -> float:
    """Seconds in a Go-style duration (``1h30m``, ``500ms``, ``2m``; the semantics of CEL ``duration()``, which
    the CRD validates with); a bare number is seconds."""
    if isinstance(text, int | float):
        return float(text)
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return float(durationpy.from_str(text).total_seconds())
    except Exception as exc:  # durationpy raises several types for malformed text
        raise ValueError(f"not a duration: {text!r}") from exc


def format_time(when: dt.datetime) -> str:
    """RFC 3339 with milliseconds (whole seconds would let a dwell end up to a second early)."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(text: str | dt.datetime | None) -> dt.datetime | None:
    if text is None or text == "":
        return None
    if isinstance(text, dt.datetime):
        return text
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


Seconds = Annotated[float, BeforeValidator(parse_duration)]
Timestamp = Annotated[dt.datetime, PlainSerializer(format_time, return_type=str)]


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True, extra="ignore")


# ----- spec --------------------------------------------------------------------------------------

DEFAULT_LADDER = (1, 2, 10, 20, 35, 50)


def tier_defaults(weight: int) -> tuple[float, float]:
    """(promote maxErrorRate, rollback errorRate) for a weight: conservative up to 10 %, growth below 35 %,
    mature from 35 %."""
    if weight <= 10:
        return 0.002, 0.008
    if weight < 35:
        return 0.005, 0.015
    return 0.015, 0.03


class PromoteGate(_Model):
    max_error_rate: float | None = None
    max_latency_p95: Seconds = 5.0
    min_consensus_confidence: float = 0.7
    max_cost_per_request: float | None = None


class RollbackLimits(_Model):
    error_rate: float | None = None
    latency_p95: Seconds = 10.0
    consensus_confidence: float = 0.6


class RelativeGates(_Model):
    """The canary compared with stable over the same requests' time (0 turns a comparison off)."""

    max_error_rate_ratio: float = 0.0
    max_latency_ratio: float = 0.0  # of the shares slower than the promotion latency gate
    max_confidence_drop: float = 0.0
    max_client_error_rate_ratio: float = 2.0  # a canary answering 4xx to traffic stable serves fails

    def client_only(self) -> RelativeGates:
        return RelativeGates(max_client_error_rate_ratio=self.max_client_error_rate_ratio)


class PhaseSpec(_Model):
    weight: int
    duration: Seconds = 600.0
    min_requests: int = 100
    promote: PromoteGate = PromoteGate()
    rollback: RollbackLimits = RollbackLimits()
    relative: RelativeGates = RelativeGates()

    @model_validator(mode="after")
    def _tier_defaults(self) -> PhaseSpec:
        gate, limit = tier_defaults(self.weight)
        if self.promote.max_error_rate is None:
            object.__setattr__(self, "promote", self.promote.model_copy(update={"max_error_rate": gate}))
        if self.rollback.error_rate is None:
            object.__setattr__(self, "rollback", self.rollback.model_copy(update={"error_rate": limit}))
        return self

    # flat views used by the verdicts
    @property
    def max_error_rate(self) -> float:
        return float(self.promote.max_error_rate or 0.0)

    @property
    def rollback_error_rate(self) -> float:
        return float(self.rollback.error_rate or 0.0)

    @property
    def max_latency_p95(self) -> float:
        return self.promote.max_latency_p95

    @property
    def rollback_latency_p95(self) -> float:
        return self.rollback.latency_p95

    @property
    def min_confidence(self) -> float:
        return self.promote.min_consensus_confidence

    @property
    def rollback_confidence(self) -> float:
        return self.rollback.consensus_confidence

    @property
    def max_cost_per_request(self) -> float | None:
        return self.promote.max_cost_per_request


class Workload(_Model):
    """One side of the rollout: a Deployment and the Service in front of it."""

    deployment: str
    service: str


class GatewayAPIRouting(_Model):
    http_route: str


class IstioDestinationRule(_Model):
    name: str
    stable_subset: str
    canary_subset: str
    host: str | None = None  # default: spec.stable.service


class IstioRouting(_Model):
    virtual_service: str
    routes: tuple[str, ...] = ()
    destination_rule: IstioDestinationRule | None = None


class SMIRouting(_Model):
    traffic_split: str


class TrafficRouting(_Model):
    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")
    istio: IstioRouting | None = None
    smi: SMIRouting | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TrafficRouting:
        if sum(x is not None for x in (self.gateway_api, self.istio, self.smi)) != 1:
            raise ValueError("spec.trafficRouting must set exactly one of gatewayAPI, istio, smi")
        return self

    @property
    def kind(self) -> str:
        return "gatewayAPI" if self.gateway_api else "istio" if self.istio else "smi"

    @property
    def name(self) -> str:
        if self.gateway_api:
            return self.gateway_api.http_route
        if self.istio:
            return self.istio.virtual_service
        assert self.smi is not None
        return self.smi.traffic_split


class PrometheusSource(_Model):
    address: str = ""

    @property
    def url(self) -> str:
        return self.address.rstrip("/")


class Queries(_Model):
    requests: str | None = None
    error_rate: str | None = None
    latency_p95: str | None = None
    consensus_confidence: str | None = None
    cost_per_request: str | None = None


class AnalysisSpec(_Model):
    prometheus: PrometheusSource = PrometheusSource()
    interval: Seconds = 30.0
    window: str = "2m"
    confidence_level: float = 0.95
    error_limit: int = 5
    queries: Queries = Queries()

    @property
    def window_seconds(self) -> float:
        return parse_duration(self.window)


class Completion(_Model):
    promote_stable: bool = False
    # environment variables whose values differ between the stable and canary templates by design: ignored when
    # the two templates are compared, kept as stable has them when the canary's template is copied into stable
    variant_env: tuple[str, ...] = ("WALLBOUNCE_VARIANT",)


def _default_phases() -> tuple[PhaseSpec, ...]:
    return tuple(PhaseSpec(weight=w) for w in DEFAULT_LADDER)


#: ladders in use, each kept once: most rollouts of a cluster share a few (a chart's), and a ladder is most of a
#: parsed spec's size (frozen models: sharing them is safe); the oldest is let go beyond LADDERS_KEPT
_LADDERS: dict[tuple[PhaseSpec, ...], tuple[PhaseSpec, ...]] = {}
LADDERS_KEPT = 1024


def _shared_ladder(phases: tuple[PhaseSpec, ...]) -> tuple[PhaseSpec, ...]:
    kept = _LADDERS.get(phases)
    if kept is None:
        if len(_LADDERS) >= LADDERS_KEPT:
            del _LADDERS[next(iter(_LADDERS))]
        kept = _LADDERS[phases] = phases
    return kept


class RolloutSpec(_Model):
    stable: Workload
    canary: Workload
    traffic_routing: TrafficRouting
    analysis: AnalysisSpec = AnalysisSpec()
    phases: tuple[PhaseSpec, ...] = Field(default_factory=_default_phases)
    rollback_strategy: Literal["Emergency", "Gradual"] = "Emergency"
    paused: bool = False
    progress_deadline: Seconds = 300.0
    completion: Completion = Completion()

    @model_validator(mode="after")
    def _non_empty_ladder(self) -> RolloutSpec:
        if not self.phases:
            raise ValueError("spec.phases must not be empty")
        object.__setattr__(self, "phases", _shared_ladder(self.phases))
        return self

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RolloutSpec:
        """The spec of an object as stored (ValueError on anything the CRD should have refused)."""
        try:
            return cls.model_validate(raw)
        except Exception as exc:  # pydantic.ValidationError is a ValueError; keep one type for callers
            raise ValueError(str(exc)) from exc

    # short names used all over the operator
    @property
    def routing(self) -> TrafficRouting:
        return self.traffic_routing

    @property
    def prometheus(self) -> str:
        return self.analysis.prometheus.url

    @property
    def interval(self) -> float:
        return self.analysis.interval

    @property
    def window(self) -> float:
        return self.analysis.window_seconds

    @property
    def window_text(self) -> str:
        return self.analysis.window

    @property
    def confidence_level(self) -> float:
        return self.analysis.confidence_level

    @property
    def error_limit(self) -> int:
        return self.analysis.error_limit

    @property
    def queries(self) -> Queries:
        return self.analysis.queries

    def weight_of(self, step: int) -> int:
        """The weight of a 1-based step (0 for step 0)."""
        return self.phases[step - 1].weight if step >= 1 else 0


# ----- evidence ----------------------------------------------------------------------------------


class Counts(_Model):
    """One variant's requests over one span of time, from the counters of the metrics contract (``increase()``):
    sums of real numbers (Prometheus extrapolates), never negative."""

    served: float = 0.0  # answered or failed by the service: success + error + low_consensus
    errors: float = 0.0  # outcome="error": the service's fault
    client_errors: float = 0.0  # outcome="client_error": 4xx
    timed: float = 0.0  # requests in the duration histogram
    slow_gate: float = 0.0  # of those, slower than the promotion latency gate (counted conservatively)
    slow_limit: float = 0.0  # slower than the rollback latency limit (counted conservatively)
    scored: float = 0.0  # answers with a consensus confidence
    confidence_sum: float = 0.0
    confidence_squares: float = 0.0  # Σ c², from the confidence histogram's bucket mid-points
    cost: float = 0.0
    latency_p95: float | None = None  # for display: from the buckets, as histogram_quantile reads them

    def __add__(self, other: Counts) -> Counts:
        fields = {k: getattr(self, k) + getattr(other, k) for k in _SUMMED}
        return Counts(**fields, latency_p95=other.latency_p95)

    @property
    def requests(self) -> float:
        return self.served + self.client_errors

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.served if self.served > 0 else None

    @property
    def confidence(self) -> float | None:
        return self.confidence_sum / self.scored if self.scored > 0 else None

    @property
    def cost_per_request(self) -> float | None:
        return self.cost / self.served if self.served > 0 else None


_SUMMED = ("served", "errors", "client_errors", "timed", "slow_gate", "slow_limit", "scored", "confidence_sum",
           "confidence_squares", "cost")


class Evidence(_Model):
    """What the current revision served since its step began (the analysis intervals wholly inside it), with the
    stable variant over the same intervals: promotion is judged on this, never on a window reaching back into the
    previous weight or revision."""

    since: Timestamp
    until: Timestamp
    canary: Counts = Counts()
    stable: Counts = Counts()
    looks: int = 0  # analysis looks at this evidence (the cumulative rollback test spends its error rate over them)
    promotion_looks: int = 0  # looks after the dwell (the promotion test spends its error rate over them)


# ----- status ------------------------------------------------------------------------------------


class Condition(_Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: Timestamp | None = None
    observed_generation: int | None = None


class AnalysisStatus(_Model):
    time: Timestamp | None = None
    verdict: str | None = None
    reason: str | None = None
    requests: float | None = None
    error_rate: float | None = None
    error_rate_lower: float | None = None
    error_rate_upper: float | None = None
    latency_p95: float | None = None
    consensus_confidence: float | None = None
    cost_per_request: float | None = None
    shared_breach: bool | None = None  # canary and stable breached together: held, not blamed


class HistoryEntry(_Model):
    time: Timestamp
    from_: str = Field(default="", alias="from")
    to: str
    step: int
    weight: int
    reason: str
    message: str = ""


class PendingEvent(_Model):
    name: str
    reason: str
    time: Timestamp | None = None
    message: str = ""
    type: Literal["Normal", "Warning"] = "Normal"


class LastAction(_Model):
    """The last action annotation the operator consumed (in the same status write that applied it)."""

    action: str
    seq: int
    time: Timestamp
    result: Literal["Applied", "Ignored"]
    message: str = ""
    annotation_cleared: bool = False


class RolloutStatus(_Model):
    model_config = ConfigDict(frozen=False)

    phase: Phase | None = None
    step: int = 1
    steps: int | None = None
    weight: int = 0  # what the route carries (read back), never what we merely asked for
    desired_weight: int = 0  # what the operator wants the route to carry
    step_started_at: Timestamp | None = None  # when the route first carried this step's weight (dwell start)
    canary_revision: str | None = None
    pause_reason: PauseReason | None = None  # the first of pauseReasons (for display)
    pause_reasons: tuple[PauseReason, ...] = ()
    consecutive_errors: int = 0
    holding_since: Timestamp | None = None
    unavailable_since: Timestamp | None = None  # the canary's current revision has had no available replica
    rollback_step_at: Timestamp | None = None  # Gradual: when the last rung down was taken
    route_error: str | None = None  # the last route write failed with this (cleared once the route carries it)
    last_analysis_at: Timestamp | None = None
    observed_generation: int | None = None
    message: str = ""
    analysis: AnalysisStatus | None = None
    evidence: Evidence | None = None
    conditions: tuple[Condition, ...] = ()
    last_action: LastAction | None = None
    pending_events: tuple[PendingEvent, ...] = ()
    history: tuple[HistoryEntry, ...] = ()

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> RolloutStatus:
        """A stored status; fields this operator does not know are dropped, and so is a field it cannot read (a
        hand-edited value), keeping every other one."""
        data = dict(raw or {})
        for _ in range(len(data) + 1):
            try:
                return cls.model_validate(data)
            except ValidationError as exc:
                bad = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
                if not bad & data.keys():
                    break
                for key in bad:
                    data.pop(key, None)
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=False)

    def condition(self, ctype: str) -> Condition | None:
        return next((c for c in self.conditions if c.type == ctype), None)


# ----- observations and decisions ----------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """What Prometheus said this tick about the canary's current revision (and stable): the sliding ``window``
    (the guard), and — on an analysis tick — the last interval's increase (the step's evidence grows by it)."""

    window: Counts | None = None
    stable_window: Counts | None = None
    increase: Counts | None = None
    stable_increase: Counts | None = None
    span: tuple[dt.datetime, dt.datetime] | None = None  # [start, end] of the increase
    error: str | None = None  # the metrics source failed (Prometheus down, bad answer, timeout, refused address)


class RouteProblem(StrEnum):
    MISSING = "RouteMissing"
    NOT_OWNED = "RouteNotOwned"
    INVALID = "RouteInvalid"


@dataclass(frozen=True)
class RouteState:
    """The route as read just now: its canary weight, or why it cannot be used."""

    weight: int | None  # None when missing/unusable
    message: str | None = None  # e.g. "HTTPRoute llm/techsapo not found"
    problem: RouteProblem | None = None

    @classmethod
    def unusable(cls, problem: RouteProblem, message: str) -> RouteState:
        return cls(None, message, problem)


@dataclass(frozen=True)
class WorkloadState:
    """A Deployment as the operator sees it: its current revision (the pod-template-hash of the ReplicaSet whose
    revision annotation equals the Deployment's) and whether that revision has an available replica."""

    found: bool = True
    revision: str | None = None  # None: unknown (no current ReplicaSet yet)
    available: bool = False
    deadline_exceeded: bool = False  # the Deployment reports ProgressDeadlineExceeded
    template_key: str | None = None  # the pod template, normalised for comparing stable with canary
    message: str = ""


@dataclass(frozen=True)
class Inputs:
    """Everything decide() may look at besides spec and status."""

    now: dt.datetime
    observation: Observation | None = None  # None: not an analysis tick
    canary: WorkloadState = WorkloadState(revision="r1", available=True)
    stable: WorkloadState | None = None  # None: not read (no convergence/promotion checks)
    route: RouteState | None = None  # None: not read this tick
    route_write_error: str | None = None  # the last route write failed with this
    action: str | None = None  # the action annotation's value, when present
    generation: int | None = None
    source_refused: str | None = None  # the analysis source is not allowed by the operator


@dataclass(frozen=True)
class Event:
    reason: str
    message: str
    type: str = "Normal"  # or Warning


@dataclass
class Decision:
    status: RolloutStatus  # the complete new status
    weight: int  # the canary weight the route must carry
    events: list[Event] = field(default_factory=list)
    verdict: Verdict | None = None
    clear_action: bool = False  # the action annotation is recorded in status: remove it after the status write
    apply_stable_template: bool = False  # copy the canary's pod template into the stable Deployment
