"""Provider selection: the guide's table, fallbacks, budget-aware pairs, refusal when no pair fits."""

from __future__ import annotations

import pytest

from wallbounce_service.config import Settings
from wallbounce_service.selection import (
    SECOND_ROUND_LISTED_TOKENS,
    SECOND_ROUND_OUTPUT_TOKENS,
    CallPlan,
    SelectionError,
    estimate_tokens,
    select,
)

ALL = ["openai", "gemini", "anthropic"]
S = Settings()


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("basic", ["gemini", "anthropic"]),
        ("premium", ["openai", "gemini"]),
        ("critical", ["openai", "anthropic", "gemini"]),
    ],
)
def test_task_type_table(task: str, expected: list[str]) -> None:
    assert select(task, "hello", ALL, S).primary == expected


def test_missing_provider_is_replaced_from_the_fallback_order() -> None:
    pick = select("basic", "hello", ["openai", "anthropic"], S)
    assert pick.primary == ["anthropic", "openai"]
    assert pick.fallbacks == []
    pick = select("basic", "hello", ALL, S)
    assert pick.fallbacks == ["openai"]


def test_fewer_than_two_providers_is_an_error() -> None:
    with pytest.raises(SelectionError) as err:
        select("basic", "hello", ["gemini"], S)
    assert err.value.code == "providers"


def test_low_budget_picks_the_cheapest_fitting_pair() -> None:
    normal = select("basic", "hello", ALL, S)  # gemini + claude: claude is the expensive one
    cheap_pair = select("basic", "hello", ALL, S, budget_usd=normal.estimated_cost_usd * 0.9)
    assert sorted(cheap_pair.primary) == ["gemini", "openai"]
    assert cheap_pair.estimated_cost_usd <= normal.estimated_cost_usd * 0.9
    assert len(cheap_pair.primary) == 2


def test_budget_below_every_pair_is_refused_naming_the_budget() -> None:
    with pytest.raises(SelectionError) as err:
        select("basic", "hello", ALL, S, budget_usd=0.0001)
    assert err.value.code == "budget"
    assert "budget_usd" in str(err.value)


def test_bounce_rounds_multiply_the_estimate() -> None:
    one = select("premium", "hello", ALL, S, plan=CallPlan(answers=1)).estimated_cost_usd
    three = select("premium", "hello", ALL, S, plan=CallPlan(answers=3)).estimated_cost_usd
    assert three == pytest.approx(3 * one)


def test_the_second_round_is_counted_in_the_budget() -> None:
    off = Settings(consensus={"cross_examination": dict.fromkeys(("basic", "premium", "critical"), "off")})
    assert CallPlan.of(off, "basic", "parallel", 3) == CallPlan(answers=1, second_round=0)
    assert CallPlan.of(S, "basic", "parallel", 3) == CallPlan(answers=1, second_round=2)  # auto may need it
    assert CallPlan.of(S, "basic", "sequential", 3) == CallPlan(answers=0, reviews=2)
    one_round = select("basic", "hello", ALL, off).estimated_cost_usd
    two_rounds = select("basic", "hello", ALL, S).estimated_cost_usd
    assert two_rounds > one_round
    # a budget that pays for the answers but not for the cross-examination and restatement: a cheaper pair
    pick = select("basic", "hello", ALL, S, budget_usd=(one_round + two_rounds) / 2)
    assert sorted(pick.primary) == ["gemini", "openai"] and pick.estimated_cost_usd <= (one_round + two_rounds) / 2
    with pytest.raises(SelectionError):  # not even the cheapest pair's second round fits
        select("basic", "hello", ALL, S, budget_usd=pick.estimated_cost_usd * 0.5)
    assert select("basic", "hello", ALL, off, budget_usd=one_round).primary == ["gemini", "anthropic"]


def test_the_token_reservation_counts_every_call() -> None:
    plan = CallPlan.of(S, "basic", "parallel", 3)
    assert plan.tokens(100, 800) == (100 + 800) + 2 * (100 + SECOND_ROUND_LISTED_TOKENS + SECOND_ROUND_OUTPUT_TOKENS)


def test_the_token_estimate_of_long_and_mixed_text() -> None:
    assert estimate_tokens("a" * 1_000_000) == 250_000
    assert estimate_tokens("a" * 400 + "あ" * 100) == 200


def test_token_estimate_counts_japanese_per_character() -> None:
    assert estimate_tokens("a" * 400) == 100
    assert estimate_tokens("あ" * 400) == 400


def test_configuration_rejects_a_single_provider_task() -> None:
    with pytest.raises(ValueError, match="at least two distinct providers"):
        Settings(
            selection={"basic": ["gemini", "gemini"], "premium": ["openai", "gemini"], "critical": ["openai", "gemini"]}
        )
