"""Soak: the service under steady load with ever-new prompts and sessions keeps a flat RSS, because its
caches and in-memory sessions are bounded. ``CHAOS_SOAK_SECONDS`` (default 20) sets the length; ``make
chaos`` runs it for 10 minutes. RSS is read from the service's own ``process_resident_memory_bytes``."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import time

import aiohttp
import pytest

from .conftest import auth_header
from .processes import running_stack

SECONDS = float(os.environ.get("CHAOS_SOAK_SECONDS", "20"))
WORKERS = 6


async def _rss(session: aiohttp.ClientSession, url: str) -> float:
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    match = re.search(r"^process_resident_memory_bytes (\S+)$", text, re.M)
    assert match, "the service exports no process_resident_memory_bytes"
    return float(match.group(1))


async def _soak(url: str) -> tuple[list[float], dict[int, int]]:
    counter = itertools.count()
    statuses: dict[int, int] = {}
    samples: list[float] = []
    deadline = time.monotonic() + SECONDS

    async def worker(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            n = next(counter)
            body = {"prompt": f"Soak question {n}: should request {n} enable feature {n % 97}?",
                    "new_session": True, "task_type": "basic"}
            async with session.post(f"{url}/api/v1/generate", json=body) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

    async def sampler(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < deadline:
            samples.append(await _rss(session, url))
            await asyncio.sleep(max(SECONDS / 40, 0.5))

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, headers=auth_header()) as session:
        await asyncio.gather(sampler(session), *(worker(session) for _ in range(WORKERS)))
        samples.append(await _rss(session, url))
    return samples, statuses


@pytest.mark.timeout(SECONDS + 240)
def test_steady_load_keeps_rss_flat(tmp_path_factory: pytest.TempPathFactory) -> None:
    env = {"WALLBOUNCE_CACHE__MAX_ENTRIES": "200", "WALLBOUNCE_SESSIONS__MAX_SESSIONS": "200"}
    with running_stack(tmp_path_factory.mktemp("soak"), variant="stable", extra_env=env) as urls:
        samples, statuses = asyncio.run(_soak(urls["url"]))
    requests = sum(statuses.values())
    assert requests > SECONDS * 5, statuses  # it really was under load
    assert not any(code >= 500 for code in statuses), statuses
    # after a warm-up quarter (imports, pools, caches filling to their bounds) the RSS stays flat
    steady = samples[len(samples) // 4:]
    third = max(len(steady) // 3, 1)
    early, late = max(steady[:third]), max(steady[-third:])
    mib = 2**20
    print(f"soak {SECONDS:.0f}s: {requests} requests, RSS {samples[0] / mib:.0f} → {early / mib:.0f} → "
          f"{late / mib:.0f} MiB")
    assert late <= early * 1.10 + 8 * mib, (early / mib, late / mib)
