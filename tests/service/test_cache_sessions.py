"""Caches and sessions: bounds in entries and bytes, TTLs, the similar-query rules, sessions owned by their tenant;
the Redis backends against a real redis-server."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from wallbounce_service.cache import ENTRY_OVERHEAD, MemoryBackend, RedisBackend
from wallbounce_service.sessions import MemorySessionStore, RedisSessionStore, Turn
from wallbounce_service.similarity import SimilarIndex, same_question, words


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_backend_bounds_entries_bytes_and_ttl() -> None:
    clock = Clock()
    backend = MemoryBackend(max_entries=3, max_bytes=3 * (ENTRY_OVERHEAD + 12), clock=clock)
    for i in range(5):
        await backend.set(f"k{i}", b"x" * 10, ttl_s=10)
    assert len(backend) == 3 and await backend.get("k0") is None and await backend.get("k4") == b"x" * 10
    await backend.set("big", b"y" * 300, ttl_s=10)
    await backend.set("big2", b"z" * 300, ttl_s=10)
    assert backend.bytes <= backend.max_bytes and await backend.get("big") is None
    await backend.set("too-big", b"q" * 2000, ttl_s=10)
    assert await backend.get("too-big") is None
    clock.now += 11
    assert await backend.get("big2") is None and backend.bytes <= backend.max_bytes


# the pairs: the same wording with one meaning-bearing difference must never share an answer
DIFFERENT = [
    ("How do I recursively delete the cache folder ~/.cache/app?", "How do I recursively delete the root folder /?"),
    ("How do I recursively delete the cache folder?", "How do I recursively delete the root folder?"),
    ("Should we enable HTTP keep-alive on the balancer?", "Should we not enable HTTP keep-alive on the balancer?"),
    ("Should we enable keep-alive?", "Shouldn't we enable keep-alive?"),
    ("Is it safe to raise the connection pool size to 200?", "Is it safe to raise the connection pool size to 2000?"),
    ("Is it safe to raise the pool to 1.5 GB?", "Is it safe to raise the pool to 15 GB?"),
    ("Delete C:\\\\data\\\\tmp recursively?", "Delete C:\\\\data recursively?"),
    ("Should we enable it?", "Should we disable it?"),
    ("Is the service able to scale?", "Is the service unable to scale?"),
    ("Should A replace B?", "Should B replace A?"),
    ("キープアライブを有効にすべきですか？", "キープアライブを有効にすべきではありませんか？"),
    ("設定を有効にしますか", "設定を無効にしますか"),
]
SAME = [
    ("How should we configure retries?", "how should we configuer retries ?"),
    ("Please, how should we configure the retries", "How should we configure retries?"),
    ("Is TLS 1.3 recommended?", "is tls 1.3 recommended"),
]


@pytest.mark.parametrize(("a", "b"), DIFFERENT)
def test_a_different_question_is_never_the_same(a: str, b: str) -> None:
    assert not same_question(words(a), words(b))
    index = SimilarIndex(max_bytes=1 << 20)
    index.add("acme", a, "key-a")
    assert index.find("acme", b) is None


@pytest.mark.parametrize(("a", "b"), SAME)
def test_the_same_question_spelled_differently_matches_within_its_tenant_only(a: str, b: str) -> None:
    index = SimilarIndex(max_bytes=1 << 20)
    index.add("acme", a, "key-a")
    assert index.find("acme", b) == "key-a"
    assert index.find("globex", b) is None


def test_similar_index_is_bounded_in_bytes_and_skips_long_prompts() -> None:
    index = SimilarIndex(max_bytes=64 * 1024)
    for i in range(2000):
        index.add("acme", f"Question number {i}: should service {i} use retries with backoff?", f"k{i}")
    assert index.bytes <= 64 * 1024 and 0 < len(index) < 2000
    assert index.find("acme", "Question number 1999: should service 1999 use retries with backoff?") == "k1999"
    before = index.bytes
    index.add("acme", "x " * 5000, "long")
    assert index.bytes == before


async def test_memory_sessions_are_minted_owned_capped_and_expire() -> None:
    clock = Clock()
    store = MemorySessionStore(ttl_s=60, max_turns=3, max_sessions=2, clock=clock)
    s1 = await store.mint("acme\x1f")
    assert s1.startswith("ses_") and len(s1) >= 32 and s1 != await store.mint("acme\x1f")
    assert await store.history("acme\x1f", "made-up") is None
    for i in range(5):
        await store.append("acme\x1f", s1, Turn(f"q{i}", f"a{i}", i))
    history = await store.history("acme\x1f", s1)
    assert history is not None and [t.prompt for t in history] == ["q2", "q3", "q4"]
    assert await store.history("globex\x1f", s1) is None  # another tenant's id is simply not there
    assert await store.history("acme\x1fbob", s1) is None  # nor another user's
    await store.mint("acme\x1f")
    await store.mint("acme\x1f")
    assert await store.history("acme\x1f", s1) is None and len(store) == 2
    clock.now += 61
    assert len([k for k in list(store._data) if await store.history(*k) is not None]) == 0


async def test_memory_sessions_are_bounded_in_bytes() -> None:
    store = MemorySessionStore(ttl_s=60, max_turns=20, max_sessions=10_000, max_bytes=200_000)
    for _ in range(200):
        sid = await store.mint("acme\x1f")
        for _ in range(5):
            await store.append("acme\x1f", sid, Turn("q" * 1000, "a" * 1000, 0))
    assert store.bytes <= 200_000 and len(store) < 200


async def test_redis_backends(redis_server) -> None:
    client = aioredis.from_url(redis_server.url)
    try:
        await client.flushdb()
        store = RedisSessionStore(client, ttl_s=30, max_turns=2, prefix="t:session:")
        sid = await store.mint("acme\x1f")
        assert await store.history("acme\x1f", sid) == []
        for i in range(3):
            await store.append("acme\x1f", sid, Turn(f"質問{i}", f"answer {i}", float(i)))
        history = await store.history("acme\x1f", sid)
        assert history is not None and [t.prompt for t in history] == ["質問1", "質問2"]
        assert await store.history("globex\x1f", sid) is None and await store.history("acme\x1f", "ses_x") is None
        ttl = await client.pttl(f"t:session:acme\x1f:{sid}:turns")
        assert 0 < ttl <= 30_000
        backend = RedisBackend(client, prefix="t:cache:", max_value_bytes=10)
        await backend.set("k", b"value", ttl_s=0.2)
        await backend.set("big", b"x" * 11, ttl_s=5)
        assert await backend.get("k") == b"value" and await backend.get("big") is None
        ttl = await client.pttl("t:cache:k")
        assert 0 < ttl <= 200
    finally:
        await client.aclose()
