"""Caches: exact prompt, similar query, provider result and consensus — bounded, with TTLs, metrics and an off switch.

Two backends hold the values: ``MemoryBackend`` (LRU bounded in entries and bytes, per-entry TTL) and
``RedisBackend`` (shared by replicas, TTL by ``SET EX``, oversized values refused). The similar-query cache keeps a
bounded in-process index of recent prompts' character n-grams; a prompt whose cosine to an indexed one reaches the
threshold reuses that prompt's exact-cache entry (from whichever backend holds it).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from .config import CacheSettings
from .consensus import ngrams
from .metrics import Metrics

CACHE_NAMES = ("exact", "similar", "provider", "consensus")


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
        if len(value) > self.max_bytes:
            return
        if key in self._data:
            self._drop(key)
        self._data[key] = (self.clock() + ttl_s, value)
        self.bytes += len(value)
        while self._data and (len(self._data) > self.max_entries or self.bytes > self.max_bytes):
            self._drop(next(iter(self._data)))

    def _drop(self, key: str) -> None:
        _, value = self._data.pop(key)
        self.bytes -= len(value)


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


def digest(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


class _SimilarIndex:
    """The last ``max_entries`` prompts as normalised n-gram vectors, for the similar-query cache.

    A look-up compares only prompts of similar length (a cosine near 1 needs it), so its cost stays small.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[str, int, dict[str, float], float]] = OrderedDict()

    @staticmethod
    def _vector(prompt: str) -> tuple[int, dict[str, float], float]:
        compact = re.sub(r"[\W_]+", " ", prompt).strip()  # punctuation and spacing do not make a new question
        vec = {g: float(c) for g, c in ngrams(compact, (2, 3)).items()}
        return len(compact), vec, math.sqrt(sum(v * v for v in vec.values())) or 1.0

    def add(self, scope: str, prompt: str, key: str) -> None:
        size, vec, norm = self._vector(prompt)
        self._items[key] = (scope, size, vec, norm)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def nearest(self, scope: str, prompt: str) -> tuple[str, float] | None:
        size, vec, norm = self._vector(prompt)
        best: tuple[str, float] | None = None
        for key, (item_scope, other_size, other, other_norm) in self._items.items():
            if item_scope != scope or abs(other_size - size) > 0.2 * max(size, other_size, 1):
                continue
            dot = sum(v * other.get(g, 0.0) for g, v in vec.items())
            score = dot / (norm * other_norm)
            if best is None or score > best[1]:
                best = (key, score)
        return best


class Caches:
    """The four caches of the service over one backend."""

    def __init__(self, settings: CacheSettings, metrics: Metrics, backend: Backend | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.backend: Backend = backend or MemoryBackend(settings.max_entries, settings.max_bytes)
        self._similar = _SimilarIndex(min(settings.max_entries, 512))

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    async def _get(self, cache: str, key: str) -> Any | None:
        if not self.enabled:
            return None
        raw = await self.backend.get(f"{cache}:{key}")
        self.metrics.cache(cache, raw is not None)
        return None if raw is None else json.loads(raw)

    async def _set(self, cache: str, key: str, value: Any) -> None:
        if self.enabled:
            await self.backend.set(
                f"{cache}:{key}", json.dumps(value, ensure_ascii=False).encode(), self.settings.ttl_s
            )

    # exact prompt → whole response
    async def get_exact(self, scope: str, prompt: str) -> Any | None:
        return await self._get("exact", digest(scope, prompt))

    async def put_exact(self, scope: str, prompt: str, value: Any) -> None:
        key = digest(scope, prompt)
        await self._set("exact", key, value)
        if self.enabled:
            self._similar.add(scope, prompt, key)

    async def get_similar(self, scope: str, prompt: str) -> tuple[Any, float] | None:
        """A cached response for a prompt similar enough to ``prompt`` (and the similarity), or None."""
        if not self.enabled:
            return None
        found = self._similar.nearest(scope, prompt)
        value = None
        if found is not None and found[1] >= self.settings.similar_threshold:
            raw = await self.backend.get(f"exact:{found[0]}")
            value = None if raw is None else json.loads(raw)
        self.metrics.cache("similar", value is not None)
        return None if value is None or found is None else (value, found[1])

    async def get_provider(self, provider: str, model: str, system: str, prompt: str) -> Any | None:
        return await self._get("provider", digest(provider, model, system, prompt))

    async def put_provider(self, provider: str, model: str, system: str, prompt: str, value: Any) -> None:
        await self._set("provider", digest(provider, model, system, prompt), value)

    async def get_consensus(self, key: str) -> Any | None:
        return await self._get("consensus", key)

    async def put_consensus(self, key: str, value: Any) -> None:
        await self._set("consensus", key, value)
