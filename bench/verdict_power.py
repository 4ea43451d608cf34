"""How often a canary is promoted or rolled back, by its true error rate, latency or confidence: a Monte Carlo of the
first ladder step through the real ``decide()`` (route read-back, dwell, evidence, guard and all), with binomial
traffic.

    python bench/verdict_power.py [--runs 2000] [--per-window 1000] [--interval 30] [--dwell 600] [--horizon 3600]

Each run starts when the route carries the step's weight; every analysis interval the canary serves a Poisson
number of requests (``--per-window`` per 2-minute window) whose errors are binomial at the true rate, whose
latencies are log-normal (σ 0.5) with the true p95, and whose confidences are Beta-distributed (concentration 8)
around the true mean; stable serves healthy traffic beside it. A run ends at the first promotion, the first
rollback or the horizon. The table gives, per row, the share promoted and rolled back within the horizon, the p95
of the time to a rollback in intervals, and whether the row meets its target.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from wallbounce_operator.ladder import decide
from wallbounce_operator.model import (
    Counts,
    Inputs,
    Observation,
    Phase,
    RolloutSpec,
    RolloutStatus,
    RouteState,
    WorkloadState,
)

T0 = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
CANARY = WorkloadState(revision="r1", available=True, template_key="c")
STABLE = WorkloadState(revision="s1", available=True, template_key="s")


@dataclass(frozen=True)
class Truth:
    """A variant's true behaviour."""

    error_rate: float = 0.0
    p95: float = 1.0  # seconds
    confidence: float = 0.9


@dataclass(frozen=True)
class Row:
    metric: str
    label: str
    truth: Truth
    promote_min: float | None = None  # targets, in shares of runs
    promote_max: float | None = None
    rollback_min: float | None = None
    rollback_max: float | None = None
    rollback_p95_intervals: float | None = None


def rows() -> list[Row]:
    g, limit = 0.002, 0.008  # the 1 % step's gate and limit
    out = [
        Row("errors", "0", Truth(), promote_min=0.99, rollback_max=0.005),
        Row("errors", "½ × gate (0.1 %)", Truth(error_rate=g / 2), promote_min=0.95, rollback_max=0.01),
        Row("errors", "2 × gate (0.4 %)", Truth(error_rate=2 * g), promote_max=0.05),
        Row("errors", "rollback limit (0.8 %)", Truth(error_rate=limit), promote_max=0.01, rollback_min=0.90),
        Row("errors", "3 × limit (2.4 %)", Truth(error_rate=3 * limit), promote_max=0.0, rollback_min=0.99,
            rollback_p95_intervals=2),
        Row("latency", "p95 0.5 s", Truth(p95=0.5), promote_min=0.99, rollback_max=0.005),
        Row("latency", "p95 ½ × gate (2.5 s)", Truth(p95=2.5), promote_min=0.95, rollback_max=0.01),
        Row("latency", "p95 2 × gate = limit (10 s)", Truth(p95=10.0), promote_max=0.01, rollback_min=0.90),
        Row("latency", "p95 3 × limit (30 s)", Truth(p95=30.0), promote_max=0.0, rollback_min=0.99,
            rollback_p95_intervals=2),
        Row("confidence", "mean 0.95", Truth(confidence=0.95), promote_min=0.99, rollback_max=0.005),
        Row("confidence", "mean 0.85", Truth(confidence=0.85), promote_min=0.95, rollback_max=0.01),
        Row("confidence", "mean 0.65 (between)", Truth(confidence=0.65), promote_max=0.05),
        Row("confidence", "mean 0.6 (rollback limit)", Truth(confidence=0.6), promote_max=0.01, rollback_min=0.90),
        Row("confidence", "mean 0.3", Truth(confidence=0.3), promote_max=0.0, rollback_min=0.99,
            rollback_p95_intervals=2),
    ]
    return out


def _spec(interval: float, dwell: float) -> RolloutSpec:
    return RolloutSpec.from_dict({
        "stable": {"deployment": "s", "service": "s"}, "canary": {"deployment": "c", "service": "c"},
        "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}},
        "analysis": {"interval": f"{interval:g}s", "window": "2m"},
        "phases": [{"weight": 1, "duration": f"{dwell:g}s"}, {"weight": 2, "duration": f"{dwell:g}s"}],
    })


def _counts(rng: np.random.Generator, truth: Truth, n: int, gate: float, limit: float) -> Counts:
    errors = int(rng.binomial(n, truth.error_rate)) if n else 0
    sigma = 0.5
    mu = math.log(truth.p95) - NormalDist().inv_cdf(0.95) * sigma
    q_gate = 1 - NormalDist(mu, sigma).cdf(math.log(gate))
    q_limit = 1 - NormalDist(mu, sigma).cdf(math.log(limit))
    slow_limit = int(rng.binomial(n, q_limit)) if n else 0
    slow_gate = slow_limit + (int(rng.binomial(n - slow_limit, (q_gate - q_limit) / (1 - q_limit))) if n else 0)
    kappa = 8.0
    scores = rng.beta(truth.confidence * kappa, (1 - truth.confidence) * kappa, size=n) if n else np.zeros(0)
    mids = (np.minimum(np.floor(scores * 10), 9) + 0.5) / 10  # the histogram's bucket mid-points
    return Counts(served=n, errors=errors, timed=n, slow_gate=slow_gate, slow_limit=slow_limit, scored=n,
                  confidence_sum=float(scores.sum()), confidence_squares=float((mids * mids).sum()), cost=0.001 * n)


def run_one(row: Row, seed: int, per_window: float, interval: float, dwell: float,
            horizon: float) -> tuple[float | None, float | None]:
    """(minutes to promotion, minutes to rollback); None when it did not happen within the horizon."""
    rng = np.random.default_rng(seed)
    spec = _spec(interval, dwell)
    phase = spec.phases[0]
    gate, limit = phase.max_latency_p95, phase.rollback_latency_p95
    status = RolloutStatus()
    route = 0
    for t in (0.0, 0.001):  # start, then the route is read back carrying 1 %
        d = decide(spec, status, Inputs(now=T0 + dt.timedelta(seconds=t), canary=CANARY, stable=STABLE,
                                        route=RouteState(route)))
        status, route = d.status, d.weight
    per_tick = per_window * interval / 120
    window_ticks = max(1, round(120 / interval))
    recent: list[tuple[Counts, Counts]] = []
    stable_truth = Truth(error_rate=0.001, p95=2.0, confidence=0.9)
    t = 0.0
    while t < horizon:
        t += interval
        canary_c = _counts(rng, row.truth, int(rng.poisson(per_tick)), gate, limit)
        stable_c = _counts(rng, stable_truth, int(rng.poisson(per_tick)), gate, limit)
        recent = [*recent[-(window_ticks - 1):], (canary_c, stable_c)]
        window, stable_window = Counts(), Counts()
        for c, s in recent:
            window, stable_window = window + c, stable_window + s
        now = T0 + dt.timedelta(seconds=t)
        obs = Observation(window=window, stable_window=stable_window, increase=canary_c, stable_increase=stable_c,
                          span=(now - dt.timedelta(seconds=interval), now))
        d = decide(spec, status, Inputs(now=now, observation=obs, canary=CANARY, stable=STABLE,
                                        route=RouteState(route)))
        status, route = d.status, d.weight
        if status.step >= 2:
            return t / 60, None
        if status.phase in (Phase.ROLLED_BACK, Phase.ROLLING_BACK) or d.weight == 0:
            return None, t / 60
    return None, None


def _chunk(args: tuple[Row, int, int, float, float, float, float]) -> list[tuple[float | None, float | None]]:
    row, start, count, per_window, interval, dwell, horizon = args
    return [run_one(row, start + i, per_window, interval, dwell, horizon) for i in range(count)]


def _p95(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--per-window", type=float, default=1000.0, help="canary requests per 2-minute window")
    parser.add_argument("--interval", type=float, default=30.0)
    parser.add_argument("--dwell", type=float, default=600.0)
    parser.add_argument("--horizon", type=float, default=3600.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default=None, help="errors, latency or confidence")
    args = parser.parse_args(argv)
    chosen = [r for r in rows() if args.only in (None, r.metric)]
    print(f"# verdict power: {args.runs} runs per row, ~{args.per_window:g} canary requests per 2 m, "
          f"{args.interval:g} s interval, {args.dwell:g} s dwell, {args.horizon:g} s horizon (1 % step)")
    print(f"{'metric':<11} {'true value':<28} {'promoted':>9} {'rolled back':>12} {'rb p95 (intervals)':>19}  target")
    failed = 0
    size = max(1, args.runs // (args.workers * 4))
    with ProcessPoolExecutor(args.workers) as pool:
        for row in chosen:
            jobs = [(row, s, min(size, args.runs - s), args.per_window, args.interval, args.dwell, args.horizon)
                    for s in range(0, args.runs, size)]
            results = [r for part in pool.map(_chunk, jobs) for r in part]
            promoted = sum(1 for p, _ in results if p is not None) / len(results)
            rolled = [b for _, b in results if b is not None]
            rollback = len(rolled) / len(results)
            p95 = _p95([b * 60 / args.interval for b in rolled])
            ok, target = _check(row, promoted, rollback, p95)
            failed += not ok
            shown = f"{p95:.0f}" if p95 is not None else "-"
            print(f"{row.metric:<11} {row.label:<28} {promoted:>8.1%} {rollback:>11.1%} {shown:>19}  "
                  f"{target} {'ok' if ok else 'MISSED'}", flush=True)
    return 1 if failed else 0


def _check(row: Row, promoted: float, rollback: float, p95: float | None) -> tuple[bool, str]:
    parts, ok = [], True
    if row.promote_min is not None:
        parts.append(f"promote ≥ {row.promote_min:.0%}")
        ok &= promoted >= row.promote_min
    if row.promote_max is not None:
        parts.append(f"promote ≤ {row.promote_max:.1%}")
        ok &= promoted <= row.promote_max
    if row.rollback_min is not None:
        parts.append(f"rollback ≥ {row.rollback_min:.0%}")
        ok &= rollback >= row.rollback_min
    if row.rollback_max is not None:
        parts.append(f"rollback ≤ {row.rollback_max:.1%}")
        ok &= rollback <= row.rollback_max
    if row.rollback_p95_intervals is not None:
        parts.append(f"p95 ≤ {row.rollback_p95_intervals:g} intervals")
        ok &= p95 is not None and p95 <= row.rollback_p95_intervals
    return ok, "; ".join(parts) + ":"


if __name__ == "__main__":
    sys.exit(main())
