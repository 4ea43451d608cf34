"""Where cached values live: ``MemoryBackend`` (LRU bounded in entries and in bytes, keys included, per-entry TTL)
or ``RedisBackend`` (shared by replicas, TTL by ``SET PX``, values over the size cap not stored). Keys are built by
the caching decorators (``caching``) and always start with the tenant, so no look-up can reach another tenant's
values.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

#: bookkeeping per memory entry (the OrderedDict node, the tuple, the two objects), counted against ``max_bytes``
ENTRY_OVERHEAD = 200


class Backend(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...


class MemoryBackend:
    """LRU with a bound on entries and on total bytes; expired entries count as absent."""

    def __init__(self, max_entries: int, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    async def get(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= self.clock():
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return value

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        size = _size(key, value)
        if size > self.max_bytes:
            return
        if key in self._data:
            self._drop(key)
        self._data[key] = (self.clock() + ttl_s, value)
        self.bytes += size
        while self._data and (len(self._data) > self.max_entries or self.bytes > self.max_bytes):
            self._drop(next(iter(self._data)))

    def _drop(self, key: str) -> None:
        _, value = self._data.pop(key)
        self.bytes -= _size(key, value)


def _size(key: str, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD


class RedisBackend:
    """Values in Redis under a prefix, with TTLs; values larger than ``max_value_bytes`` are not stored."""

    def __init__(self, redis: Any, prefix: str = "wallbounce:cache:", max_value_bytes: int = 1024 * 1024) -> None:
        self.redis = redis
        self.prefix = prefix
        self.max_value_bytes = max_value_bytes

    async def get(self, key: str) -> bytes | None:
        value = await self.redis.get(self.prefix + key)
        return value if isinstance(value, bytes) or value is None else str(value).encode()

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        if len(value) <= self.max_value_bytes:
            await self.redis.set(self.prefix + key, value, px=max(1, int(ttl_s * 1000)))


#: parts longer than this together are hashed in a worker thread (hashlib releases the GIL on long inputs: about
#: 6 ms per MB of SHA-256 on the development machine that the event loop does not wait for)
OFF_LOOP_CHARS = 64 * 1024


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


async def digest_off_loop(*parts: str) -> str:
    """``digest`` of the parts, computed off the event loop when they are long (a long prompt in a cache key)."""
    if sum(len(p) for p in parts) < OFF_LOOP_CHARS:
        return digest(*parts)
    return await asyncio.to_thread(digest, *parts)
