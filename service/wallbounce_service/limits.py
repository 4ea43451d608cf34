"""Back-pressure: per-tenant rate limits and spend budgets (shared through Redis), and the in-flight caps.

- **Token buckets** (``take``): a tenant's request rate (``burst`` at once, refilled at ``requests_per_s``) and its
  provider-token rate (``tokens_per_min``). Empty bucket: ``RateLimited`` with the seconds until enough refills.
- **Budget** (``spend``): USD per UTC day; a request *reserves* its maximum estimated cost up front (so concurrent
  requests cannot overspend together) and settles the real cost when it ends, whatever the outcome.
- **Admission**: a process-wide cap on requests in flight (``Overloaded``) and the tenant's own concurrency cap
  (``RateLimited``), both refused at once with Retry-After — nothing waits in an unbounded queue.

The bucket and budget state lives in Redis when ``REDIS_URL`` is set (one Lua script per operation, time from the
Redis server, so every replica and both Deployments share one limit) and in memory otherwise. If Redis fails, the
process falls back to its memory state and logs it (a limit that fails open, never a 500).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .auth import Principal
from .config import LimitSettings
from .errors import InvalidRequest, Overloaded, RateLimited

log = logging.getLogger("wallbounce.limits")

Clock = Callable[[], float]

_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local force = ARGV[4] == "1"
local t = redis.call("TIME")
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call("HMGET", KEYS[1], "tokens", "ts")
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then tokens = capacity; ts = now end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local retry = 0
if force or tokens >= n then
  tokens = math.min(capacity, tokens - n)
  allowed = 1
else
  retry = (n - tokens) / rate
end
redis.call("HSET", KEYS[1], "tokens", tostring(tokens), "ts", tostring(now))
redis.call("PEXPIRE", KEYS[1], math.ceil(capacity / rate * 1000) + 60000)
return {allowed, tostring(retry)}
"""

_BUDGET_LUA = """
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local check = ARGV[3] == "1"
local spent = tonumber(redis.call("GET", KEYS[1]) or "0")
if check and spent + amount > limit then return {0, tostring(spent)} end
local total = redis.call("INCRBYFLOAT", KEYS[1], tostring(amount))
redis.call("EXPIRE", KEYS[1], tonumber(ARGV[4]))
return {1, tostring(total)}
"""


def refill(tokens: float, updated: float, capacity: float, rate: float, now: float) -> float:
    """A bucket's level at ``now``: what it had plus what refilled since, never above its capacity."""
    return min(capacity, tokens + max(0.0, now - updated) * rate)


class LimitStore(Protocol):
    async def take(self, key: str, capacity: float, rate: float, n: float, force: bool = False) -> tuple[bool, float]:
        """Takes ``n`` from a bucket: (allowed, seconds until it could be). ``force`` takes (or, negative, returns)
        regardless of the level."""
        ...

    async def spend(self, key: str, amount: float, limit: float, check: bool, ttl_s: int) -> tuple[bool, float]:
        """Adds ``amount`` to a running total unless ``check`` and it would pass ``limit``: (allowed, total)."""
        ...


class MemoryLimitStore:
    """The same state in this process (no Redis): one entry per tenant and bucket, budgets per tenant and day."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._totals: dict[str, tuple[float, float]] = {}

    async def take(self, key: str, capacity: float, rate: float, n: float, force: bool = False) -> tuple[bool, float]:
        now = self.clock()
        tokens, updated = self._buckets.get(key, (capacity, now))
        tokens = refill(tokens, updated, capacity, rate, now)
        if force or tokens >= n:
            self._buckets[key] = (min(capacity, tokens - n), now)
            return True, 0.0
        self._buckets[key] = (tokens, now)
        return False, (n - tokens) / rate

    async def spend(self, key: str, amount: float, limit: float, check: bool, ttl_s: int) -> tuple[bool, float]:
        now = self.clock()
        for stale in [k for k, (_, expires) in self._totals.items() if expires <= now]:
            del self._totals[stale]
        spent = self._totals.get(key, (0.0, 0.0))[0]
        if check and spent + amount > limit:
            return False, spent
        self._totals[key] = (spent + amount, now + ttl_s)
        return True, spent + amount


class RedisLimitStore:
    """The state in Redis, shared by every replica; the memory store stands in while Redis fails."""

    def __init__(self, redis: Any, prefix: str = "wallbounce:limits:") -> None:
        self.prefix = prefix
        self._bucket = redis.register_script(_BUCKET_LUA)
        self._budget = redis.register_script(_BUDGET_LUA)
        self.fallback = MemoryLimitStore()
        self._warned = 0.0

    async def take(self, key: str, capacity: float, rate: float, n: float, force: bool = False) -> tuple[bool, float]:
        try:
            allowed, retry = await self._bucket(keys=[self.prefix + key], args=[capacity, rate, n, int(force)])
            return bool(int(allowed)), float(retry)
        except Exception as exc:  # noqa: BLE001 - any Redis failure: fall back, never fail the request
            self._warn(exc)
            return await self.fallback.take(key, capacity, rate, n, force)

    async def spend(self, key: str, amount: float, limit: float, check: bool, ttl_s: int) -> tuple[bool, float]:
        try:
            allowed, total = await self._budget(keys=[self.prefix + key], args=[amount, limit, int(check), ttl_s])
            return bool(int(allowed)), float(total)
        except Exception as exc:  # noqa: BLE001 - as above
            self._warn(exc)
            return await self.fallback.spend(key, amount, limit, check, ttl_s)

    def _warn(self, exc: Exception) -> None:
        if time.monotonic() - self._warned > 30:
            self._warned = time.monotonic()
            log.warning("Redis unavailable for limits; this process limits on its own", extra={"error": repr(exc)})


@dataclass
class Reservation:
    """What a request holds against its tenant's limits until it settles."""

    tokens: int
    usd: float
    day: str


def _day_and_seconds_left(now: dt.datetime | None = None) -> tuple[str, int]:
    now = now or dt.datetime.now(dt.UTC)
    tomorrow = (now + dt.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return now.strftime("%Y-%m-%d"), max(1, math.ceil((tomorrow - now).total_seconds()))


class Limiter:
    """The tenant limits of one request: its rate, then its tokens and cost reserved, then settled."""

    def __init__(self, store: LimitStore) -> None:
        self.store = store

    async def check_request(self, principal: Principal) -> None:
        limits = principal.limits
        allowed, retry = await self.store.take(
            f"{principal.tenant}:requests", float(limits.burst), limits.requests_per_s, 1.0
        )
        if not allowed:
            raise RateLimited(
                f"tenant {principal.tenant}: more than {limits.requests_per_s:g} requests/s", retry_after_s=retry
            )

    async def reserve(self, principal: Principal, tokens: int, usd: float) -> Reservation:
        """Takes the request's estimated tokens and reserves its maximum cost, or refuses."""
        limits = principal.limits
        if tokens > limits.tokens_per_min:
            raise InvalidRequest(
                f"prompt: needs about {tokens} provider tokens, more than the tenant's {limits.tokens_per_min} per "
                "minute",
                field="prompt",
                code="prompt_exceeds_token_limit",
            )
        allowed, retry = await self.store.take(
            f"{principal.tenant}:tokens", float(limits.tokens_per_min), limits.tokens_per_min / 60.0, float(tokens)
        )
        if not allowed:
            raise RateLimited(
                f"tenant {principal.tenant}: more than {limits.tokens_per_min} provider tokens per minute",
                retry_after_s=retry,
            )
        day, left = _day_and_seconds_left()
        ok, spent = await self.store.spend(f"{principal.tenant}:usd:{day}", usd, limits.usd_per_day, True, 2 * 86400)
        if not ok:
            await self.store.take(
                f"{principal.tenant}:tokens", float(limits.tokens_per_min), limits.tokens_per_min / 60.0, -tokens, True
            )
            raise RateLimited(
                f"tenant {principal.tenant}: the budget of {limits.usd_per_day:g} USD per day is spent "
                f"({spent:.4f} USD so far today)",
                code="budget_exhausted",
                retry_after_s=left,
            )
        return Reservation(tokens, usd, day)

    async def settle(self, principal: Principal, held: Reservation, tokens_used: int, usd_used: float) -> None:
        """Replaces the reservation by what the request really used."""
        limits = principal.limits
        if tokens_used != held.tokens:
            await self.store.take(
                f"{principal.tenant}:tokens",
                float(limits.tokens_per_min),
                limits.tokens_per_min / 60.0,
                float(tokens_used - held.tokens),
                True,
            )
        if usd_used != held.usd:
            await self.store.spend(
                f"{principal.tenant}:usd:{held.day}", usd_used - held.usd, limits.usd_per_day, False, 2 * 86400
            )


class Admission:
    """Requests in flight: the process-wide cap and each tenant's ``max_concurrent`` (in this process)."""

    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings
        self.inflight = 0
        self._per_tenant: dict[str, int] = {}

    @contextlib.contextmanager
    def admit(self, principal: Principal) -> Iterator[None]:
        retry = float(self.settings.retry_after_s)
        if self.inflight >= self.settings.max_inflight:
            raise Overloaded(
                f"the service is at its limit of {self.settings.max_inflight} requests in flight", retry_after_s=retry
            )
        mine = self._per_tenant.get(principal.tenant, 0)
        if mine >= principal.limits.max_concurrent:
            raise RateLimited(
                f"tenant {principal.tenant}: more than {principal.limits.max_concurrent} requests at once",
                code="too_many_concurrent",
                retry_after_s=retry,
            )
        self.inflight += 1
        self._per_tenant[principal.tenant] = mine + 1
        try:
            yield
        finally:
            self.inflight -= 1
            left = self._per_tenant[principal.tenant] - 1
            if left:
                self._per_tenant[principal.tenant] = left
            else:
                del self._per_tenant[principal.tenant]
