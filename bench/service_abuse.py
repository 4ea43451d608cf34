"""Benchmark of the service under abuse (prints figures and their targets; not part of ``make test``).

The service runs as a process (its CLI, real SDKs, API keys on, caches on — the similar-query cache too, the worst
case for memory); the provider simulator runs in a thread of this process so that the calls in flight upstream can
be counted at every moment. Four figures:

1. RSS of the service after 200 distinct 32k-character prompts (target < 300 MiB);
2. ``/healthz`` p99 while four 1 MB adversarial prompts are processed (target < 50 ms) — with the limits raised so
   that they really reach the JSON parser and the secret scanner (2 MiB bodies, 1.1M-character prompts), and with
   the default limits (refused at 256 KiB);
3. upstream calls in flight with 500 concurrent clients (target ≤ the configured cap, ``limits.max_upstream``);
4. time to the answer with every provider hanging (target ≤ the deadline + 1 s): with the defaults the per-provider
   timeout (25 s) ends the calls first (503 ``not_enough_providers``: a fallback still has time); with a deadline
   below it, 504 with the votes.

Usage: ``.venv/bin/python bench/service_abuse.py [--skip-deadline]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from wallbounce_sim import Simulator

from wallbounce_local.procs import Process, free_port
from wallbounce_service.auth import hash_key

KEY = "wbk_bench_abuse_0123456789abcdefghij"
FAKE_KEYS = {
    "OPENAI_API_KEY": "sk-bench-000000000000",
    "ANTHROPIC_API_KEY": "sk-ant-bench-000000000000",
    "GEMINI_API_KEY": "AIzaBENCH000000000000000000000000000",
}
HEADERS = {"Authorization": f"Bearer {KEY}"}
MIB = 2**20


class ThreadedSimulator:
    def __init__(self) -> None:
        self.sim = Simulator()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedSimulator:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def script(self, **per_vendor: dict[str, Any]) -> None:
        def apply() -> None:
            self.sim.reset()
            for vendor, fields in per_vendor.items():
                self.sim.script(vendor, **fields)

        self.loop.call_soon_threadsafe(apply)
        time.sleep(0.1)

    def in_flight(self) -> int:
        return sum(st.in_flight for st in self.sim.stats.values())


@contextmanager
def service(workdir: Path, sim_url: str, env: dict[str, str]) -> Iterator[tuple[str, int]]:
    keys = workdir / "keys.yaml"
    unlimited = {"requests_per_s": 100000, "burst": 100000, "tokens_per_min": 10**12, "usd_per_day": 10**6,
                 "max_request_usd": 100, "max_concurrent": 100000}
    keys.write_text(yaml.safe_dump({"tenants": {"bench": unlimited},
                                    "keys": [{"id": "bench", "tenant": "bench", "sha256": hash_key(KEY)}]}))
    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("WALLBOUNCE_", "OPENAI_", "ANTHROPIC_",
                                                                     "GEMINI_", "GOOGLE_", "REDIS_"))}
    proc = Process(
        "service",
        [sys.executable, "-m", "wallbounce_service.cli", "--host", "127.0.0.1", "--port", str(port)],
        workdir / f"service-{port}.log",
        env={**base, **FAKE_KEYS, "OPENAI_BASE_URL": f"{sim_url}/v1", "ANTHROPIC_BASE_URL": sim_url,
             "GOOGLE_GEMINI_BASE_URL": sim_url, "WALLBOUNCE_AUTH__KEYS_FILE": str(keys),
             "WALLBOUNCE_LOG_LEVEL": "WARNING", **env},
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_until(lambda: _ready(url), 30, "ready")
        assert proc.pid is not None
        yield url, proc.pid
    finally:
        proc.stop()


def _ready(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as resp:  # noqa: S310 - loopback URL we built
            return bool(resp.status == 200)
    except OSError:
        return False


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def generate(session: aiohttp.ClientSession, url: str, body: Any = None, raw: bytes | None = None) -> int:
    data = raw if raw is not None else None
    kwargs: dict[str, Any] = {"data": data, "headers": {**HEADERS, "Content-Type": "application/json"}}
    if raw is None:
        kwargs = {"json": body, "headers": HEADERS}
    async with session.post(url + "/api/v1/generate", **kwargs) as resp:
        await resp.read()
        return resp.status


def distinct_prompt(n: int, chars: int = 32_000) -> str:
    words = [f"w{n}x{i}" for i in range(chars // 8)]
    return (f"Question {n}: " + " ".join(words))[:chars]


async def figure_rss(sim: ThreadedSimulator, workdir: Path) -> None:
    sim.script()
    env = {"WALLBOUNCE_CACHE__SIMILAR_ENABLED": "true"}
    with service(workdir, sim.sim.url, env) as (url, pid):
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            before = rss_mib(pid)
            statuses: Counter[int] = Counter()
            sem = asyncio.Semaphore(8)

            async def one(n: int) -> None:
                async with sem:
                    statuses[await generate(session, url, {"prompt": distinct_prompt(n)})] += 1

            await asyncio.gather(*(one(n) for n in range(200)))
            after = rss_mib(pid)
    print(f"1. RSS after 200 distinct 32k-character prompts: {after:.0f} MiB (at start {before:.0f} MiB; "
          f"answers {dict(statuses)}) — target < 300 MiB")


ADVERSARIAL = {
    "e-mail killer (1M letters, no @)": "a" * 1_000_000,
    "dotted run": "a." * 500_000,
    "digit pairs (card/phone candidates)": "1 " * 500_000,
    "password pairs": "password=abcd " * 71_000,
}


def probe_healthz(port: int, stop: Any, out: Any) -> None:
    """/healthz every 5 ms (blocking client) until ``stop`` is set, in a process of its own: neither this process's
    event loop nor the simulator thread's hold on its GIL is timed. Sends "ready", then the latencies."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    latencies: list[float] = []
    out.send("ready")
    while not stop.is_set():
        t0 = time.perf_counter()
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        latencies.append(time.perf_counter() - t0)
        time.sleep(0.005)
    conn.close()
    out.send(latencies)


async def healthz_p99(url: str, bodies: list[bytes]) -> tuple[float, float, Counter[int], int]:
    async with aiohttp.ClientSession() as session:  # a warm service: SDK clients and connections set up
        for n in range(3):
            await generate(session, url, {"prompt": f"Warm-up {n}: is the service up?", "task_type": "critical"})
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    receive, send = ctx.Pipe(duplex=False)
    prober = ctx.Process(target=probe_healthz, args=(int(url.rsplit(":", 1)[1]), stop, send))
    prober.start()
    try:
        assert await asyncio.to_thread(receive.recv) == "ready"
        await asyncio.sleep(0.3)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            statuses = Counter(await asyncio.gather(*(generate(session, url, raw=b) for b in bodies)))
        await asyncio.sleep(0.2)
    finally:
        stop.set()
    latencies: list[float] = await asyncio.to_thread(receive.recv)
    prober.join()
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p99 * 1000, max(ordered) * 1000, statuses, len(ordered)


async def figure_healthz(sim: ThreadedSimulator, workdir: Path) -> None:
    import json

    sim.script()
    mega = [json.dumps({"prompt": p}).encode() for p in ADVERSARIAL.values()]
    largest = [json.dumps({"prompt": p[:32_000]}).encode() for p in ADVERSARIAL.values()]
    raised = {"WALLBOUNCE_MAX_BODY_BYTES": str(2 * MIB), "WALLBOUNCE_MAX_PROMPT_CHARS": "1100000"}
    for label, env, bodies in (
        ("four 1 MB prompts, default limits: refused at 256 KiB", {}, mega),
        ("four 32k-character adversarial prompts, the largest the defaults accept: scanned, sent, answered", {},
         largest),
        ("four 1 MB prompts, limits raised to 2 MiB / 1.1M characters: scanned, sent, answered", raised, mega),
    ):
        with service(workdir, sim.sim.url, env) as (url, _):
            p99, worst, statuses, probes = await healthz_p99(url, bodies)
        print(f"2. /healthz while {label}: p99 {p99:.1f} ms, max {worst:.1f} ms over {probes} probes; "
              f"the prompts got {dict(statuses)} — target p99 < 50 ms")


async def figure_upstream(sim: ThreadedSimulator, workdir: Path) -> None:
    sim.script(**{v: {"latency_s": 0.5} for v in ("openai", "gemini", "anthropic")})
    env = {"WALLBOUNCE_CACHE__ENABLED": "false", "WALLBOUNCE_LIMITS__MAX_INFLIGHT": "1000"}
    cap = 96  # limits.max_upstream, the default
    with service(workdir, sim.sim.url, env) as (url, _):
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, sim.in_flight())
                time.sleep(0.002)

        sampler = threading.Thread(target=sample)
        sampler.start()
        connector = aiohttp.TCPConnector(limit=600)
        started = time.monotonic()
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
            statuses = Counter(await asyncio.gather(
                *(generate(session, url, {"prompt": f"Burst {i}?", "task_type": "critical"}) for i in range(500))
            ))
        took = time.monotonic() - started
        done.set()
        sampler.join()
    print(f"3. upstream calls in flight with 500 concurrent clients (critical: 3 providers each): peak {peak} — "
          f"target ≤ {cap} (limits.max_upstream); answers {dict(statuses)} in {took:.1f} s")


async def figure_deadline(sim: ThreadedSimulator, workdir: Path) -> None:
    sim.script(**{v: {"latency_s": 600} for v in ("openai", "gemini", "anthropic")})
    for label, env, deadline in (
        ("defaults: deadline 30 s, provider timeout 25 s", {}, 30.0),
        ("deadline 20 s, below the provider timeout", {"WALLBOUNCE_REQUEST_DEADLINE_S": "20"}, 20.0),
    ):
        with service(workdir, sim.sim.url, env) as (url, _):
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
                async def timed(n: int, session: aiohttp.ClientSession = session) -> tuple[int, float]:
                    t0 = time.monotonic()
                    status = await generate(session, url, {"prompt": f"Hanging {n}?", "task_type": "critical"})
                    return status, time.monotonic() - t0

                results = await asyncio.gather(*(timed(n) for n in range(4)))
        worst = max(t for _, t in results)
        print(f"4. every provider hanging ({label}): answered after {statistics.median(t for _, t in results):.2f} s "
              f"median, {worst:.2f} s worst of 4, statuses {sorted(s for s, _ in results)} — target ≤ "
              f"{deadline + 1:g} s (the deadline + 1 s)")


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="wallbounce-abuse-"))
    with ThreadedSimulator() as sim:
        await figure_rss(sim, workdir)
        await figure_healthz(sim, workdir)
        await figure_upstream(sim, workdir)
        if not args.skip_deadline:
            await figure_deadline(sim, workdir)
    print(f"logs: {workdir} (service logs with a traceback: {tracebacks(workdir) or 'none'})")


def tracebacks(workdir: Path) -> list[str]:
    logs = sorted(workdir.glob("service-*.log"))
    return [p.name for p in logs if re.search(r"Traceback|unhandled error", p.read_text())]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-deadline", action="store_true", help="skip the 30-second deadline figure")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
