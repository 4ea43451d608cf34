"""Wilson score bounds against known values, and the clean-request arithmetic the README quotes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallbounce_operator.analysis.stats import (
    at_least,
    at_most,
    clean_requests_to_pass,
    wilson,
    wilson_bounds,
    z_one_sided,
    z_score,
)


def test_z_of_95_percent_is_1_96() -> None:
    assert z_score(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_score(0.99) == pytest.approx(2.575829, abs=1e-6)


@pytest.mark.parametrize(
    ("k", "n", "lower", "upper"),
    [
        # reference values (Wilson 1927 / Newcombe 1998 table; z = 1.96)
        (0, 10, 0.0, 0.2775),
        (1, 10, 0.0179, 0.4042),
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 480, 0.0, 0.00794),
    ],
)
def test_known_wilson_intervals(k: int, n: int, lower: float, upper: float) -> None:
    lo, hi = wilson_bounds(k, n, 0.95)
    assert lo == pytest.approx(lower, abs=5e-4)
    assert hi == pytest.approx(upper, abs=5e-4)


def test_no_requests_means_no_knowledge() -> None:
    assert wilson_bounds(0, 0, 0.95) == (0.0, 1.0)


def test_clean_requests_needed_at_the_1_percent_phase() -> None:
    n = clean_requests_to_pass(0.008, 0.95)
    assert n == 477
    assert wilson_bounds(0, n, 0.95)[1] <= 0.008 < wilson_bounds(0, n - 1, 0.95)[1]


@given(st.integers(0, 10_000), st.integers(1, 10_000), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_interval_contains_the_observed_ratio(k: int, n: int, level: float) -> None:
    k = min(k, n)
    lo, hi = wilson_bounds(k, n, level)
    assert 0 <= lo <= k / n + 1e-12
    assert k / n - 1e-12 <= hi <= 1
    assert not math.isnan(lo) and not math.isnan(hi)


@given(st.integers(0, 500), st.integers(1, 500))
def test_higher_confidence_widens_the_interval(k: int, n: int) -> None:
    k = min(k, n)
    lo90, hi90 = wilson_bounds(k, n, 0.90)
    lo99, hi99 = wilson_bounds(k, n, 0.99)
    assert lo99 <= lo90 + 1e-12 and hi99 >= hi90 - 1e-12


# ----- exact binomial tails -------------------------------------------------------------------------


def _direct(k: int, n: int, p: float) -> float:
    def pmf(i: int) -> float:
        return math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * math.log(p)
                        + (n - i) * math.log1p(-p))

    return sum(pmf(i) for i in range(k, n + 1))


@pytest.mark.parametrize(("k", "n", "p"), [(1, 50, 0.004), (3, 250, 0.004), (8, 250, 0.008), (0, 10, 0.5),
                                           (12, 500, 0.01), (40, 5000, 0.004), (5, 5, 0.3)])
def test_binomial_tails_match_direct_sums(k: int, n: int, p: float) -> None:
    assert at_least(k, n, p) == pytest.approx(_direct(k, n, p), rel=1e-9, abs=1e-15)
    assert at_most(k, n, p) == pytest.approx(1 - _direct(k + 1, n, p), rel=1e-9, abs=1e-15)


def test_one_error_in_fifty_is_no_evidence_of_a_rate_above_four_per_mille() -> None:
    assert at_least(1, 50, 0.004) == pytest.approx(0.182, abs=1e-3)  # Wilson's lower bound (0.45 %) said otherwise
    assert wilson(1, 50, z_one_sided(0.05))[0] > 0.004


@given(st.integers(0, 300), st.integers(1, 300), st.floats(0.001, 0.5))
def test_tails_are_probabilities_and_complementary(k: int, n: int, p: float) -> None:
    k = min(k, n)
    up, down = at_least(k, n, p), at_most(k - 1, n, p) if k > 0 else 0.0
    assert 0 <= up <= 1 and up + down == pytest.approx(1.0, abs=1e-9)


def test_large_counts_use_the_normal_and_stay_close() -> None:
    n, p = 200_000, 0.02
    k = int(n * p + 3 * math.sqrt(n * p * (1 - p)))
    assert at_least(k, n, p) == pytest.approx(1 - 0.99865, abs=3e-4)
