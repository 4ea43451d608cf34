"""The verdict on one analysis tick, from a phase's gates and limits and what Prometheus observed.

Fail   any rollback limit breached: error rate (lower Wilson bound above the limit, or the raw ratio
       when confidenceLevel is 0), p95 latency above its limit, mean confidence below its limit.
       A hard breach rolls back even below minRequests.
Pass   at least minRequests, observed error ratio at or below the promotion gate, every other gate
       holds, and (confidenceLevel > 0) the upper Wilson bound at or below the rollback limit.
Hold   anything in between (too few requests, or not sure enough).
NoData no requests, or a metric the gates need is missing or NaN.
Error  the metrics source failed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import Observation, PhaseSpec, Verdict
from .stats import wilson_bounds


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    error_rate: float | None = None
    lower: float | None = None
    upper: float | None = None


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def judge(phase: PhaseSpec, obs: Observation, confidence_level: float) -> Judgement:
    if obs.error:
        return Judgement(Verdict.ERROR, f"metrics source failed: {obs.error}")
    n = obs.requests
    if n is None or n < 1:
        return Judgement(Verdict.NO_DATA, "no canary requests in the window")
    k = obs.errors if obs.errors is not None else None
    rate = None if k is None else min(max(k / n, 0.0), 1.0)
    lower = upper = None
    if rate is not None and confidence_level > 0:
        lower, upper = wilson_bounds(k or 0.0, n, confidence_level)

    # Fail: a breach beyond doubt, whatever the request count
    breaches = []
    if rate is not None:
        if confidence_level > 0:
            assert lower is not None
            if lower > phase.rollback_error_rate:
                breaches.append(f"error rate {_pct(rate)} (lower bound {_pct(lower)}) above the rollback "
                                f"limit {_pct(phase.rollback_error_rate)}")
        elif rate > phase.rollback_error_rate:
            breaches.append(f"error rate {_pct(rate)} above the rollback limit {_pct(phase.rollback_error_rate)}")
    if obs.latency_p95 is not None and obs.latency_p95 > phase.rollback_latency_p95:
        breaches.append(f"p95 latency {obs.latency_p95:.3f}s above the rollback limit {phase.rollback_latency_p95:g}s")
    if obs.confidence is not None and obs.confidence < phase.rollback_confidence:
        breaches.append(f"consensus confidence {obs.confidence:.3f} below the rollback limit "
                        f"{phase.rollback_confidence:g}")
    if breaches:
        return Judgement(Verdict.FAIL, "; ".join(breaches), rate, lower, upper)

    missing = [name for name, value in (("error rate", rate), ("p95 latency", obs.latency_p95),
                                        ("consensus confidence", obs.confidence)) if value is None]
    if phase.max_cost_per_request is not None and obs.cost_per_request is None:
        missing.append("cost per request")
    if missing:
        return Judgement(Verdict.NO_DATA, f"no data for {', '.join(missing)}", rate, lower, upper)
    assert rate is not None and obs.latency_p95 is not None and obs.confidence is not None

    if n < phase.min_requests:
        return Judgement(Verdict.HOLD, f"{n:.0f} canary requests in the window, {phase.min_requests} needed",
                         rate, lower, upper)
    holds = []
    if rate > phase.max_error_rate:
        holds.append(f"error rate {_pct(rate)} above the promotion gate {_pct(phase.max_error_rate)}")
    if obs.latency_p95 > phase.max_latency_p95:
        holds.append(f"p95 latency {obs.latency_p95:.3f}s above the promotion gate {phase.max_latency_p95:g}s")
    if obs.confidence < phase.min_confidence:
        holds.append(f"consensus confidence {obs.confidence:.3f} below the promotion gate {phase.min_confidence:g}")
    if (phase.max_cost_per_request is not None and obs.cost_per_request is not None
            and obs.cost_per_request > phase.max_cost_per_request):
        holds.append(f"cost per request ${obs.cost_per_request:.5f} above the gate ${phase.max_cost_per_request:g}")
    if confidence_level > 0 and upper is not None and upper > phase.rollback_error_rate:
        holds.append(f"not yet sure the error rate is below the rollback limit (upper bound {_pct(upper)} > "
                     f"{_pct(phase.rollback_error_rate)})")
    if holds:
        return Judgement(Verdict.HOLD, "; ".join(holds), rate, lower, upper)
    return Judgement(Verdict.PASS, "every promotion gate holds", rate, lower, upper)
