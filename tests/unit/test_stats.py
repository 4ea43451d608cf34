"""Wilson score bounds against known values, and the clean-request arithmetic the README quotes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wallbounce_operator.analysis.stats import clean_requests_to_pass, wilson_bounds, z_score


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
