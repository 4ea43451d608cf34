"""Reading Prometheus histograms (cumulative ``le`` buckets, summed over series) the way the verdicts need them.

A latency limit that falls between two bucket boundaries is read conservatively for each use: requests "slower than
the rollback limit" are those above the first boundary at or above the limit (never counting a request that might
have been fast enough), requests "slower than the promotion gate" are those above the last boundary at or below the
gate (never counting a request that might have been too slow as fast). With the service's buckets (…, 5, 10, 20, …
seconds) the default gate (5 s) and limit (10 s) are boundaries and nothing is approximated.
"""

from __future__ import annotations

import math

Buckets = dict[float, float]  # upper bound (math.inf for +Inf) -> cumulative count


def total(buckets: Buckets) -> float:
    return buckets.get(math.inf, max(buckets.values(), default=0.0))


def slower_than(buckets: Buckets, seconds: float, *, count_doubtful: bool) -> float:
    """Requests slower than ``seconds``; ``count_doubtful`` counts those in the bucket that straddles it as slow."""
    if not buckets:
        return 0.0
    bounds = sorted(b for b in buckets if b != math.inf)
    if count_doubtful:
        below = [b for b in bounds if b <= seconds]
        fast = buckets[below[-1]] if below else 0.0
    else:
        above = [b for b in bounds if b >= seconds]
        fast = buckets[above[0]] if above else total(buckets)
    return max(total(buckets) - fast, 0.0)


def quantile(buckets: Buckets, q: float) -> float | None:
    """``histogram_quantile``: linear interpolation inside the bucket that holds the q-th request."""
    n = total(buckets)
    if n <= 0:
        return None
    rank = q * n
    previous_bound, previous_count = 0.0, 0.0
    for bound in sorted(buckets):
        count = buckets[bound]
        if count >= rank:
            if bound == math.inf:
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return None


def sum_of_squares(buckets: Buckets) -> float:
    """Σ x² of the observations, each taken at its bucket's mid-point (the confidence histogram is 0.1 wide)."""
    out, previous_bound, previous_count = 0.0, 0.0, 0.0
    for bound in sorted(b for b in buckets if b != math.inf):
        count = buckets[bound]
        mid = (previous_bound + bound) / 2
        out += max(count - previous_count, 0.0) * mid * mid
        previous_bound, previous_count = bound, count
    return out
