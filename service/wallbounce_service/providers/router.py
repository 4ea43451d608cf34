"""The service's only retry loop, per-provider deadlines, and the cooldown breaker (LiteLLM's defaults).

- ``call`` runs one provider under its deadline: retries 429/5xx/timeouts/connection errors with exponential backoff
  that honours Retry-After, never other 4xx, and returns a typed ``ProviderAnswer`` or ``ProviderFailure``.
- ``Breaker`` cools a provider down for a few seconds when it answers 429 or fails more than half of at least five
  calls in the window — unless it is the last provider still available. After the cooldown it is tried again
  (half-open): one success keeps it, failures cool it again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..config import CooldownSettings, Price, ProviderSettings, RetrySettings
from ..metrics import Metrics
from ..protocol import OutputSchema
from .base import (
    COOLDOWN_ELIGIBLE,
    RETRYABLE,
    ErrorKind,
    ProviderAnswer,
    ProviderCallError,
    ProviderClient,
    ProviderFailure,
    ProviderResult,
    Usage,
    cost_usd,
)

log = logging.getLogger("wallbounce.providers")

Clock = Callable[[], float]


@dataclass
class _Health:
    calls: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=1000))
    cooled_until: float = 0.0


class Breaker:
    """Cooldown state of every configured provider; pure apart from the injected clock."""

    def __init__(
        self,
        names: list[str],
        settings: CooldownSettings,
        clock: Clock = time.monotonic,
        on_change: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._health = {name: _Health() for name in names}
        self._on_change = on_change or (lambda _n, _a: None)
        self._known_state = {name: True for name in names}

    def available(self, name: str) -> bool:
        self._refresh(name)
        return self._health[name].cooled_until <= self.clock()

    def available_names(self) -> list[str]:
        return [name for name in self._health if self.available(name)]

    def record(self, name: str, ok: bool, kind: ErrorKind | None = None, retry_after_s: float | None = None) -> None:
        now = self.clock()
        health = self._health[name]
        health.calls.append((now, ok))
        self._trim(health, now)
        if ok or kind not in COOLDOWN_ELIGIBLE:
            return
        failures = sum(1 for _, good in health.calls if not good)
        total = len(health.calls)
        tripped = kind is ErrorKind.RATE_LIMITED or (
            total >= self.settings.min_requests and failures / total > self.settings.failure_threshold
        )
        if not tripped:
            return
        others = [n for n in self._health if n != name and self.available(n)]
        if not others:
            log.warning("provider not cooled down: it is the last one available", extra={"provider": name})
            return
        duration = self.settings.cooldown_s
        if retry_after_s is not None and kind is ErrorKind.RATE_LIMITED:
            duration = max(duration, min(retry_after_s, 60.0))
        health.cooled_until = now + duration
        health.calls.clear()  # after the cooldown the provider starts afresh (half-open)
        log.warning("provider cooled down", extra={"provider": name, "seconds": duration, "reason": str(kind)})
        self._refresh(name)

    def _trim(self, health: _Health, now: float) -> None:
        horizon = now - self.settings.window_s
        while health.calls and health.calls[0][0] < horizon:
            health.calls.popleft()

    def _refresh(self, name: str) -> None:
        state = self._health[name].cooled_until <= self.clock()
        if state != self._known_state[name]:
            self._known_state[name] = state
            self._on_change(name, state)


class ProviderPool:
    """The configured providers, their breaker, and the retrying call."""

    def __init__(
        self,
        clients: Mapping[str, ProviderClient],
        provider_settings: Mapping[str, ProviderSettings],
        prices: Mapping[str, Price],
        retry: RetrySettings,
        cooldown: CooldownSettings,
        metrics: Metrics,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clients = dict(clients)
        self.settings = provider_settings
        self.prices = prices
        self.retry = retry
        self.metrics = metrics
        self.breaker = Breaker(list(self.clients), cooldown, clock, on_change=metrics.set_available)
        for name in self.clients:
            metrics.set_available(name, True)

    @property
    def names(self) -> list[str]:
        return list(self.clients)

    def available(self) -> list[str]:
        return self.breaker.available_names()

    def model_of(self, name: str) -> str:
        return self.clients[name].model

    async def call(self, name: str, system: str, prompt: str, schema: OutputSchema | None = None) -> ProviderResult:
        """One provider, retried by us only, within its own deadline; never raises except on cancellation.
        ``schema``: ask for that structured output (the answer's ``data``)."""
        timeout_s = self.settings[name].timeout_s
        start = time.monotonic()
        deadline = start + timeout_s
        attempt = 0
        last = self._timed_out(name)
        while attempt < self.retry.attempts:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            attempt += 1
            outcome = await self._attempt(name, system, prompt, schema, remaining, attempt)
            if isinstance(outcome, ProviderAnswer):
                return dataclasses.replace(outcome, latency_ms=(time.monotonic() - start) * 1000, attempts=attempt)
            last = outcome
            if outcome.kind not in RETRYABLE or attempt >= self.retry.attempts:
                break
            delay = self._delay(attempt, outcome.retry_after_s)
            if delay is None or time.monotonic() + delay >= deadline:
                break
            await asyncio.sleep(delay)
        return dataclasses.replace(last, latency_ms=(time.monotonic() - start) * 1000, attempts=attempt, usage=Usage(),
                                   cost_usd=0.0)

    async def _attempt(
        self, name: str, system: str, prompt: str, schema: OutputSchema | None, remaining: float, attempt: int
    ) -> ProviderResult:
        """One HTTP call within ``remaining`` seconds, counted in the metrics and the breaker."""
        client = self.clients[name]
        conf = self.settings[name]
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(remaining):
                raw = await client.complete(system, prompt, conf.max_output_tokens, remaining, schema)
        except ProviderCallError as exc:
            failure = ProviderFailure(name, client.model, exc.kind, str(exc), exc.status, exc.retry_after_s)
            detail = exc.detail
        except TimeoutError:
            detail = ""
            failure = self._timed_out(name)
        except asyncio.CancelledError:
            self.metrics.provider_call(name, "cancelled", time.monotonic() - t0, 0, 0, 0.0)
            raise
        except Exception as exc:  # noqa: BLE001 - an SDK's unexpected error is a typed failure, not a crash
            detail = repr(exc)
            failure = ProviderFailure(name, client.model, ErrorKind.SERVER, f"{name}: {type(exc).__name__}")
        else:
            cost = cost_usd(self.prices.get(client.model), raw.usage)
            self.metrics.provider_call(
                name, "success", time.monotonic() - t0, raw.usage.input_tokens, raw.usage.output_tokens, cost
            )
            self.breaker.record(name, True)
            return ProviderAnswer(name, raw.model, raw.text, raw.usage, cost, 0.0, 1, raw.data)
        self.metrics.provider_call(name, str(failure.kind), time.monotonic() - t0, 0, 0, 0.0)
        self.breaker.record(name, False, failure.kind, failure.retry_after_s)
        log.info(
            "provider call failed",
            extra={"provider": name, "kind": str(failure.kind), "status": failure.status, "attempt": attempt,
                   "detail": detail},
        )
        return failure

    def _timed_out(self, name: str) -> ProviderFailure:
        seconds = self.settings[name].timeout_s
        return ProviderFailure(name, self.model_of(name), ErrorKind.TIMEOUT, f"{name}: no answer within {seconds:g} s")

    def _delay(self, attempt: int, retry_after_s: float | None) -> float | None:
        if retry_after_s is not None:
            if retry_after_s > self.retry.max_retry_after_s:
                return None  # asked to wait longer than we are willing to: fall back instead
            return retry_after_s
        backoff = min(self.retry.max_delay_s, self.retry.base_delay_s * 2.0 ** (attempt - 1))
        return backoff * (1 - 0.25 * random.random())

    async def close(self) -> None:
        for client in self.clients.values():
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - closing is best effort at shutdown
                log.debug("closing a provider client failed", extra={"provider": client.name})
