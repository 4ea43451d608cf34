"""The wall-bounce service without its transport: ``WallBounce.answer(request) -> response body``.

One request, start to end: its session (owned by the tenant and user; an id the server never minted for them is
refused), the prompt that may leave (history included, secrets redacted or refused, personal data swapped for
placeholders — scanned off the event loop when long), the consultation under the overall deadline (the caches and
the panel behind ``consultant``), the confidence observed for the metrics (cached answers and low-consensus ones
too), the confidence gate, and the turn remembered. Failures are domain errors (``errors``); the HTTP layer maps them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import time
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .config import Settings
from .consult import Consultant, Consultation, Emit, Question, no_emit
from .errors import DeadlineExceeded, InvalidRequest, LowConsensus, UnknownSession
from .metrics import Metrics
from .redact import Anonymiser, SecretsFound, without_secrets
from .scanner import TooManyFindings
from .sessions import SessionStore, Turn
from .upstream import Meter

#: prompts longer than this are scanned in a worker thread, so that the event loop stays responsive
INLINE_SCAN_CHARS = 8192


@dataclass(frozen=True)
class AnswerRequest:
    """A validated request of an authenticated tenant."""

    tenant: str
    prompt: str
    task_type: str = "basic"
    mode: str = "parallel"
    depth: int = 3
    user_id: str | None = None
    session_id: str | None = None
    new_session: bool = False
    budget_usd: float | None = None
    meter: Meter = field(default_factory=Meter)
    started: float = field(default_factory=time.monotonic)

    @property
    def owner(self) -> str:
        return f"{self.tenant}\x1f{self.user_id or ''}"


class WallBounce:
    def __init__(
        self,
        settings: Settings,
        consultant: Consultant,
        sessions: SessionStore,
        metrics: Metrics,
        executor: Executor | None = None,
    ) -> None:
        self.settings = settings
        self.consultant = consultant
        self.sessions = sessions
        self.metrics = metrics
        self.executor = executor

    async def answer(self, request: AnswerRequest, emit: Emit = no_emit) -> dict[str, Any]:
        """The response body; raises a ``DomainError`` for every answer that is not a 200."""
        session_id, history = await self._session(request)
        anonymiser = Anonymiser(
            self.settings.secrets.action, self.settings.anonymise_prompts, self.settings.secrets.max_findings
        )
        prompt = await self._prepare(anonymiser, _with_history(request.prompt, history, self.settings))
        question = Question(
            tenant=request.tenant,
            owner=request.owner,
            prompt=prompt,
            task_type=request.task_type,
            mode=request.mode,
            depth=request.depth,
            budget_usd=request.budget_usd,
            cacheable=not history,
            meter=request.meter,
        )
        result = await self._consult(question, request.started, emit)
        self.metrics.observe_confidence(request.task_type, result.confidence)
        body = self._body(request, result, anonymiser, session_id)
        scores = ("confidence", "agreement", "coherence", "relevance", "reasoning")
        await emit("consensus", {k: body[k] for k in scores})
        minimum = self.settings.min_confidence.get(request.task_type, 0.7)
        if result.confidence < minimum:
            raise LowConsensus(
                f"confidence {result.confidence:.2f} is below the minimum {minimum:.2f} for task_type "
                f"{request.task_type} after {result.rounds} round(s)",
                result.confidence,
                body,
            )
        if session_id is not None:
            await self._remember(request, session_id, body["response"])
        await emit("final_answer", body)
        return body

    async def _session(self, request: AnswerRequest) -> tuple[str | None, list[Turn]]:
        if request.session_id is not None:
            history = await self.sessions.history(request.owner, request.session_id)
            if history is None:
                raise UnknownSession(
                    "session_id: unknown or expired session (sessions are created with new_session: true and "
                    "belong to the key's tenant and the user_id that created them)",
                    field="session_id",
                )
            return request.session_id, history
        if request.new_session:
            return await self.sessions.mint(request.owner), []
        return None, []

    async def _prepare(self, anonymiser: Anonymiser, text: str) -> str:
        """The text that may leave for the providers (``InvalidRequest`` if it may not)."""
        try:
            if len(text) <= INLINE_SCAN_CHARS:
                return anonymiser.anonymise(text)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, anonymiser.anonymise, text)
        except SecretsFound as exc:
            raise InvalidRequest(
                f"prompt: contains secrets ({', '.join(exc.kinds)}); remove them, they are never sent to providers",
                field="prompt",
                code="secret_in_prompt",
            ) from exc
        except TooManyFindings as exc:
            raise InvalidRequest(
                f"prompt: holds {exc} (secrets or personal data); send fewer",
                field="prompt",
                code="too_many_sensitive_values",
            ) from exc

    async def _consult(self, question: Question, started: float, emit: Emit) -> Consultation:
        votes = VoteLog(emit)
        remaining = max(0.001, self.settings.request_deadline_s - (time.monotonic() - started))
        try:
            async with asyncio.timeout(remaining):
                return await self.consultant.consult(dataclasses.replace(question, emit=votes.emit))
        except TimeoutError as exc:
            raise DeadlineExceeded(
                f"no consensus within the request deadline of {self.settings.request_deadline_s:g} s; the provider "
                "calls were cancelled",
                extra={"llm_votes": votes.votes()},
            ) from exc

    def _body(
        self, request: AnswerRequest, result: Consultation, anonymiser: Anonymiser, session_id: str | None
    ) -> dict[str, Any]:
        return {
            "response": anonymiser.restore(result.response),
            "confidence": result.confidence,
            "reasoning": anonymiser.restore(result.reasoning),
            "session_id": session_id,
            "task_type": request.task_type,
            "wall_bounce_analysis": {
                "providers_used": result.providers_used,
                "llm_votes": result.llm_votes,
                "rounds": result.rounds,
                "total_cost": result.total_cost,
                "processing_time_ms": round((time.monotonic() - request.started) * 1000, 2),
                "degraded": result.degraded,
            },
            "agreement": result.agreement,
            "coherence": result.coherence,
            "relevance": result.relevance,
            "variant": self.settings.variant,
            "srp_processed": self.settings.srp_processed,
            "cached": result.cached,
            "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }

    async def _remember(self, request: AnswerRequest, session_id: str, response: str) -> None:
        chars = self.settings.sessions.context_chars
        turn = Turn(without_secrets(request.prompt[:chars]), without_secrets(response[:chars]), time.time())
        await self.sessions.append(request.owner, session_id, turn)


def _with_history(prompt: str, history: list[Turn], settings: Settings) -> str:
    turns = settings.sessions.context_turns
    if not history or turns == 0:
        return prompt
    lines = ["Conversation so far:"]
    for turn in history[-turns:]:
        lines.append(f"User: {turn.prompt}")
        lines.append(f"Assistant: {turn.response}")
    lines.append(f"\nNew question: {prompt}")
    return "\n".join(lines)


class VoteLog:
    """The analyzer's events of one request, kept so that a deadline can report the votes that did arrive."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self.arrived: list[dict[str, Any]] = []
        self.asked: list[tuple[str, int]] = []
        self.round = 1

    async def emit(self, event: str, data: dict[str, Any]) -> None:
        if event == "provider_response":
            self.arrived.append(dict(data))
        elif event == "thinking":
            self.round = int(data.get("round", self.round))
            providers = data.get("providers") or ([data["provider"]] if data.get("provider") else [])
            self.asked.extend((str(p), self.round) for p in providers)
        await self._emit(event, data)

    def votes(self) -> list[dict[str, Any]]:
        """Every arrived answer or failure, then every call still open when the deadline passed."""
        out = [
            {
                "provider": v.get("provider"),
                "model": v.get("model"),
                "round": v.get("round", 1),
                "latency_ms": v.get("latency_ms", 0.0),
                "input_tokens": v.get("input_tokens", 0),
                "output_tokens": v.get("output_tokens", 0),
                "cost_usd": v.get("cost_usd", 0.0),
                "error": v.get("error"),
                "verdict": v.get("verdict"),
            }
            for v in self.arrived
        ]
        open_calls = collections.Counter(p for p, _ in self.asked) - collections.Counter(
            str(v.get("provider")) for v in self.arrived
        )
        for provider, rnd in reversed(self.asked):
            if open_calls[provider] > 0:
                open_calls[provider] -= 1
                out.append({"provider": provider, "round": rnd, "error": "no answer before the deadline"})
        return out
