"""The wall-bounce analyzer: coordinates the providers for one request and hands their answers to the consensus engine.

- **parallel**: every selected provider answers at once; a provider that fails (after the pool's retries) is
  replaced by the next one in the fallback order; then one consensus.
- **sequential** (bounce): round 1 proposes; each of the ``depth`` bounce rounds gives the next provider the question
  and the previous answers, asks for an explicit ``VERDICT`` on the last one and a revised answer; it stops early
  when the final answers agree (agreement >= target and confidence >= the task's minimum) or after ``depth`` bounces
  (``depth + 1`` rounds in all).

At least two distinct providers must answer, else ``NotEnoughAnswers`` (HTTP 503): a single answer is never
presented as a consensus. The overall deadline is the caller's (``asyncio.timeout``); cancellation (deadline or a
disconnected client) propagates into every provider call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import consensus as consensus_engine
from .config import Settings
from .providers.base import ErrorKind, ProviderAnswer, ProviderFailure, ProviderResult
from .providers.router import ProviderPool
from .selection import Selection

log = logging.getLogger("wallbounce.analyzer")

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]

SYSTEM_PROMPT = (
    "You are one of several independent experts consulted on the same question. Answer accurately and concisely, "
    "in the language of the question. Give a one-line final answer (begin it with Yes or No when the question can "
    "be answered that way): in the final_answer field when a JSON schema is given, else on the very last line "
    "after 'FINAL: '."
)
REVIEW_INSTRUCTIONS = (
    "Review the most recent answer above and state whether you agree, partially agree or disagree with it: in the "
    "verdict field when a JSON schema is given, else on a first line 'VERDICT: agree', 'VERDICT: partially' or "
    "'VERDICT: disagree'. Then give your own revised answer and your one-line final answer as instructed."
)
PREVIOUS_ANSWER_CHARS = 1500


class NotEnoughAnswers(Exception):
    """Fewer than two distinct providers answered."""

    def __init__(self, message: str, votes: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.votes = votes


@dataclass
class Step:
    round: int
    result: ProviderResult
    verdict: str | None = None
    cached: bool = False


@dataclass
class Analysis:
    consensus: consensus_engine.Consensus
    steps: list[Step]
    rounds: int
    degraded: bool
    providers_used: list[str]
    total_cost: float
    answer_indices: list[int] = field(default_factory=list)  # step index of each consensus vote


async def _no_emit(_event: str, _data: dict[str, Any]) -> None:
    return None


class Analyzer:
    def __init__(self, settings: Settings, pool: ProviderPool) -> None:
        self.settings = settings
        self.pool = pool

    async def _ask(self, provider: str, system: str, prompt: str) -> tuple[ProviderResult, bool]:
        # caching moved out of the analyzer: a provider-result cache wraps the pool (upstream.RequestPool)
        return await self.pool.call(provider, system, prompt), False

    async def run(
        self,
        prompt: str,
        task_type: str,
        mode: str,
        depth: int,
        selection: Selection,
        emit: Emit = _no_emit,
    ) -> Analysis:
        if mode == "sequential":
            return await self._sequential(prompt, task_type, depth, selection, emit)
        return await self._parallel(prompt, selection, emit)

    async def _parallel(self, prompt: str, selection: Selection, emit: Emit) -> Analysis:
        fallbacks = list(selection.fallbacks)
        steps: list[Step] = []
        degraded = False
        await emit("thinking", {"stage": "fan-out", "providers": selection.primary})
        pending: set[asyncio.Task[tuple[ProviderResult, bool]]] = {
            asyncio.create_task(self._ask(p, SYSTEM_PROMPT, prompt), name=p) for p in selection.primary
        }
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    result, cached = task.result()
                    steps.append(Step(1, result, cached=cached))
                    await emit("provider_response", _step_event(steps[-1]))
                    if isinstance(result, ProviderFailure) and fallbacks:
                        available = set(self.pool.available())
                        while fallbacks:
                            nxt = fallbacks.pop(0)
                            if nxt in available:
                                degraded = True
                                await emit(
                                    "thinking", {"stage": "fallback", "failed": result.provider, "provider": nxt}
                                )
                                pending.add(asyncio.create_task(self._ask(nxt, SYSTEM_PROMPT, prompt), name=nxt))
                                break
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        answers = [i for i, s in enumerate(steps) if isinstance(s.result, ProviderAnswer)]
        degraded = degraded or len(answers) < len(selection.primary)
        return await self._finish(prompt, steps, answers, rounds=1, degraded=degraded, verdicts=[])

    async def _sequential(self, prompt: str, task_type: str, depth: int, selection: Selection, emit: Emit) -> Analysis:
        order = list(selection.primary)
        fallbacks = list(selection.fallbacks)
        steps: list[Step] = []
        degraded = False
        latest: dict[str, int] = {}  # provider → index of its latest answer
        verdicts: list[str | None] = []
        rounds = 0
        target_conf = self.settings.min_confidence.get(task_type, 0.7)
        turn = 0
        for rnd in range(1, depth + 2):  # round 1 proposes, rounds 2..depth+1 are the bounces
            rounds = rnd
            previous = [steps[i] for i in sorted(latest.values())]
            last_provider = steps[max(latest.values())].result.provider if latest else None
            # the next provider that did not give the previous answer
            usable = set(self.pool.available())  # a provider cooled down meanwhile is skipped
            rotated = [p for p in order[turn:] + order[:turn] if p in usable] or order[turn:] + order[:turn]
            candidates = [p for p in rotated if p != last_provider] or rotated
            answered = False
            tried: set[str] = set()
            while not answered:
                provider = next((p for p in candidates if p not in tried), None)
                if provider is None:
                    available = set(self.pool.available())
                    provider = next((p for p in fallbacks if p in available and p not in tried), None)
                    if provider is None:
                        break
                    fallbacks.remove(provider)
                    order.append(provider)
                    degraded = True
                tried.add(provider)
                await emit(
                    "thinking", {"stage": "propose" if not previous else "review", "round": rnd, "provider": provider}
                )
                text = prompt if not previous else _review_prompt(prompt, previous)
                result, cached = await self._ask(provider, SYSTEM_PROMPT, text)
                verdict = None
                if isinstance(result, ProviderAnswer) and previous:
                    verdict = consensus_engine.parse(result.text).verdict
                steps.append(Step(rnd, result, verdict, cached))
                await emit("provider_response", _step_event(steps[-1]))
                if isinstance(result, ProviderAnswer):
                    answered = True
                    latest[provider] = len(steps) - 1
                    if previous:
                        verdicts.append(verdict)
                    turn = (order.index(provider) + 1) % len(order)
                else:
                    degraded = True
            if not answered:
                break
            if len(latest) >= 2 and verdicts and verdicts[-1] == "agree":
                interim = self._consensus(prompt, steps, sorted(latest.values()), verdicts)
                if interim.agreement >= self.settings.agreement_target and interim.confidence >= target_conf:
                    await emit("thinking", {"stage": "converged", "round": rnd})
                    break
        return await self._finish(prompt, steps, sorted(latest.values()), rounds, degraded, verdicts)

    def _consensus(
        self, prompt: str, steps: list[Step], indices: list[int], verdicts: list[str | None]
    ) -> consensus_engine.Consensus:
        votes = []
        for i in indices:
            result = steps[i].result
            assert isinstance(result, ProviderAnswer)
            weight = (
                self.settings.providers[result.provider].weight if result.provider in self.settings.providers else 1.0
            )
            votes.append(consensus_engine.Vote(result.provider, result.text, weight))
        return consensus_engine.build(prompt, votes, self.settings.consensus, verdicts)

    async def _cached_consensus(
        self, prompt: str, steps: list[Step], indices: list[int], verdicts: list[str | None]
    ) -> consensus_engine.Consensus:
        """The consensus (the consensus cache is gone: caching wraps the core, outside the analyzer)."""
        return self._consensus(prompt, steps, indices, verdicts)

    async def _finish(
        self,
        prompt: str,
        steps: list[Step],
        answers: list[int],
        rounds: int,
        degraded: bool,
        verdicts: list[str | None],
    ) -> Analysis:
        providers = sorted({steps[i].result.provider for i in answers})
        total_cost = sum(s.result.cost_usd for s in steps)
        if len(providers) < 2:
            raise NotEnoughAnswers(
                f"only {len(providers)} provider(s) answered ({', '.join(providers) or 'none'}); "
                "a consensus needs at least two",
                [_step_event(s) for s in steps],
            )
        answers = sorted(answers, key=lambda i: steps[i].result.provider)  # canonical order: cacheable, stable
        result = await self._cached_consensus(prompt, steps, answers, verdicts)
        return Analysis(result, steps, rounds, degraded, providers, total_cost, answers)


def _review_prompt(prompt: str, previous: list[Step]) -> str:
    parts = [f"Question:\n{prompt}\n", "Answers so far (oldest first):"]
    for n, step in enumerate(previous[-3:], start=1):
        assert isinstance(step.result, ProviderAnswer)
        parts.append(f"--- answer {n} ---\n{step.result.text[:PREVIOUS_ANSWER_CHARS]}")
    parts.append(REVIEW_INSTRUCTIONS)
    return "\n\n".join(parts)


def _step_event(step: Step) -> dict[str, Any]:
    r = step.result
    data: dict[str, Any] = {
        "provider": r.provider,
        "model": r.model,
        "round": step.round,
        "latency_ms": round(r.latency_ms, 2),
        "cached": step.cached,
    }
    if isinstance(r, ProviderAnswer):
        data.update(
            ok=True,
            input_tokens=r.usage.input_tokens,
            output_tokens=r.usage.output_tokens,
            cost_usd=round(r.cost_usd, 8),
            verdict=step.verdict,
        )
    else:
        data.update(ok=False, error=_error_text(r))
    return data


def _error_text(failure: ProviderFailure) -> str:
    status = f" (HTTP {failure.status})" if failure.status else ""
    return f"{failure.kind}{status} after {failure.attempts} attempt(s)"


def votes_for_response(analysis: Analysis) -> list[dict[str, Any]]:
    """``llm_votes`` of the response: every call, answers with their agreement score, failures with their error."""
    score_of = dict(zip(analysis.answer_indices, analysis.consensus.agreement_scores, strict=True))
    votes = []
    for i, step in enumerate(analysis.steps):
        r = step.result
        usage = r.usage
        votes.append(
            {
                "provider": r.provider,
                "model": r.model,
                "round": step.round,
                "agreement_score": score_of.get(i, 0.0),
                "latency_ms": round(r.latency_ms, 2),
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cost_usd": round(r.cost_usd, 8),
                "error": None if isinstance(r, ProviderAnswer) else _error_text(r),
                "verdict": step.verdict,
            }
        )
    return votes


def elapsed_ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 2)


__all__ = ["Analysis", "Analyzer", "ErrorKind", "NotEnoughAnswers", "elapsed_ms", "votes_for_response"]
