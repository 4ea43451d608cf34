"""The provider pool as one request sees it: the process-wide cap on upstream calls, the provider-result cache
(keyed by tenant and user) and the meter of what the request used.

``RequestPool`` decorates the shared ``ProviderPool``: the analyzer calls it like the pool itself. Every provider
call waits for a slot of the upstream semaphore (at most ``limits.max_upstream`` calls in flight per process; the
waiters are bounded by the requests in flight, and the request deadline bounds the wait), and every answer or failure
is added to the request's ``Meter`` — tokens and cost, whatever way the request ends, for the budgets and the audit
line.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from .cache import Backend, digest_off_loop
from .metrics import Metrics
from .protocol import OutputSchema
from .providers.base import ProviderAnswer, ProviderResult, Usage
from .providers.router import ProviderPool


@dataclass
class Meter:
    """What one request consumed upstream."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    calls: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, result: ProviderResult) -> None:
        self.calls.append(result.provider)
        self.input_tokens += result.usage.input_tokens
        self.output_tokens += result.usage.output_tokens
        self.cost_usd += result.cost_usd


class ProviderResultCache:
    """One provider's answer to one exact prompt, per tenant and user (``owner``)."""

    def __init__(self, backend: Backend, ttl_s: float, metrics: Metrics) -> None:
        self.backend = backend
        self.ttl_s = ttl_s
        self.metrics = metrics

    @staticmethod
    async def key(tenant: str, owner: str, provider: str, model: str, system: str, prompt: str) -> str:
        return f"{tenant}:provider:{await digest_off_loop(owner, provider, model, system, prompt)}"

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = await self.backend.get(key)
        self.metrics.cache("provider", raw is not None)
        return None if raw is None else dict(json.loads(raw))

    async def put(self, key: str, value: dict[str, Any]) -> None:
        await self.backend.set(key, json.dumps(value, ensure_ascii=False).encode(), self.ttl_s)


class RequestPool(ProviderPool):
    """``ProviderPool`` for one request (a decorator: anything not overridden is the shared pool's own)."""

    def __init__(  # the shared pool is wrapped, not re-initialised
        self,
        inner: ProviderPool,
        upstream: asyncio.Semaphore,
        cache: ProviderResultCache | None,
        owner: str,
        meter: Meter,
    ) -> None:
        self._inner = inner
        self._upstream = upstream
        self._cache = cache
        self._owner = owner
        self._tenant = owner.split("\x1f", 1)[0]
        self._meter = meter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    @property
    def names(self) -> list[str]:
        return self._inner.names

    def available(self) -> list[str]:
        return self._inner.available()

    def model_of(self, name: str) -> str:
        return self._inner.model_of(name)

    async def call(self, name: str, system: str, prompt: str, schema: OutputSchema | None = None) -> ProviderResult:
        model = self._inner.model_of(name)
        key = ""
        if self._cache is not None:
            shape = schema.name if schema is not None else ""
            key = await ProviderResultCache.key(self._tenant, self._owner, name, model, system, f"{shape}\x1f{prompt}")
            hit = await self._cache.get(key)
            if hit is not None:
                return ProviderAnswer(name, str(hit["model"]), str(hit["text"]), Usage(), 0.0, 0.0, 0,
                                      data=hit.get("data"))
        async with self._upstream:
            result = await self._inner.call(name, system, prompt, schema)
        self._meter.add(result)
        if self._cache is not None and isinstance(result, ProviderAnswer):
            await self._cache.put(key, {"model": result.model, "text": result.text, "data": result.data})
        return result

    async def close(self) -> None:  # the shared pool is closed by its owner, never by one request
        return None
