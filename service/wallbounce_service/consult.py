"""Consulting the panel of providers: the step of a request that costs money, and the one the caches wrap.

A ``Question`` (the prompt exactly as it leaves, with who asks and how) goes to a ``Consultant`` and comes back as a
``Consultation`` (the consensus and its votes), or a domain error. ``Panel`` is the real consultant: selection, then
the analyzer over this request's view of the provider pool (``upstream.RequestPool``). The caching decorators in
``caching`` have the same shape and sit in front of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import analyzer as analyzer_mod
from .config import Settings
from .errors import BudgetTooLow, NotEnoughProviders, ProvidersRefusedInput, ProvidersUnavailable
from .providers.router import ProviderPool
from .selection import CallPlan, SelectionError, select
from .upstream import Meter, ProviderResultCache, RequestPool

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


async def no_emit(_event: str, _data: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class Question:
    """One consultation: ``owner`` is the tenant and user it belongs to (every cache key starts with it)."""

    tenant: str
    owner: str
    prompt: str
    task_type: str
    mode: str
    depth: int
    budget_usd: float | None
    cacheable: bool = True
    meter: Meter = field(default_factory=lambda: Meter())
    emit: Emit = no_emit

    @property
    def scope(self) -> str:
        return f"{self.task_type}|{self.mode}|{self.depth}"


@dataclass
class Consultation:
    """The consensus and how it came about (the prompt's placeholders still in ``response`` and ``reasoning``)."""

    response: str
    reasoning: str
    confidence: float
    agreement: float
    coherence: float
    relevance: float
    providers_used: list[str]
    llm_votes: list[dict[str, Any]]
    rounds: int
    total_cost: float
    degraded: bool
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "cached"}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Consultation:
        names = {f.name for f in dataclasses.fields(cls)} - {"cached"}
        return cls(**{k: data[k] for k in names}, cached=True)


class Consultant(Protocol):
    async def consult(self, question: Question) -> Consultation: ...


class Panel:
    """The providers themselves: selection, the analyzer's rounds, the consensus."""

    def __init__(
        self,
        settings: Settings,
        pool: ProviderPool,
        upstream: asyncio.Semaphore,
        provider_cache: ProviderResultCache | None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.upstream = upstream
        self.provider_cache = provider_cache

    async def consult(self, question: Question) -> Consultation:
        pool = RequestPool(self.pool, self.upstream, self.provider_cache, question.owner, question.meter)
        plan = CallPlan.of(self.settings, question.task_type, question.mode, question.depth)
        models = {n: pool.model_of(n) for n in pool.names}
        try:
            selection = select(question.task_type, question.prompt, pool.available(), self.settings,
                               question.budget_usd, plan, models)
        except SelectionError as exc:
            if exc.code == "budget":
                raise BudgetTooLow(str(exc), field="budget_usd") from exc
            raise ProvidersUnavailable(str(exc)) from exc
        analyzer = analyzer_mod.Analyzer(self.settings, pool)
        try:
            analysis = await analyzer.run(
                question.prompt, question.task_type, question.mode, question.depth, selection, question.emit
            )
        except analyzer_mod.NotEnoughAnswers as exc:
            failures = [v for v in exc.votes if not v.get("ok", True)]
            if failures and all(str(v.get("error", "")).startswith("bad_request") for v in failures):
                raise ProvidersRefusedInput(
                    "every provider refused the prompt as invalid input", extra={"llm_votes": exc.votes}
                ) from exc
            raise NotEnoughProviders(str(exc), extra={"llm_votes": exc.votes}) from exc
        c = analysis.consensus
        return Consultation(
            response=c.response,
            reasoning=c.reasoning,
            confidence=c.confidence,
            agreement=c.agreement,
            coherence=c.coherence,
            relevance=c.relevance,
            providers_used=list(analysis.providers_used),
            llm_votes=analyzer_mod.votes_for_response(analysis),
            rounds=analysis.rounds,
            total_cost=round(analysis.total_cost, 8),
            degraded=analysis.degraded,
        )
