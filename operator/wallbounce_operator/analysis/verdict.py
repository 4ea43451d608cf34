"""The verdict on the canary's current revision, from a step's gates and limits and what Prometheus observed.

Three tests, each on its own evidence (``stats`` has the bounds and the spending):

**The guard** (every look, also between analysis intervals) — on the sliding ``window``: a rollback limit breached
beyond doubt (lower bound at z = 4 above it): the error rate; the share of requests slower than
``rollback.latencyP95`` above 5 % (p95 above the limit); the mean confidence's upper bound below
``rollback.consensusConfidence``; the share of 4xx answers significantly above ``relative.maxClientErrorRateRatio``
× stable's. When stable breaches the same limit and the canary is not significantly worse than stable, the
verdict is Hold (a shared cause: a provider outage), not Fail.

**The cumulative rollback test** (each analysis look) — on the step's evidence (what the current revision served
since its step began): Fail when the error rate is above √(gate · limit) (0.4 % at the 1 % step), the share slower
than the latency limit above 2.5 %, or the mean confidence below the middle of the limit and the gate (0.65),
at the level ``2·(1 − confidenceLevel)`` spent over the step's looks; and the relative gates the step enables.

**The promotion test** (each look after the dwell) — on the step's evidence: Pass when there are ``minRequests``
requests, the observed values meet every gate, and the bounds rule out at the level ``1 − confidenceLevel`` spent
over the looks: an error rate of min(2 × gate, limit), more than 10 % of requests slower than the latency gate, a
mean confidence under the middle of the limit and the gate.

``confidenceLevel: 0`` compares raw ratios instead (no bounds). NoData: no canary requests, or a metric the gates
need has no series. Error: the metrics source failed.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from statistics import NormalDist

from ..model import Counts, Evidence, Observation, PhaseSpec, Verdict
from .stats import (
    GUARD_Z,
    above,
    at_least,
    at_most,
    mean_below,
    mean_bounds,
    promotion_alpha,
    rollback_alpha,
    wilson,
    z_one_sided,
    z_score,
)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
GUARD_ALPHA = 1 - NormalDist().cdf(GUARD_Z)  # 3.2·10⁻⁵ per guard look
SLOW_SHARE = 0.05  # p95 above a latency ⟺ more than 5 % of requests slower than it
SLOW_SHARE_BAD = 0.10  # the promotion test rules out this share slower than the gate
SLOW_SHARE_ROLLBACK = 0.025  # the cumulative rollback test: this share slower than the limit, beyond doubt


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    promotable: bool = False  # the promotion test passed (only after the dwell)
    shared_breach: bool = False  # canary and stable breach together: held, not blamed
    error_rate: float | None = None  # of the window
    lower: float | None = None
    upper: float | None = None


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _rollback_rate(phase: PhaseSpec) -> float:
    gate, limit = phase.max_error_rate, phase.rollback_error_rate
    return math.sqrt(gate * limit) if gate > 0 else limit / 4


def _bad_rate(phase: PhaseSpec) -> float:
    gate, limit = phase.max_error_rate, phase.rollback_error_rate
    return min(2 * gate, limit) if gate > 0 else limit / 4


def _confidence_middle(phase: PhaseSpec) -> float:
    return (phase.rollback_confidence + phase.min_confidence) / 2


# ----- the guard ---------------------------------------------------------------------------------------


def _breaches(phase: PhaseSpec, c: Counts, z: float | None) -> list[str]:
    """Rollback limits ``c`` breaches: beyond doubt at quantile ``z``, or by its raw values when z is None."""
    out = []
    rate = c.error_rate
    alpha = GUARD_ALPHA
    if rate is not None and (rate > phase.rollback_error_rate if z is None
                             else at_least(c.errors, c.served, phase.rollback_error_rate) <= alpha):
        out.append(f"error rate {_pct(rate)} of {c.served:.0f} requests above the rollback limit "
                   f"{_pct(phase.rollback_error_rate)} beyond doubt")
    if c.timed > 0:
        share = c.slow_limit / c.timed
        if share > SLOW_SHARE if z is None else at_least(c.slow_limit, c.timed, SLOW_SHARE) <= alpha:
            out.append(f"{_pct(share)} of {c.timed:.0f} requests slower than the rollback limit "
                       f"{phase.rollback_latency_p95:g}s: p95 above it beyond doubt")
    mean = c.confidence
    if mean is not None:
        high = mean if z is None else mean_bounds(c.confidence_sum, c.confidence_squares, c.scored, z)[1]
        if high < phase.rollback_confidence:
            out.append(f"consensus confidence {mean:.3f} (upper bound {high:.3f}) below the rollback limit "
                       f"{phase.rollback_confidence:g}")
    return out


def _worse(canary: Counts, stable: Counts, z: float) -> bool:
    """Is the canary significantly worse than stable on any limited metric?"""
    return (above(canary.errors, canary.served, stable.errors, stable.served, 1.0, z)
            or above(canary.slow_limit, canary.timed, stable.slow_limit, stable.timed, 1.0, z)
            or mean_below(canary.confidence_sum, canary.confidence_squares, canary.scored, stable.confidence_sum,
                          stable.confidence_squares, stable.scored, 0.0, z))


def _relative_failures(phase: PhaseSpec, canary: Counts, stable: Counts, z: float) -> list[str]:
    rel = phase.relative
    out = []
    if rel.max_client_error_rate_ratio > 0 and above(
            canary.client_errors, canary.requests, stable.client_errors, stable.requests,
            rel.max_client_error_rate_ratio, z):
        mine, theirs = canary.client_errors / max(canary.requests, 1), stable.client_errors / max(stable.requests, 1)
        out.append(f"4xx share {_pct(mine)} significantly above {rel.max_client_error_rate_ratio:g} × stable's "
                   f"{_pct(theirs)}")
    if rel.max_error_rate_ratio > 0 and above(canary.errors, canary.served, stable.errors, stable.served,
                                                      rel.max_error_rate_ratio, z):
        out.append(f"error rate significantly above {rel.max_error_rate_ratio:g} × stable's")
    if rel.max_latency_ratio > 0 and above(canary.slow_gate, canary.timed, stable.slow_gate, stable.timed,
                                                   rel.max_latency_ratio, z):
        out.append(f"share slower than {phase.max_latency_p95:g}s significantly above "
                   f"{rel.max_latency_ratio:g} × stable's")
    if rel.max_confidence_drop > 0 and mean_below(
            canary.confidence_sum, canary.confidence_squares, canary.scored, stable.confidence_sum,
            stable.confidence_squares, stable.scored, rel.max_confidence_drop, z):
        out.append(f"mean confidence significantly more than {rel.max_confidence_drop:g} below stable's")
    return out


def guard(phase: PhaseSpec, window: Counts, stable: Counts | None, confidence_level: float) -> Judgement | None:
    """A hard breach on the sliding window: Fail, or Hold when stable breaches too; None when there is none."""
    z = GUARD_Z if confidence_level > 0 else None
    breaches = _breaches(phase, window, z)
    if stable is not None and stable.requests > 0:
        breaches += _relative_failures(phase.model_copy(update={"relative": phase.relative.client_only()}),
                                       window, stable, GUARD_Z)
    if not breaches:
        return None
    reason = "; ".join(breaches)
    if stable is not None and _breaches(phase, stable, z) and not _worse(window, stable, GUARD_Z):
        return Judgement(Verdict.HOLD, f"canary and stable breach together ({reason}; stable too): a shared cause, "
                                       "not the canary — holding", shared_breach=True)
    return Judgement(Verdict.FAIL, reason)


# ----- the step's evidence -------------------------------------------------------------------------------


def _cumulative_failures(phase: PhaseSpec, ev: Evidence, alpha: float) -> list[str]:
    level = rollback_alpha(alpha, ev.looks)
    c, z = ev.canary, z_one_sided(level)
    out = []
    limit = _rollback_rate(phase)
    if c.served > 0 and (p := at_least(c.errors, c.served, limit)) <= level:
        out.append(f"error rate {_pct(c.errors / c.served)} of {c.served:.0f} requests since the step began: above "
                   f"{_pct(limit)} (P = {p:.2g} at {_pct(limit)})")
    if c.timed > 0 and (p := at_least(c.slow_limit, c.timed, SLOW_SHARE_ROLLBACK)) <= level:
        out.append(f"{_pct(c.slow_limit / c.timed)} of {c.timed:.0f} requests slower than "
                   f"{phase.rollback_latency_p95:g}s since the step began: above {_pct(SLOW_SHARE_ROLLBACK)} "
                   f"(P = {p:.2g})")
    middle = _confidence_middle(phase)
    if c.confidence is not None and (high := mean_bounds(c.confidence_sum, c.confidence_squares, c.scored, z)[1]) \
            < middle:
        out.append(f"mean confidence {c.confidence:.3f} since the step began (upper bound {high:.3f}) below {middle:g}")
    if ev.stable.requests > 0:
        out += _relative_failures(phase, c, ev.stable, z)
    return out


def _missing(phase: PhaseSpec, c: Counts) -> list[str]:
    missing = []
    if c.timed <= 0:
        missing.append("latency")
    if c.scored <= 0:
        missing.append("consensus confidence")
    if phase.max_cost_per_request is not None and c.cost <= 0 and c.served > 0:
        missing.append("cost")
    return missing


def _gate_misses(phase: PhaseSpec, c: Counts) -> list[str]:
    """The promotion gates the observed values miss (no statistics)."""
    out = []
    if c.served < phase.min_requests:
        out.append(f"{c.served:.0f} canary requests, {phase.min_requests} needed")
    rate = c.error_rate or 0.0
    if rate > phase.max_error_rate:
        out.append(f"error rate {_pct(rate)} above the gate {_pct(phase.max_error_rate)}")
    if c.timed > 0 and c.slow_gate / c.timed > SLOW_SHARE:
        out.append(f"p95 above the gate {phase.max_latency_p95:g}s ({_pct(c.slow_gate / c.timed)} slower)")
    if c.confidence is not None and c.confidence < phase.min_confidence:
        out.append(f"consensus confidence {c.confidence:.3f} below the gate {phase.min_confidence:g}")
    cost = c.cost_per_request
    if phase.max_cost_per_request is not None and cost is not None and cost > phase.max_cost_per_request:
        out.append(f"cost per request ${cost:.5f} above the gate ${phase.max_cost_per_request:g}")
    return out


def _doubts(phase: PhaseSpec, ev: Evidence, alpha: float) -> list[str]:
    """What the promotion test cannot yet rule out, at this look's share of ``alpha``."""
    level = promotion_alpha(alpha, ev.promotion_looks)
    c, z = ev.canary, z_one_sided(level)
    out = []
    bad = _bad_rate(phase)
    if (p := at_most(c.errors, c.served, bad)) > level:
        out.append(f"an error rate of {_pct(bad)} is not ruled out yet ({c.errors:.0f} errors in {c.served:.0f} "
                   f"requests: P = {p:.2g} at {_pct(bad)}, {level:.2g} needed)")
    if c.timed > 0 and (p := at_most(c.slow_gate, c.timed, SLOW_SHARE_BAD)) > level:
        out.append(f"{_pct(SLOW_SHARE_BAD)} of requests slower than {phase.max_latency_p95:g}s is not ruled out yet "
                   f"(P = {p:.2g})")
    middle = _confidence_middle(phase)
    if (low := mean_bounds(c.confidence_sum, c.confidence_squares, c.scored, z)[0]) <= middle:
        out.append(f"a mean confidence of {middle:g} is not ruled out yet (lower bound {low:.3f})")
    return out


def judge(phase: PhaseSpec, obs: Observation, evidence: Evidence | None, dwell_over: bool,
          confidence_level: float) -> Judgement | None:
    """The verdict of one look; None for a guard-only look (no interval closed) that found no breach."""
    if obs.error:
        return Judgement(Verdict.ERROR, f"metrics source failed: {obs.error}")
    window = obs.window or Counts()
    rate = window.error_rate
    lower = upper = None
    if rate is not None and confidence_level > 0:
        lower, upper = wilson(window.errors, window.served, z_score(confidence_level))

    def out(verdict: Verdict, reason: str, *, promotable: bool = False, shared: bool = False) -> Judgement:
        return Judgement(verdict, reason, promotable, shared, rate, lower, upper)

    if window.requests > 0:
        hard = guard(phase, window, obs.stable_window, confidence_level)
        if hard is not None:
            return out(hard.verdict, hard.reason, shared=hard.shared_breach)
    if obs.increase is None:
        return None
    if window.requests <= 0:
        return out(Verdict.NO_DATA, "no canary requests in the window")
    ev = evidence or Evidence(since=EPOCH, until=EPOCH)
    c = ev.canary
    alpha = 1 - confidence_level
    if confidence_level > 0 and ev.looks > 0:
        failures = _cumulative_failures(phase, ev, 2 * alpha)
        if failures:
            return out(Verdict.FAIL, "; ".join(failures))
    missing = _missing(phase, c if c.served > 0 else window)
    if missing:
        return out(Verdict.NO_DATA, f"no data for {', '.join(missing)}")
    if not dwell_over:
        misses = _gate_misses(phase.model_copy(update={"min_requests": 0}), window)
        if misses:
            return out(Verdict.HOLD, "; ".join(misses))
        return out(Verdict.PASS, "passing so far")
    misses = _gate_misses(phase, c)
    if misses:
        return out(Verdict.HOLD, "since the step began: " + "; ".join(misses))
    doubts = _doubts(phase, ev, alpha) if confidence_level > 0 else []
    if doubts:
        return out(Verdict.HOLD, "; ".join(doubts))
    return out(Verdict.PASS, "every promotion gate holds on the step's evidence", promotable=True)
