"""Wilson score bounds for an error ratio k/n: how sure we are that the true rate is above or below a limit."""

from __future__ import annotations

import math
from functools import cache
from statistics import NormalDist


@cache
def z_score(confidence_level: float) -> float:
    """Two-sided normal quantile: 0.95 → 1.96."""
    if not 0 < confidence_level < 1:
        raise ValueError("confidence level must be in (0, 1)")
    return NormalDist().inv_cdf(1 - (1 - confidence_level) / 2)


def wilson_bounds(errors: float, requests: float, confidence_level: float) -> tuple[float, float]:
    """(lower, upper) Wilson score interval of the error ratio; (0, 1) with less than one request
    (Prometheus' increase() extrapolates, so counts are real numbers)."""
    if requests < 1:
        return 0.0, 1.0
    k = min(max(errors, 0.0), requests)
    n = requests
    z = z_score(confidence_level)
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clean_requests_to_pass(limit: float, confidence_level: float) -> int:
    """Error-free requests needed before the upper Wilson bound drops to ``limit`` (k = 0: z²/(n+z²) ≤ limit)."""
    z2 = z_score(confidence_level) ** 2
    return math.ceil(z2 * (1 - limit) / limit)
