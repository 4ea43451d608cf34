"""Provider selection: the guide's table, fallbacks, budget-aware pairs, refusal when no pair fits."""

from __future__ import annotations

import pytest

from wallbounce_service.config import Settings
from wallbounce_service.selection import SelectionError, estimate_tokens, select

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
    one = select("premium", "hello", ALL, S, calls_per_provider=1).estimated_cost_usd
    three = select("premium", "hello", ALL, S, calls_per_provider=3).estimated_cost_usd
    assert three == pytest.approx(3 * one)


def test_token_estimate_counts_japanese_per_character() -> None:
    assert estimate_tokens("a" * 400) == 100
    assert estimate_tokens("あ" * 400) == 400


def test_configuration_rejects_a_single_provider_task() -> None:
    with pytest.raises(ValueError, match="at least two distinct providers"):
        Settings(
            selection={"basic": ["gemini", "gemini"], "premium": ["openai", "gemini"], "critical": ["openai", "gemini"]}
        )
