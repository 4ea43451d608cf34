"""Typed results and errors of one provider call, the provider interface, and cost from the price table.

A call may ask for structured output (an ``OutputSchema``); each adapter uses its vendor's native feature and
returns the decoded object in ``RawAnswer.data``.

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
from ..protocol import OutputSchema


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
    data: dict[str, Any] | None = None  # the structured output, when asked for and delivered


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
    """What a client adapter returns for one successful HTTP call: the text, and the JSON object when the call
    asked for structured output and the vendor delivered it (else None: the caller falls back to the text)."""

    text: str
    model: str
    usage: Usage
    data: dict[str, Any] | None = None


class ProviderClient(Protocol):
    """One vendor's SDK behind a single coroutine; SDK retries are off, the deadline is the caller's."""

    name: str
    model: str

    async def complete(
        self, system: str, prompt: str, max_output_tokens: int, timeout_s: float, schema: OutputSchema | None = None
    ) -> RawAnswer: ...

    async def close(self) -> None: ...


def decode_structured(text: str) -> Any:
    """The JSON object a vendor returned for a structured request, or None when the text is not one."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        return None
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


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
