"""Benchmark of the wall-bounce service's own cost (prints figures; not part of ``make test``).

Starts the provider simulators and the service as separate processes on loopback (the service through its CLI,
real SDKs, caches off so every request fans out), then reports:

1. added latency over the slowest provider, p50/p95/p99, for sequential ``critical`` requests (three providers):
   (a) client-observed latency minus the simulators' fixed delay (everything we add: SDKs, consensus, HTTP);
   (b) client-observed latency minus the slowest provider call as the service timed it (our code around the SDKs);
2. the highest sustained request rate of one service process with three providers (32, 64 and 128 concurrent
   clients; a run with any non-200 answer does not count);
3. the service's RSS (current and peak);
4. the consensus computation time for three 2 KB answers.

Usage: ``.venv/bin/python bench/service_overhead.py [--delay 0.05] [--requests 200] [--seconds 10]
[--concurrency 32,64,128]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from wallbounce_local.procs import Process, free_port
from wallbounce_service import consensus
from wallbounce_service.config import ConsensusSettings

FAKE_KEYS = {
    "OPENAI_API_KEY": "sk-bench-000000000000",
    "ANTHROPIC_API_KEY": "sk-ant-bench-000000000000",
    "GEMINI_API_KEY": "AIzaBENCH000000000000000000000000000",
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_kib(pid: int) -> tuple[int, int]:
    """Current and peak RSS; the peak is the kernel's high-water mark (psutil has no peak RSS on Linux)."""
    peak = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("VmHWM:"))
    return psutil.Process(pid).memory_info().rss // 1024, int(peak.split()[1])


def ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback
        return bool(resp.status == 200)


async def one(session: aiohttp.ClientSession, url: str, n: int) -> tuple[float, float, int]:
    body = {"prompt": f"Question {n}-{random.random()}: should we enable HTTP keep-alive?", "task_type": "critical"}
    start = time.perf_counter()
    async with session.post(url, json=body) as r:
        data: dict[str, Any] = await r.json()
        status = r.status
    elapsed = time.perf_counter() - start
    slowest = max((v["latency_ms"] for v in data.get("wall_bounce_analysis", {}).get("llm_votes", [])), default=0.0)
    return elapsed, slowest / 1000, status


async def sustained(session: aiohttp.ClientSession, gen: str, concurrency: int, seconds: float, service_pid: int,
                    sim_pid: int) -> float:
    """Requests/s that ``concurrency`` clients sustain for ``seconds``, with the CPU it took (printed)."""
    done = 0
    failures = 0
    stop = time.monotonic() + seconds

    async def worker(w: int) -> None:
        nonlocal done, failures
        n = 0
        while time.monotonic() < stop:
            n += 1
            _, _, status = await one(session, gen, w * 1_000_000 + n)
            if status == 200:
                done += 1
            else:
                failures += 1

    cpu0, sim_cpu0, client_cpu0 = cpu_seconds(service_pid), cpu_seconds(sim_pid), time.process_time()
    started = time.monotonic()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    took = time.monotonic() - started
    cpu, sim_cpu = cpu_seconds(service_pid) - cpu0, cpu_seconds(sim_pid) - sim_cpu0
    client_cpu = time.process_time() - client_cpu0
    print(
        f"throughput: {done / took:.0f} requests/s ({done / took * 3:.0f} provider calls/s) with "
        f"{concurrency} concurrent clients for {took:.1f} s; {failures} non-200"
    )
    if done:
        print(
            f"  service CPU {cpu / done * 1000:.2f} ms per request ({cpu / took:.2f} cores busy; one core "
            f"would carry about {done / cpu:.0f} requests/s); simulators {sim_cpu / took:.2f} cores busy, "
            f"this benchmark's client {client_cpu / took:.2f}"
        )
    return done / took if failures == 0 else 0.0


async def added_latency(session: aiohttp.ClientSession, gen: str, delay: float, requests: int) -> None:
    """``requests`` sequential critical requests after a warm-up: what the service adds over the providers."""
    for i in range(20):  # warm up
        await one(session, gen, i)
    totals, over_delay, over_slowest = [], [], []
    for i in range(requests):
        elapsed, slowest, status = await one(session, gen, 1000 + i)
        if status != 200:
            raise RuntimeError(f"request failed with {status}")
        totals.append(elapsed)
        over_delay.append(elapsed - delay)
        over_slowest.append(elapsed - slowest)
    print(f"simulated provider delay: {delay * 1000:.0f} ms; {requests} sequential critical requests "
          "(3 providers each)")
    for label, values in (
        ("(a) added over the simulators' delay", over_delay),
        ("(b) added over the slowest provider call", over_slowest),
    ):
        print(
            f"  {label}: p50 {percentile(values, 50) * 1000:.2f} ms, p95 {percentile(values, 95) * 1000:.2f} ms"
            f", p99 {percentile(values, 99) * 1000:.2f} ms"
        )
    print(f"  end-to-end: p50 {statistics.median(totals) * 1000:.1f} ms")


def consensus_timing() -> None:
    """The consensus computation alone, for three 2 KB answers (one of them Japanese)."""
    text = ("Retries should use exponential backoff with jitter, capped, and honour Retry-After from the server. ") * 30
    answers = [
        text[:2048] + "\nFINAL: Yes.",
        text[7:2055] + "\nFINAL: Yes, back off.",
        ("キープアライブはアイドル接続を保持します。" * 60)[:2048] + "\n最終回答: いいえ。",
    ]
    votes = [consensus.Vote(str(i), a) for i, a in enumerate(answers)]
    settings = ConsensusSettings()
    consensus.build("How should clients retry?", votes, settings)
    runs = []
    for _ in range(50):
        t0 = time.perf_counter()
        consensus.build("How should clients retry?", votes, settings)
        runs.append(time.perf_counter() - t0)
    print(
        f"consensus of three 2 KB answers: p50 {statistics.median(runs) * 1000:.2f} ms, max {max(runs) * 1000:.2f} ms"
    )


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="wallbounce-bench-"))
    profile = workdir / "service.prof"
    profile_args = ["-m", "cProfile", "-o", str(profile)] if args.profile else []
    sim_port, port = free_port(), free_port()
    sim_url, url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    script = '{"openai": {"latency_s": %s}, "gemini": {"latency_s": %s}, "anthropic": {"latency_s": %s}}' % (
        (args.delay,) * 3
    )
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_"))
    }
    sim = Process(
        "simulator",
        [sys.executable, "-m", "wallbounce_sim", "--port", str(sim_port), "--script", script],
        workdir / "sim.log",
        env=base_env,
    ).start()
    env = {
        **base_env,
        **FAKE_KEYS,
        "OPENAI_BASE_URL": f"{sim_url}/v1",
        "ANTHROPIC_BASE_URL": sim_url,
        "GOOGLE_GEMINI_BASE_URL": sim_url,
        "WALLBOUNCE_CACHE__ENABLED": "false",
        "WALLBOUNCE_LOG_LEVEL": "WARNING",
    }
    service = Process(
        "service",
        [sys.executable, *profile_args, "-m", "wallbounce_service.cli", "--host", "127.0.0.1", "--port", str(port)],
        workdir / "service.log",
        env=env,
    ).start()
    try:
        sim.wait_until(lambda: ready(f"{sim_url}/_sim/stats"), 30, "serving /_sim/stats")
        service.wait_until(lambda: ready(f"{url}/readyz"), 30, "ready (/readyz)")
        connector = aiohttp.TCPConnector(limit=max(args.concurrency) * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            gen = f"{url}/api/v1/generate"
            await added_latency(session, gen, args.delay, args.requests)
            assert service.pid is not None and sim.pid is not None
            rates = []
            for concurrency in args.concurrency:
                rates.append(await sustained(session, gen, concurrency, args.seconds, service.pid, sim.pid))
            print(f"highest sustained rate: {max(rates):.0f} requests/s")
        assert service.pid is not None
        rss, peak = rss_kib(service.pid)
        print(f"service RSS: {rss / 1024:.1f} MiB now, {peak / 1024:.1f} MiB peak")
    finally:
        service.stop()
        sim.stop()

    if args.profile and profile.exists():
        stats = pstats.Stats(str(profile))
        print("profile of the service process (cProfile, top 15 by own time):")
        stats.sort_stats("tottime").print_stats(15)

    consensus_timing()
    print(f"logs: {workdir}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.05, help="simulated provider latency in seconds")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(c) for c in text.split(",")],
        default=[32, 64, 128],
        help="concurrent clients for the sustained-rate runs, comma-separated (default 32,64,128)",
    )
    parser.add_argument("--profile", action="store_true", help="run the service under cProfile, print top entries")
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
