"""Provider selection: task type → providers, budget-aware, with the configured fallback order. Pure functions.

The guide's table picks the providers per task type. A per-request budget replaces that pick with the cheapest
*pair* of available providers whose estimated cost fits (never a single provider: one answer is not a consensus);
when no pair fits, the request is refused naming the budget. Providers missing from the pick (no key, cooled down)
are replaced from the fallback order; fewer than two available providers is an error.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .config import Price, Settings
from .providers.base import Usage, cost_usd


class SelectionError(Exception):
    """No valid pick: ``code`` is ``budget`` (HTTP 422, field budget_usd) or ``providers`` (HTTP 503)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Selection:
    primary: list[str]
    fallbacks: list[str]
    estimated_cost_usd: float


def estimate_tokens(text: str) -> int:
    """A deliberately generous estimate: ~4 bytes per token for ASCII, one token per non-ASCII character."""
    ascii_chars = sum(1 for ch in text if ch.isascii())
    return max(1, ascii_chars // 4 + (len(text) - ascii_chars))


def estimate_cost(price: Price | None, prompt_tokens: int, output_tokens: int, calls: int = 1) -> float:
    return calls * cost_usd(price, Usage(input_tokens=prompt_tokens, output_tokens=output_tokens))


def select(
    task_type: str,
    prompt: str,
    available: Sequence[str],
    settings: Settings,
    budget_usd: float | None = None,
    calls_per_provider: int = 1,
    models: Mapping[str, str] | None = None,
) -> Selection:
    """The providers for one request, or ``SelectionError``."""
    available = [str(p) for p in available if p in settings.providers]
    fallback_tail: list[str] = [p for p in settings.fallback_order if p in available]
    fallback_tail += [p for p in available if p not in fallback_tail]
    models = models or {name: conf.model for name, conf in settings.providers.items()}
    prompt_tokens = estimate_tokens(prompt)
    out_tokens = settings.expected_output_tokens

    def cost_of(names: Sequence[str]) -> float:
        return sum(
            estimate_cost(settings.prices.get(models[n]), prompt_tokens, out_tokens, calls_per_provider) for n in names
        )

    if len(available) < 2:
        raise SelectionError("providers", f"fewer than two providers are available ({', '.join(available) or 'none'})")
    wanted: list[str] = list(dict.fromkeys(settings.selection[task_type]))
    primary = [p for p in wanted if p in available]
    for p in fallback_tail:  # top up from the fallback order
        if len(primary) >= min(len(wanted), len(available)):
            break
        if p not in primary:
            primary.append(p)
    if budget_usd is not None and cost_of(primary) > budget_usd:
        pairs = sorted(itertools.combinations(available, 2), key=lambda pair: (cost_of(pair), pair))
        fitting = [pair for pair in pairs if cost_of(pair) <= budget_usd]
        if not fitting:
            cheapest = cost_of(pairs[0])
            raise SelectionError(
                "budget",
                f"budget_usd {budget_usd:g} is below the cheapest pair of providers "
                f"({' + '.join(pairs[0])}, estimated {cheapest:.6f} USD)",
            )
        primary = [str(name) for name in fitting[0]]
    fallbacks = [p for p in fallback_tail if p not in primary]
    return Selection(primary=primary, fallbacks=fallbacks, estimated_cost_usd=round(cost_of(primary), 8))
