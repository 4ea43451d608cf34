"""Typed results and errors of one provider call, the provider interface, and cost from the price table.

Token conventions differ by vendor and are normalised here: ``input_tokens`` is every prompt token billed at the
input rate or a cache rate (OpenAI's input already includes cached tokens; Anthropic's excludes cache reads and
writes, which are added; Gemini's prompt count includes cached content), ``output_tokens`` includes reasoning /
thinking tokens (billed as output; Gemini reports them separately).
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import Price


class ErrorKind(enum.StrEnum):
    """Why a call failed; decides retry, fallback and cooldown."""

    RATE_LIMITED = "rate_limited"  # 429: retry after Retry-After, cool down
    OVERLOADED = "overloaded"  # 529 / 503: retry, counts as failure
    SERVER = "server"  # other 5xx: retry
    TIMEOUT = "timeout"  # our per-provider deadline or the SDK's
    CONNECTION = "connection"  # refused, reset, DNS
    AUTH = "auth"  # 401 / 403: no retry, cool down
    BAD_REQUEST = "bad_request"  # other 4xx: never retried
    EMPTY = "empty"  # the answer had no text
    COOLED_DOWN = "cooled_down"  # not called: the breaker is open


RETRYABLE = frozenset(
    {ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.SERVER, ErrorKind.TIMEOUT, ErrorKind.CONNECTION}
)
#: kinds that count against a provider's health (LiteLLM: 429, 401, 404, 408, 5xx; never other 4xx)
COOLDOWN_ELIGIBLE = RETRYABLE | {ErrorKind.AUTH}


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class ProviderAnswer:
    """A successful call."""

    provider: str
    model: str
    text: str
    usage: Usage
    cost_usd: float
    latency_ms: float
    attempts: int = 1


@dataclass(frozen=True)
class ProviderFailure:
    """A failed call (after the service's retries): never presented as an answer."""

    provider: str
    model: str
    kind: ErrorKind
    message: str
    status: int | None = None
    retry_after_s: float | None = None
    latency_ms: float = 0.0
    attempts: int = 1
    usage: Usage = Usage()
    cost_usd: float = 0.0


ProviderResult = ProviderAnswer | ProviderFailure


class ProviderCallError(Exception):
    """Raised by a client adapter for one failed HTTP call; the router turns it into a ``ProviderFailure``."""

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        status: int | None = None,
        retry_after_s: float | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.detail = detail[:500]
        self.kind = kind
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RawAnswer:
    """What a client adapter returns for one successful HTTP call."""

    text: str
    model: str
    usage: Usage


class ProviderClient(Protocol):
    """One vendor's SDK behind a single coroutine; SDK retries are off, the deadline is the caller's."""

    name: str
    model: str

    async def complete(self, system: str, prompt: str, max_output_tokens: int, timeout_s: float) -> RawAnswer: ...

    async def close(self) -> None: ...


#: structured output asked of the SDKs that support it (OpenAI Responses ``json_schema``, Gemini ``responseJsonSchema``)
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "description": "the full answer"},
        "final_answer": {"type": "string", "description": "the one-line final answer"},
        "verdict": {
            "type": "string",
            "enum": ["agree", "partially", "disagree", "none"],
            "description": "on the most recent previous answer when asked to review one, else none",
        },
    },
    "required": ["answer", "final_answer", "verdict"],
    "additionalProperties": False,
}


def canonical_text(raw: str) -> str:
    """A structured answer as the canonical text (``VERDICT:`` line, body, ``FINAL:`` line) the consensus engine
    parses; text that is not such a JSON object is returned unchanged (the parsed-marker path)."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return raw
    if not isinstance(data, dict) or not isinstance(data.get("answer"), str):
        return raw
    final = data.get("final_answer")
    verdict = data.get("verdict")
    lines = []
    if isinstance(verdict, str) and verdict in ("agree", "partially", "disagree"):
        lines.append(f"VERDICT: {verdict}")
    lines.append(data["answer"].strip())
    if isinstance(final, str) and final.strip():
        lines.append(f"FINAL: {' '.join(final.split())}")
    return "\n".join(line for line in lines if line)


def kind_for_status(status: int) -> ErrorKind:
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status in (503, 529):
        return ErrorKind.OVERLOADED
    if status == 408:
        return ErrorKind.TIMEOUT
    if status >= 500:
        return ErrorKind.SERVER
    if status in (401, 403):
        return ErrorKind.AUTH
    return ErrorKind.BAD_REQUEST


def parse_retry_after(headers: object) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (numbers only; an HTTP date is ignored)."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except (TypeError, ValueError):
            continue
        if value >= 0:
            return value
    return None


def cost_usd(price: Price | None, usage: Usage) -> float:
    """Cost of one call: uncached input, cached input, cache writes and output at the model's rates (tiered)."""
    if price is None:
        return 0.0
    above = price.tier_threshold is not None and usage.input_tokens > price.tier_threshold
    rate_in = price.input_above if above and price.input_above is not None else price.input
    rate_out = price.output_above if above and price.output_above is not None else price.output
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    rate_cached = price.cached_input if price.cached_input is not None else rate_in
    rate_write = price.cache_write if price.cache_write is not None else rate_in
    writes = min(usage.cache_write_tokens, usage.input_tokens - cached)
    uncached = usage.input_tokens - cached - writes
    total = uncached * rate_in + cached * rate_cached + writes * rate_write + usage.output_tokens * rate_out
    return total / 1_000_000
