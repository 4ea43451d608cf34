"""How much traffic a step needs, from the same tests the verdicts run (``verdict.py``): the numbers of the README's
sizing table, reproducible with ``python -m wallbounce_operator.analysis.sizing``.

For a step with promotion gate ``g`` and rollback limit ``L`` (error rates) at confidence level ``c``:

- ``clean``: requests the step must serve without an error before its first promotion look can pass;
- ``at half the gate``: requests after which a canary whose true error rate is g/2 passes the first look with
  probability 95 %;
- ``errors that roll back``: the fewest errors among 1,000 requests that fail the cumulative test at the step's
  first look;
- ``guard trips at``: the fewest errors among 1,000 requests of the sliding window that trip the guard (a breach
  beyond doubt, z = 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .stats import at_least, at_most, promotion_alpha, rollback_alpha
from .verdict import GUARD_ALPHA

TIERS = ((0.002, 0.008, "1, 2, 10 %"), (0.005, 0.015, "20 %"), (0.015, 0.03, "35, 50 %"))


@dataclass(frozen=True)
class Sizing:
    gate: float
    limit: float
    clean: int
    at_half_gate: int
    errors_that_roll_back: int
    guard_trips_at: int


def _bad(gate: float, limit: float) -> float:
    return min(2 * gate, limit) if gate > 0 else limit / 4


def clean_requests(gate: float, limit: float, level: float) -> int:
    """n with P(0 errors | n, bad rate) ≤ the first look's share of 1 − level."""
    alpha = promotion_alpha(1 - level, 1)
    return math.ceil(math.log(alpha) / math.log1p(-_bad(gate, limit)))


def _passes(n: int, gate: float, limit: float, level: float) -> float:
    """P(the first promotion look passes | n requests at gate/2): errors k ≤ g·n and the bound rules out the bad
    rate."""
    alpha, p = promotion_alpha(1 - level, 1), gate / 2
    k_max = -1
    for k in range(int(gate * n) + 1):
        if at_most(k, n, _bad(gate, limit)) <= alpha:
            k_max = k
    return at_most(k_max, n, p) if k_max >= 0 else 0.0


def requests_at_half_gate(gate: float, limit: float, level: float, power: float = 0.95) -> int:
    lo, hi = 1, 10_000_000
    while lo < hi:
        mid = (lo + hi) // 2
        if _passes(mid, gate, limit, level) >= power:
            hi = mid
        else:
            lo = mid + 1
    return lo


def errors_that_roll_back(gate: float, limit: float, level: float, n: int = 1000) -> int:
    alpha, threshold = rollback_alpha(2 * (1 - level), 1), math.sqrt(gate * limit)
    return next(k for k in range(n + 1) if at_least(k, n, threshold) <= alpha)


def guard_trips_at(limit: float, n: int = 1000) -> int:
    return next(k for k in range(n + 1) if at_least(k, n, limit) <= GUARD_ALPHA)


def table(level: float = 0.95) -> list[tuple[str, Sizing]]:
    return [(steps, Sizing(g, lim, clean_requests(g, lim, level), requests_at_half_gate(g, lim, level),
                           errors_that_roll_back(g, lim, level), guard_trips_at(lim)))
            for g, lim, steps in TIERS]


def main() -> None:
    print("| steps | gate | limit | clean requests to pass | requests to pass at ½ gate (95 %) "
          "| errors in 1,000 that roll back | errors in a window of 1,000 that trip the guard |")
    print("|---|---|---|---|---|---|---|")
    for steps, s in table():
        print(f"| {steps} | {s.gate:.1%} | {s.limit:.1%} | {s.clean:,} | {s.at_half_gate:,} | "
              f"{s.errors_that_roll_back} | {s.guard_trips_at} |")


if __name__ == "__main__":
    main()
