"""Keys, limits and budgets as units: the key store (hashes only, rotation, a broken file keeps the last good keys),
token buckets and budgets in memory and in a real redis-server, admission caps."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis

from wallbounce_service.auth import KeyStore, Principal, authorize, hash_key
from wallbounce_service.config import AuthSettings, LimitSettings, TenantLimits
from wallbounce_service.errors import Forbidden, InvalidRequest, Overloaded, RateLimited, Unauthenticated
from wallbounce_service.limits import Admission, Limiter, MemoryLimitStore, RedisLimitStore, refill

from .conftest import API_KEYS, write_keys_file


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_key_store_authenticates_by_hash_and_rotates(tmp_path: Path) -> None:
    path = write_keys_file(tmp_path / "keys.yaml")
    store = KeyStore(AuthSettings(keys_file=path))
    store.load()
    assert store.problem is None and store.authenticate(headers(API_KEYS["acme"])).tenant == "acme"
    assert store.authenticate({"X-API-Key": API_KEYS["globex"]}).key_id == "globex-key"
    assert all(API_KEYS["acme"] not in repr(p) for p in store._by_digest.values())  # only digests are kept
    for bad in ({}, headers("wbk_not_a_key_at_all_0000"), {"Authorization": f"Basic {API_KEYS['acme']}"}):
        with pytest.raises(Unauthenticated):
            store.authenticate(bad)
    # rotation: a new key, the old one disabled; picked up on the next load, no restart
    path.write_text(
        "tenants: {acme: {}}\n"
        f"keys:\n- {{id: new, tenant: acme, sha256: {hash_key('wbk_rotated_key_0123456789')}}}\n"
        f"- {{id: old, tenant: acme, key: {API_KEYS['acme']}, disabled: true}}\n"
    )
    store.load()
    assert store.authenticate(headers("wbk_rotated_key_0123456789")).key_id == "new"
    with pytest.raises(Unauthenticated):
        store.authenticate(headers(API_KEYS["acme"]))
    # a broken file is refused and reported; the last good keys stay
    path.write_text("keys:\n- {id: x, tenant: nobody, key: short}\n")
    store.load()
    assert store.problem is not None and "invalid" in store.problem
    assert store.authenticate(headers("wbk_rotated_key_0123456789")).key_id == "new"


def test_missing_keys_file_is_a_problem_and_anonymous_only_when_allowed(tmp_path: Path) -> None:
    store = KeyStore(AuthSettings(keys_file=tmp_path / "absent.yaml"))
    store.load()
    assert store.problem and "cannot be read" in store.problem
    with pytest.raises(Unauthenticated):
        store.authenticate({})
    open_store = KeyStore(AuthSettings(required=False))
    open_store.load()
    assert open_store.problem is None and open_store.authenticate({}).tenant == "anonymous"


def test_authorize_by_task_type() -> None:
    principal = Principal("k", "acme", TenantLimits(task_types=["basic"]))
    authorize(principal, "basic")
    with pytest.raises(Forbidden):
        authorize(principal, "critical")


def test_refill() -> None:
    assert refill(0, 0, capacity=10, rate=2, now=3) == 6 and refill(5, 0, capacity=10, rate=2, now=100) == 10


async def check_store(store: MemoryLimitStore | RedisLimitStore) -> None:
    assert await store.take("t:req", 2, 0.5, 1) == (True, 0.0)
    assert (await store.take("t:req", 2, 0.5, 1))[0]
    allowed, retry = await store.take("t:req", 2, 0.5, 1)
    assert not allowed and 1.5 < retry <= 2.0  # one token refills in 2 s at 0.5/s
    assert (await store.take("t:req", 2, 0.5, -2, force=True))[0]  # a refund
    assert (await store.take("t:req", 2, 0.5, 1))[0]
    assert await store.spend("t:usd", 0.6, 1.0, True, 60) == (True, pytest.approx(0.6))
    allowed, spent = await store.spend("t:usd", 0.6, 1.0, True, 60)
    assert not allowed and spent == pytest.approx(0.6)
    assert (await store.spend("t:usd", -0.5, 1.0, False, 60))[1] == pytest.approx(0.1)


async def test_memory_store() -> None:
    await check_store(MemoryLimitStore())


async def test_redis_store_and_its_fallback(redis_server) -> None:
    client = aioredis.from_url(redis_server.url)
    try:
        await client.flushdb()
        await check_store(RedisLimitStore(client, prefix="unit:"))
        assert await client.exists("unit:t:req") and await client.pttl("unit:t:usd") > 0
    finally:
        await client.aclose()
    dead = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    store = RedisLimitStore(dead)
    assert await store.take("t:req", 1, 1, 1) == (True, 0.0)  # Redis down: the process limits on its own
    assert not (await store.take("t:req", 1, 0.001, 1))[0]
    await dead.aclose()


async def test_limiter_reserves_and_settles() -> None:
    store = MemoryLimitStore()
    limiter = Limiter(store)
    p = Principal("k", "acme", TenantLimits(requests_per_s=1, burst=2, tokens_per_min=6000, usd_per_day=1.0))
    await limiter.check_request(p)
    await limiter.check_request(p)
    with pytest.raises(RateLimited) as err:
        await limiter.check_request(p)
    assert err.value.retry_after_s is not None and 0 < err.value.retry_after_s <= 1
    with pytest.raises(InvalidRequest):
        await limiter.reserve(p, 7000, 0.1)  # more than the bucket can ever hold
    held = await limiter.reserve(p, 5000, 0.6)
    with pytest.raises(RateLimited):
        await limiter.reserve(p, 2000, 0.1)  # tokens used up
    await limiter.settle(p, held, 1000, 0.05)  # it used less: the rest comes back
    held = await limiter.reserve(p, 2000, 0.6)
    with pytest.raises(RateLimited) as err:
        await limiter.reserve(p, 10, 0.6)  # 0.05 + 0.6 spent or held; another 0.6 would pass 1.0
    assert err.value.code == "budget_exhausted" and err.value.retry_after_s is not None
    assert err.value.retry_after_s <= 86400


def test_admission_caps() -> None:
    admission = Admission(LimitSettings(max_inflight=2))
    a = Principal("k", "acme", TenantLimits(max_concurrent=1))
    b = Principal("k2", "globex", TenantLimits(max_concurrent=5))
    with admission.admit(a):
        with pytest.raises(RateLimited):
            with admission.admit(a):
                pass
        with admission.admit(b):
            with pytest.raises(Overloaded):
                with admission.admit(b):
                    pass
    assert admission.inflight == 0 and admission._per_tenant == {}
