"""Provider selection: task type → providers, budget-aware, with the configured fallback order. Pure functions.

The guide's table picks the providers per task type. A per-request budget replaces that pick with the cheapest
*pair* of available providers whose estimated cost fits (never a single provider: one answer is not a consensus);
when no pair fits, the request is refused naming the budget. Providers missing from the pick (no key, cooled down)
are replaced from the fallback order; fewer than two available providers is an error. The estimate counts every
call a provider may make for the request (``CallPlan``): its answer, and the second round's cross-examination and
restatement, or sequential mode's reviews; the same plan sizes the tenant's token reservation.
"""

from __future__ import annotations

import itertools
import math
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
    """A deliberately generous estimate: ~4 bytes per token for ASCII, one token per non-ASCII character.
    Linear and in C (a few milliseconds per MB), so it runs on the event loop whatever the prompt's length."""
    ascii_chars = len(text) if text.isascii() else len(text.encode("ascii", "ignore"))
    return max(1, ascii_chars // 4 + (len(text) - ascii_chars))


#: what a call besides the answer reads on top of the prompt, and writes: a sequential review lists up to three
#: previous answers (``review_answer_chars`` each); a cross-examination lists every final and a probe, a restatement
#: the provider's own final, and both write a short structured object
REVIEW_LISTED_TOKENS = 1200
SECOND_ROUND_LISTED_TOKENS = 400
SECOND_ROUND_OUTPUT_TOKENS = 200


@dataclass(frozen=True)
class CallPlan:
    """The most calls one selected provider may take for a request: ``answers`` read the prompt and write a full
    answer; ``reviews`` (sequential mode) also read the answers they judge; ``second_round`` (parallel mode, unless
    the task type's ``consensus.cross_examination`` is ``off``: ``auto`` may need them) are a cross-examination and
    a restatement, which read the prompt with the finals listed and write a short object."""

    answers: int = 1
    reviews: int = 0
    second_round: int = 0

    @staticmethod
    def of(settings: Settings, task_type: str, mode: str, depth: int) -> CallPlan:
        if mode == "sequential":  # a proposal plus ``depth`` reviews, alternating over (at least) a pair
            return CallPlan(answers=0, reviews=math.ceil((depth + 1) / 2))
        policy = settings.consensus.cross_examination.get(task_type, "auto")
        return CallPlan(answers=1, second_round=0 if policy == "off" else 2)

    def calls(self, prompt_tokens: int, output_tokens: int) -> list[Usage]:
        """The (input, output) tokens of each call one provider may make."""
        return (
            [Usage(prompt_tokens, output_tokens)] * self.answers
            + [Usage(prompt_tokens + REVIEW_LISTED_TOKENS, output_tokens)] * self.reviews
            + [Usage(prompt_tokens + SECOND_ROUND_LISTED_TOKENS, SECOND_ROUND_OUTPUT_TOKENS)] * self.second_round
        )

    def tokens(self, prompt_tokens: int, output_tokens: int) -> int:
        """Input and output tokens of every call one provider may make, together."""
        return sum(u.input_tokens + u.output_tokens for u in self.calls(prompt_tokens, output_tokens))

    def cost(self, price: Price | None, prompt_tokens: int, output_tokens: int) -> float:
        """Estimated cost of one provider's calls (each priced on its own: tiered prices depend on the call)."""
        return sum(cost_usd(price, usage) for usage in self.calls(prompt_tokens, output_tokens))


def select(
    task_type: str,
    prompt: str,
    available: Sequence[str],
    settings: Settings,
    budget_usd: float | None = None,
    plan: CallPlan | None = None,
    models: Mapping[str, str] | None = None,
) -> Selection:
    """The providers for one request, or ``SelectionError``. ``plan``: the calls each provider may take (default:
    a parallel request of this task type, second round included)."""
    available = [str(p) for p in available if p in settings.providers]
    fallback_tail: list[str] = [p for p in settings.fallback_order if p in available]
    fallback_tail += [p for p in available if p not in fallback_tail]
    models = models or {name: conf.model for name, conf in settings.providers.items()}
    plan = plan or CallPlan.of(settings, task_type, "parallel", 1)
    prompt_tokens = estimate_tokens(prompt)
    out_tokens = settings.expected_output_tokens

    def cost_of(names: Sequence[str]) -> float:
        return sum(plan.cost(settings.prices.get(models[n]), prompt_tokens, out_tokens) for n in names)

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
