"""The wall-bounce analyzer: runs the rounds of one request and hands the answers and reviews to the consensus engine.

It only orchestrates (no caching: the request core's caches wrap it). The rounds and their prompts are in
``protocol``; every call asks for the vendor's native structured output.

- **parallel**: every selected provider answers at once (round 1); a provider that fails after the pool's retries
  is replaced by the next one in the fallback order. Then, per the task type's ``consensus.cross_examination``
  policy — ``always``, or ``auto`` when some pair of canonical finals cannot be compared by type — every answering
  provider cross-examines all the final answers (round 2, in parallel), and, at the same time, every provider whose
  final is free text restates its own final in the type the question admits (yes/no, a number, an option).
- **sequential** (bounce): round 1 proposes; each later round gives the next provider the question and the other
  providers' latest answers, asks for a verdict on each and its own answer. It never stops before every selected
  provider (or its stand-in) has answered — ``critical`` always hears all three — and then stops as soon as the
  consensus reaches the task's minimum confidence, else after ``max(depth + 1, providers)`` rounds. A reviewer
  whose answer copies the one it reviewed is marked: its vote and its verdicts weigh nothing.

At least two distinct providers must answer, else ``NotEnoughAnswers`` (HTTP 503): a single answer is never
presented as a consensus. The overall deadline is the caller's (``asyncio.timeout``); cancellation (deadline or a
disconnected client) propagates into every provider call.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from . import consensus as engine
from . import protocol
from .config import Settings
from .finals import compare
from .protocol import Item, OutputSchema, ReviewOutput, StructuredAnswer
from .providers.base import ErrorKind, ProviderAnswer, ProviderFailure, ProviderResult
from .providers.router import ProviderPool
from .selection import Selection

log = logging.getLogger("wallbounce.analyzer")

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
API_VERDICT = {"agree": "agree", "partial": "partially", "disagree": "disagree"}


class NotEnoughAnswers(Exception):
    """Fewer than two distinct providers answered."""

    def __init__(self, message: str, votes: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.votes = votes


@dataclass
class Step:
    """One provider call: an answer (``role`` answer), a cross-examination or a sequential review."""

    round: int
    result: ProviderResult
    verdict: str | None = None  # the API's verdict of a review (partially for partial)
    role: str = "answer"
    answer: StructuredAnswer | None = None
    review: ReviewOutput | None = None
    items: tuple[Item, ...] = ()
    copied: bool = False


@dataclass
class Analysis:
    consensus: engine.Consensus
    steps: list[Step]
    rounds: int
    degraded: bool
    providers_used: list[str]
    total_cost: float
    answer_indices: list[int] = field(default_factory=list)  # step index of each consensus vote
    cross_examined: bool = False


async def _no_emit(_event: str, _data: dict[str, Any]) -> None:
    return None


class Analyzer:
    def __init__(self, settings: Settings, pool: ProviderPool) -> None:
        self.settings = settings
        self.pool = pool

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
        return await self._parallel(prompt, task_type, selection, emit)

    async def _ask(self, provider: str, system: str, prompt: str, schema: OutputSchema) -> ProviderResult:
        return await self.pool.call(provider, system, prompt, schema)

    def _weight(self, provider: str) -> float:
        conf = self.settings.providers.get(provider)
        return conf.weight if conf is not None else 1.0

    # --- parallel ------------------------------------------------------------------------------------------------

    async def _parallel(self, prompt: str, task_type: str, selection: Selection, emit: Emit) -> Analysis:
        steps, degraded = await self._answer_round(prompt, selection, emit)
        answers = [i for i, s in enumerate(steps) if isinstance(s.result, ProviderAnswer)]
        degraded = degraded or len(answers) < len(selection.primary)
        answers = self._require_two(steps, answers)
        votes = [self._vote(steps[i]) for i in answers]
        policy = self.settings.consensus.cross_examination.get(task_type, "auto")
        records: list[engine.ReviewRecord] = []
        if policy == "always" or (policy == "auto" and self._undecided(votes)):
            cross = self._cross_examine(prompt, votes, steps, emit)
            records, votes = await asyncio.gather(cross, self._restate(prompt, votes, steps, emit))
        result = engine.build(prompt, votes, self.settings.consensus, records)
        rounds = max(s.round for s in steps)
        return self._analysis(result, steps, answers, rounds, degraded)

    def _undecided(self, votes: list[engine.Vote]) -> bool:
        """Some pair of canonical finals cannot be compared by type."""
        c = self.settings.consensus
        return any(
            compare(a.final, b.final, c.number_rel_tolerance, c.number_abs_tolerance) is None
            for n, a in enumerate(votes)
            for b in votes[n + 1 :]
        )

    async def _answer_round(self, prompt: str, selection: Selection, emit: Emit) -> tuple[list[Step], bool]:
        fallbacks = list(selection.fallbacks)
        steps: list[Step] = []
        degraded = False
        await emit("thinking", {"stage": "fan-out", "providers": selection.primary})

        def ask(p: str) -> asyncio.Task[ProviderResult]:
            return asyncio.create_task(self._ask(p, protocol.ANSWER_SYSTEM, prompt, protocol.ANSWER), name=p)

        pending = {ask(p) for p in selection.primary}
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    result = task.result()
                    steps.append(self._answer_step(1, result))
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
                                pending.add(ask(nxt))
                                break
        finally:
            await _cancel(pending)
        return steps, degraded

    def _answer_step(self, rnd: int, result: ProviderResult) -> Step:
        step = Step(rnd, result)
        if isinstance(result, ProviderAnswer):
            step.answer = protocol.parse_answer(result.text, result.data, self.settings.consensus.max_key_claims)
        return step

    async def _cross_examine(
        self, prompt: str, votes: list[engine.Vote], steps: list[Step], emit: Emit
    ) -> list[engine.ReviewRecord]:
        await emit("thinking", {"stage": "cross-examination", "providers": [v.provider for v in votes]})
        lang = protocol.language(prompt)
        shown = [(j, False, protocol.final_payload(v.answer)) for j, v in enumerate(votes)]

        async def examine(k: int) -> tuple[int, tuple[Item, ...], ProviderResult]:
            probe = (k, True, protocol.probe_payload(votes[k].answer.final, lang))
            items = tuple(protocol.shuffled_items([*shown, probe], f"{prompt}\x1f{votes[k].provider}"))
            text = protocol.cross_examination_prompt(prompt, list(items))
            system = protocol.CROSS_EXAMINATION_SYSTEM
            return k, items, await self._ask(votes[k].provider, system, text, protocol.CROSS_EXAMINATION)

        tasks = [asyncio.create_task(examine(k)) for k in range(len(votes))]
        records: list[engine.ReviewRecord] = []
        try:
            for next_done in asyncio.as_completed(tasks):
                k, items, result = await next_done
                output = protocol.parse_reviews(result.data) if isinstance(result, ProviderAnswer) else None
                step = Step(2, result, _worst_verdict(output, items, k), "review", review=output, items=items)
                steps.append(step)
                await emit("provider_response", _step_event(step))
                if output is not None:
                    records.append(engine.ReviewRecord(k, items, output, own_listed=True))
        finally:
            await _cancel(set(tasks))
        return sorted(records, key=lambda r: r.reviewer)

    async def _restate(
        self, prompt: str, votes: list[engine.Vote], steps: list[Step], emit: Emit
    ) -> list[engine.Vote]:
        """Round 2 beside the cross-examination: each provider whose final is free text restates its own final in
        the type the question admits; a typed restatement is what the typed comparison reads from then on."""
        free = [k for k, v in enumerate(votes) if v.answer.final.kind == "claim"]
        if not free:
            return votes
        await emit("thinking", {"stage": "restatement", "providers": [votes[k].provider for k in free]})

        async def restate(k: int) -> tuple[int, ProviderResult]:
            text = protocol.restatement_prompt(prompt, votes[k].answer)
            return k, await self._ask(votes[k].provider, protocol.RESTATEMENT_SYSTEM, text, protocol.RESTATEMENT)

        tasks = [asyncio.create_task(restate(k)) for k in free]
        restated = list(votes)
        try:
            for next_done in asyncio.as_completed(tasks):
                k, result = await next_done
                final = protocol.parse_restatement(result.data) if isinstance(result, ProviderAnswer) else None
                typed = final if final is not None and final.typed else None
                shown = dataclasses.replace(votes[k].answer, final=typed) if typed is not None else None
                steps.append(Step(2, result, role="restatement", answer=shown))
                await emit("provider_response", _step_event(steps[-1]))
                if typed is not None:
                    restated[k] = dataclasses.replace(votes[k], restated=typed)
        finally:
            await _cancel(set(tasks))
        return restated

    # --- sequential ----------------------------------------------------------------------------------------------

    async def _sequential(self, prompt: str, task_type: str, depth: int, selection: Selection, emit: Emit) -> Analysis:
        """Proposal, then reviews that also answer; see the module docstring for when it stops."""
        order = list(selection.primary)
        fallbacks = list(selection.fallbacks)
        steps: list[Step] = []
        degraded = False
        latest: dict[str, int] = {}  # provider → index of its latest answer
        origin: dict[int, str] = {}  # step index → provider whose words it carries (a copy carries the original's)
        rounds = 0
        target_conf = self.settings.min_confidence.get(task_type, 0.7)
        turn = 0
        for rnd in range(1, max(depth + 1, len(order)) + 1):
            rounds = rnd
            last_provider = steps[max(latest.values())].result.provider if latest else None
            usable = set(self.pool.available())  # a provider cooled down meanwhile is skipped
            rotated = [p for p in order[turn:] + order[:turn] if p in usable] or order[turn:] + order[:turn]
            candidates = [p for p in rotated if p != last_provider] or rotated
            answered: Step | None = None
            tried: set[str] = set()
            while answered is None:
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
                step = await self._bounce(prompt, rnd, provider, steps, latest, origin, emit)
                steps.append(step)
                await emit("provider_response", _step_event(steps[-1]))
                if isinstance(step.result, ProviderAnswer):
                    answered = step
                    latest[provider] = len(steps) - 1
                    turn = (order.index(provider) + 1) % len(order)
                else:
                    degraded = True
            if answered is None:
                break
            if len(latest) >= max(2, len(selection.primary)):  # every selected provider (or its stand-in) heard
                votes, records = self._sequential_inputs(steps, latest)
                interim = engine.build(prompt, votes, self.settings.consensus, records)
                if interim.confidence >= target_conf and interim.agreement >= self.settings.agreement_target:
                    await emit("thinking", {"stage": "converged", "round": rnd})
                    break
        answers = self._require_two(steps, sorted(latest.values()))
        votes, records = self._sequential_inputs(steps, latest)
        result = engine.build(prompt, votes, self.settings.consensus, records)
        return self._analysis(result, steps, answers, rounds, degraded)

    async def _bounce(
        self,
        prompt: str,
        rnd: int,
        provider: str,
        steps: list[Step],
        latest: dict[str, int],
        origin: dict[int, str],
        emit: Emit,
    ) -> Step:
        """One sequential call: the proposal, or a review of the other providers' latest answers."""
        previous = sorted(i for p, i in latest.items() if p != provider)[-3:]
        await emit("thinking", {"stage": "review" if previous else "propose", "round": rnd, "provider": provider})
        if not previous:
            result = await self._ask(provider, protocol.ANSWER_SYSTEM, prompt, protocol.ANSWER)
            step = self._answer_step(rnd, result)
            if step.answer is not None:
                origin[len(steps)] = provider
            return step
        chars = self.settings.consensus.review_answer_chars
        entries: list[tuple[int, bool, dict[str, Any]]] = []
        for i in previous:
            answer = steps[i].answer
            assert answer is not None
            entries.append((i, False, protocol.review_payload(answer, chars)))
        recent = steps[previous[-1]].answer
        assert recent is not None
        entries.append((previous[-1], True, protocol.probe_payload(recent.final, protocol.language(prompt), True)))
        items = tuple(protocol.shuffled_items(entries, f"{prompt}\x1f{provider}\x1f{rnd}"))
        text = protocol.review_prompt(prompt, list(items))
        result = await self._ask(provider, protocol.REVIEW_SYSTEM, text, protocol.REVIEW)
        if not isinstance(result, ProviderAnswer):
            return Step(rnd, result, role="review")
        output = protocol.parse_reviews(result.data, self.settings.consensus.max_key_claims)
        answer = output.answer if output is not None and output.answer is not None else protocol.parse_answer(
            result.text, result.data, self.settings.consensus.max_key_claims)
        step = Step(rnd, result, _latest_verdict(output, items), "review", answer, output, items)
        me = len(steps)
        origin[me] = provider
        for i in previous:
            reviewed = steps[i].answer
            shown = dataclasses.replace(reviewed, answer=reviewed.answer[:chars]) if reviewed is not None else None
            mine = origin.get(i) == provider  # a copy of this reviewer's own earlier words is not copying
            if not mine and shown is not None and engine.is_copy(answer, shown, self.settings.consensus):
                step.copied = True
                origin[me] = origin.get(i, steps[i].result.provider)
        return step

    def _sequential_inputs(
        self, steps: list[Step], latest: dict[str, int]
    ) -> tuple[list[engine.Vote], list[engine.ReviewRecord]]:
        order = sorted(latest, key=lambda p: p)
        index = {latest[p]: n for n, p in enumerate(order)}
        votes = []
        for p in order:
            step = steps[latest[p]]
            assert step.answer is not None
            votes.append(engine.Vote(p, step.answer, self._weight(p), independent=not step.copied))
        records = []
        for p in order:
            step = steps[latest[p]]
            if step.review is None:
                continue
            items = tuple(Item(it.id, index.get(it.target, -1), it.probe, it.payload) for it in step.items)
            records.append(engine.ReviewRecord(index[latest[p]], items, step.review, own_listed=False))
        return votes, records

    # --- shared --------------------------------------------------------------------------------------------------

    def _vote(self, step: Step) -> engine.Vote:
        assert step.answer is not None
        return engine.Vote(step.result.provider, step.answer, self._weight(step.result.provider))

    def _require_two(self, steps: list[Step], answers: list[int]) -> list[int]:
        providers = sorted({steps[i].result.provider for i in answers})
        if len(providers) < 2:
            raise NotEnoughAnswers(
                f"only {len(providers)} provider(s) answered ({', '.join(providers) or 'none'}); "
                "a consensus needs at least two",
                [_step_event(s) for s in steps],
            )
        return sorted(answers, key=lambda i: steps[i].result.provider)  # canonical order: stable

    def _analysis(
        self, result: engine.Consensus, steps: list[Step], answers: list[int], rounds: int, degraded: bool
    ) -> Analysis:
        providers = sorted({steps[i].result.provider for i in answers})
        total_cost = sum(s.result.cost_usd for s in steps)
        reviewed = any(s.role == "review" for s in steps)
        return Analysis(result, steps, rounds, degraded, providers, total_cost, answers, reviewed)


async def _cancel(tasks: set[Any]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


def _worst_verdict(output: ReviewOutput | None, items: tuple[Item, ...], reviewer: int) -> str | None:
    """A cross-examination's summary verdict: its harshest on another provider's answer (probes and its own left
    out)."""
    if output is None:
        return None
    by_id = {it.id: it for it in items}
    rank = {"agree": 0, "partial": 1, "disagree": 2}
    seen = [r.verdict for r in output.reviews if (it := by_id.get(r.id)) and not it.probe and it.target != reviewer]
    return API_VERDICT[max(seen, key=rank.__getitem__)] if seen else None


def _latest_verdict(output: ReviewOutput | None, items: tuple[Item, ...]) -> str | None:
    """A sequential review's verdict on the most recent previous answer."""
    if output is None:
        return None
    real = [it for it in items if not it.probe]
    if not real:
        return None
    recent = max(real, key=lambda it: it.target)
    found = next((r.verdict for r in output.reviews if r.id == recent.id), None)
    return API_VERDICT[found] if found else None


def _step_event(step: Step) -> dict[str, Any]:
    r = step.result
    data: dict[str, Any] = {
        "provider": r.provider,
        "model": r.model,
        "round": step.round,
        "role": step.role,
        "latency_ms": round(r.latency_ms, 2),
    }
    if isinstance(r, ProviderAnswer):
        data.update(
            ok=True,
            input_tokens=r.usage.input_tokens,
            output_tokens=r.usage.output_tokens,
            cost_usd=round(r.cost_usd, 8),
            verdict=step.verdict,
            final=step.answer.final.text if step.answer is not None else None,
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


__all__ = ["Analysis", "Analyzer", "ErrorKind", "NotEnoughAnswers", "votes_for_response"]
