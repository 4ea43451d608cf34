"""The statistics of the verdicts: exact binomial tails (the regularized incomplete beta function) for proportions,
normal bounds for a mean (from histogram bucket mid-points), a two-sample comparison, Wilson bounds for display,
and how the error rate of a sequence of looks is spent.

Each test is one-sided at a level ``alpha``. Proportions are tested exactly: "the error rate is above p0" when
P(K ≥ k | n, p0) ≤ alpha — Wilson's lower bound would call 1 error in 50 requests proof of a rate above 0.4 %, an
exact test does not (P = 0.18). Counts from ``increase()`` are real numbers; the beta function takes them as they are.
Spending: look ``j`` of a test (the promotion test counts its looks from the end of the dwell, the cumulative rollback
test from the step's start) may use ``alpha / (j (j + 1))``; the sum stays below ``alpha`` however many looks a step
takes, so repeating a test every interval does not inflate its error rate.
"""

from __future__ import annotations

import math
from functools import cache
from statistics import NormalDist

GUARD_Z = 4.0  # the fast guard: one-sided 3·10⁻⁵ per look (it looks every second or two)
MIN_SCORED = 20  # answers needed before a mean confidence is tested at all


def _continued_fraction(a: float, b: float, x: float) -> float:
    """Lentz's evaluation of the incomplete beta function's continued fraction."""
    tiny, eps = 1e-300, 1e-13
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 5000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(b, a, 1 - x) / b


def _normal_tail(k: float, n: float, p: float, upper: bool) -> float:
    sd = math.sqrt(n * p * (1 - p))
    if upper:
        return 1 - NormalDist().cdf((k - 0.5 - n * p) / sd)
    return NormalDist().cdf((k + 0.5 - n * p) / sd)


def at_least(k: float, n: float, p: float) -> float:
    """P(K ≥ k) for K ~ Binomial(n, p) (real k and n): how surprising k errors are if the rate is p."""
    if k <= 0 or p >= 1:
        return 1.0
    if p <= 0 or k > n:
        return 0.0
    if n * p * (1 - p) > 2000:  # the continued fraction would take thousands of terms; the normal is exact enough
        return _normal_tail(k, n, p, upper=True)
    return beta_cdf(p, k, n - k + 1)


def at_most(k: float, n: float, p: float) -> float:
    """P(K ≤ k) for K ~ Binomial(n, p): how surprising so few errors are if the rate is p."""
    if k >= n or p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    if n * p * (1 - p) > 2000:
        return _normal_tail(k, n, p, upper=False)
    return beta_cdf(1 - p, n - k, k + 1)


@cache
def z_one_sided(alpha: float) -> float:
    """The normal quantile of a one-sided test at level ``alpha``: 0.025 → 1.96 (levels below 10⁻¹⁵ read as 10⁻¹⁵)."""
    if not alpha < 1:
        raise ValueError("alpha must be below 1")
    return -NormalDist().inv_cdf(max(alpha, 1e-15))


def z_score(confidence_level: float) -> float:
    """Two-sided normal quantile: 0.95 → 1.96."""
    if not 0 < confidence_level < 1:
        raise ValueError("confidence level must be in (0, 1)")
    return z_one_sided((1 - confidence_level) / 2)


def spent(alpha: float, look: int) -> float:
    """The share of ``alpha`` look ``j`` (1-based) may use: alpha / (j (j + 1)), which sums to alpha over all looks."""
    j = max(look, 1)
    return alpha / (j * (j + 1))


promotion_alpha = rollback_alpha = spent


def wilson(k: float, n: float, z: float) -> tuple[float, float]:
    """(lower, upper) Wilson score bounds of k/n at normal quantile ``z``; (0, 1) with less than one trial
    (``increase()`` extrapolates, so counts are real numbers)."""
    if n < 1:
        return 0.0, 1.0
    k = min(max(k, 0.0), n)
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(max(p * (1 - p) / n + z2 / (4 * n * n), 0.0)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_bounds(errors: float, requests: float, confidence_level: float) -> tuple[float, float]:
    """Two-sided Wilson bounds at a confidence level (0.95 → z 1.96)."""
    return wilson(errors, requests, z_score(confidence_level))


def mean_bounds(total: float, squares: float, n: float, z: float) -> tuple[float, float]:
    """(lower, upper) bounds of a mean in [0, 1] from its sum and sum of squares; the variance is floored at that
    of one 0.1-wide histogram bucket (a histogram cannot show less spread), and (0, 1) below MIN_SCORED."""
    if n < MIN_SCORED:
        return 0.0, 1.0
    mean = total / n
    variance = max(squares / n - mean * mean, 0.1 * 0.1 / 12)
    half = z * math.sqrt(variance / n)
    return max(0.0, mean - half), min(1.0, mean + half)


def above(k1: float, n1: float, k2: float, n2: float, ratio: float, z: float) -> bool:
    """Is proportion 1 significantly above ``ratio`` × proportion 2 (one-sided, at quantile z)?"""
    if n1 < 1 or n2 < 1:
        return False
    p1, p2 = min(max(k1 / n1, 0.0), 1.0), min(max(k2 / n2, 0.0), 1.0)
    # variances floored at one event's worth, so zero counts do not make certainty out of nothing
    v1 = max(p1 * (1 - p1), 1 / n1) / n1
    v2 = max(p2 * (1 - p2), 1 / n2) / n2
    return (p1 - ratio * p2) / math.sqrt(v1 + ratio * ratio * v2) > z


def mean_below(s1: float, q1: float, n1: float, s2: float, q2: float, n2: float, drop: float, z: float) -> bool:
    """Is mean 1 significantly below mean 2 minus ``drop`` (one-sided, at quantile z)?"""
    if n1 < MIN_SCORED or n2 < MIN_SCORED:
        return False
    m1, m2 = s1 / n1, s2 / n2
    v1 = max(q1 / n1 - m1 * m1, 0.1 * 0.1 / 12) / n1
    v2 = max(q2 / n2 - m2 * m2, 0.1 * 0.1 / 12) / n2
    return ((m2 - drop) - m1) / math.sqrt(v1 + v2) > z


def clean_requests_to_pass(limit: float, confidence_level: float) -> int:
    """Error-free requests needed before the upper Wilson bound drops to ``limit`` (k = 0: z²/(n+z²) ≤ limit)."""
    z2 = z_score(confidence_level) ** 2
    return math.ceil(z2 * (1 - limit) / limit)
