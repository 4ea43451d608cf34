"""Caches and sessions: bounds, TTLs, off switch, hit/miss metrics; the Redis backends against a real redis-server."""

from __future__ import annotations

import redis.asyncio as aioredis

from wallbounce_service.cache import Caches, MemoryBackend, RedisBackend
from wallbounce_service.config import CacheSettings
from wallbounce_service.metrics import Metrics
from wallbounce_service.sessions import MemorySessionStore, RedisSessionStore, Turn


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sample(metrics: Metrics, cache: str, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "wallbounce_cache_requests_total", {"variant": metrics.variant, "cache": cache, "result": result}
    )
    return value or 0.0


async def test_memory_backend_bounds_entries_bytes_and_ttl() -> None:
    clock = Clock()
    backend = MemoryBackend(max_entries=3, max_bytes=100, clock=clock)
    for i in range(5):
        await backend.set(f"k{i}", b"x" * 10, ttl_s=10)
    assert len(backend) == 3 and await backend.get("k0") is None and await backend.get("k4") == b"x" * 10
    await backend.set("big", b"y" * 60, ttl_s=10)
    await backend.set("big2", b"z" * 60, ttl_s=10)
    assert backend.bytes <= 100 and await backend.get("big") is None
    await backend.set("too-big", b"q" * 101, ttl_s=10)
    assert await backend.get("too-big") is None
    clock.now += 11
    assert await backend.get("big2") is None and backend.bytes <= 100


async def test_caches_count_hits_and_misses_and_can_be_switched_off() -> None:
    metrics = Metrics("canary")
    caches = Caches(CacheSettings(), metrics)
    assert await caches.get_exact("basic", "What is DNS?") is None
    await caches.put_exact("basic", "What is DNS?", {"response": "names to addresses"})
    assert await caches.get_exact("basic", "What is DNS?") == {"response": "names to addresses"}
    assert await caches.get_exact("premium", "What is DNS?") is None  # scope is part of the key
    assert sample(metrics, "exact", "hit") == 1 and sample(metrics, "exact", "miss") == 2
    similar = await caches.get_similar("basic", "What is DNS ?")
    assert similar is not None and similar[0]["response"] == "names to addresses" and similar[1] >= 0.92
    assert await caches.get_similar("basic", "How do I rotate TLS certificates?") is None
    assert sample(metrics, "similar", "hit") == 1 and sample(metrics, "similar", "miss") == 1
    off = Caches(CacheSettings(enabled=False), metrics)
    await off.put_exact("basic", "q", {"r": 1})
    assert await off.get_exact("basic", "q") is None
    assert sample(metrics, "exact", "miss") == 2  # a switched-off cache is not consulted at all


async def test_memory_sessions_cap_turns_sessions_and_expire() -> None:
    clock = Clock()
    store = MemorySessionStore(ttl_s=60, max_turns=3, max_sessions=2, clock=clock)
    for i in range(5):
        await store.append("s1", Turn(f"q{i}", f"a{i}", i))
    assert [t.prompt for t in await store.history("s1")] == ["q2", "q3", "q4"]
    await store.append("s2", Turn("q", "a", 0))
    await store.append("s3", Turn("q", "a", 0))
    assert await store.history("s1") == [] and len(store) == 2
    clock.now += 61
    assert await store.history("s3") == []


async def test_redis_backends(redis_server) -> None:
    client = aioredis.from_url(redis_server.url)
    try:
        await client.flushdb()
        store = RedisSessionStore(client, ttl_s=30, max_turns=2, prefix="t:session:")
        for i in range(3):
            await store.append("abc", Turn(f"質問{i}", f"answer {i}", float(i)))
        assert [t.prompt for t in await store.history("abc")] == ["質問1", "質問2"]
        ttl = await client.pttl("t:session:abc")
        assert 0 < ttl <= 30_000
        backend = RedisBackend(client, prefix="t:cache:", max_value_bytes=10)
        await backend.set("k", b"value", ttl_s=0.2)
        await backend.set("big", b"x" * 11, ttl_s=5)
        assert await backend.get("k") == b"value" and await backend.get("big") is None
        ttl = await client.pttl("t:cache:k")
        assert 0 < ttl <= 200
    finally:
        await client.aclose()
