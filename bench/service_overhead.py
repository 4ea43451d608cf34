"""Benchmark of the wall-bounce service's own cost (prints figures; not part of ``make test``).

Starts the provider simulators and the service as separate processes on loopback (the service through its CLI,
real SDKs, caches off so every request fans out; API keys and tenant limits on: every request is authenticated,
admitted, rate-checked, reserved and settled, with limits set high enough not to refuse the benchmark's own load),
then reports:

1. added latency over the slowest provider, p50/p95/p99, for sequential ``critical`` requests (three providers):
   (a) client-observed latency minus the simulators' fixed delay per round (everything we add: SDKs, consensus,
       HTTP);
   (b) client-observed latency minus the slowest provider call of each round as the service timed it (our code
       around the SDKs);
2. the highest sustained request rate of one service process with three providers (32, 64 and 128 concurrent
   clients; a run with any non-200 answer does not count);
3. the service's RSS (current and peak);
4. the consensus computation time for three 2 KB answers with a full cross-examination.

``--cross-examination always`` measures the same with the second round (every provider judges every final) forced
for every request — the new mode's cost; the default (``auto``) cross-examines only when the canonical finals
cannot be compared by type, which the simulators' default yes/no answers can.

Usage: ``.venv/bin/python bench/service_overhead.py [--delay 0.05] [--requests 200] [--seconds 10]
[--concurrency 32,64,128] [--cross-examination auto|always|off]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import yaml

from wallbounce_local.procs import Process, free_port
from wallbounce_service import consensus, protocol
from wallbounce_service.consensus_config import ConsensusSettings
from wallbounce_service.finals import Final

API_KEY = "wbk_bench_overhead_0123456789abcdef"
#: the benchmark's tenant: every limit is checked on every request, none is reached
TENANT_LIMITS = {"requests_per_s": 100_000, "burst": 100_000, "tokens_per_min": 10**12, "usd_per_day": 10**6,
                 "max_request_usd": 100, "max_concurrent": 100_000}

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


async def one(session: aiohttp.ClientSession, url: str, n: int) -> tuple[float, float, int, int]:
    """(elapsed s, the slowest provider call of each round summed in s, HTTP status, rounds)."""
    body = {"prompt": f"Question {n}-{random.random()}: should we enable HTTP keep-alive?", "task_type": "critical"}
    start = time.perf_counter()
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {API_KEY}"}) as r:
        data: dict[str, Any] = await r.json()
        status = r.status
    elapsed = time.perf_counter() - start
    slowest: dict[int, float] = {}
    for v in data.get("wall_bounce_analysis", {}).get("llm_votes", []):
        slowest[v["round"]] = max(slowest.get(v["round"], 0.0), v["latency_ms"])
    return elapsed, sum(slowest.values()) / 1000, status, max(slowest, default=1)


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
            _, _, status, _ = await one(session, gen, w * 1_000_000 + n)
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
        f"throughput: {done / took:.0f} requests/s with "
        f"{concurrency} concurrent clients for {took:.1f} s; {failures} non-200"
    )
    if done:
        print(
            f"  service CPU {cpu / done * 1000:.2f} ms per request ({cpu / took:.2f} cores busy; one core "
            f"would carry about {done / cpu:.0f} requests/s); simulators {sim_cpu / took:.2f} cores busy, "
            f"this benchmark's client {client_cpu / took:.2f}"
        )
    return done / took if failures == 0 else 0.0


@contextlib.contextmanager
def processes(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[Process, Process, str]]:
    """The simulators and the service (keys and limits on, caches off) as processes; yields them and the service's
    generate URL once both are ready."""
    sim_port, port = free_port(), free_port()
    sim_url, url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{port}"
    script = json.dumps({vendor: {"latency_s": args.delay} for vendor in ("openai", "gemini", "anthropic")})
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_"))
    }
    sim = Process("simulator", [sys.executable, "-m", "wallbounce_sim", "--port", str(sim_port), "--script", script],
                  workdir / "sim.log", env=base_env).start()
    keys = workdir / "keys.yaml"
    keys.write_text(yaml.safe_dump({"tenants": {"bench": TENANT_LIMITS}, "keys": [
        {"id": "bench", "tenant": "bench", "sha256": hashlib.sha256(API_KEY.encode()).hexdigest()}]}))
    env = {
        **base_env,
        **FAKE_KEYS,
        "WALLBOUNCE_AUTH__KEYS_FILE": str(keys),
        "OPENAI_BASE_URL": f"{sim_url}/v1",
        "ANTHROPIC_BASE_URL": sim_url,
        "GOOGLE_GEMINI_BASE_URL": sim_url,
        "WALLBOUNCE_CACHE__ENABLED": "false",
        "WALLBOUNCE_CONSENSUS__CROSS_EXAMINATION__CRITICAL": args.cross_examination,
        "WALLBOUNCE_LOG_LEVEL": "WARNING",
    }
    profile = ["-m", "cProfile", "-o", str(workdir / "service.prof")] if args.profile else []
    service = Process(
        "service",
        [sys.executable, *profile, "-m", "wallbounce_service.cli", "--host", "127.0.0.1", "--port", str(port)],
        workdir / "service.log",
        env=env,
    ).start()
    try:
        sim.wait_until(lambda: ready(f"{sim_url}/_sim/stats"), 30, "serving /_sim/stats")
        service.wait_until(lambda: ready(f"{url}/readyz"), 30, "ready (/readyz)")
        yield sim, service, f"{url}/api/v1/generate"
    finally:
        service.stop()
        sim.stop()


async def added_latency(session: aiohttp.ClientSession, gen: str, args: argparse.Namespace) -> None:
    """Figure 1: ``args.requests`` sequential requests after a warm-up; prints the added latency."""
    for i in range(20):  # warm up
        await one(session, gen, i)
    totals, over_delay, over_slowest, rounds = [], [], [], []
    for i in range(args.requests):
        elapsed, slowest, status, n_rounds = await one(session, gen, 1000 + i)
        if status != 200:
            raise RuntimeError(f"request failed with {status}")
        totals.append(elapsed)
        rounds.append(n_rounds)
        over_delay.append(elapsed - args.delay * n_rounds)
        over_slowest.append(elapsed - slowest)
    print(
        f"simulated provider delay: {args.delay * 1000:.0f} ms; {args.requests} sequential critical requests "
        f"(3 providers each; cross-examination {args.cross_examination}: "
        f"{statistics.fmean(rounds):.2f} rounds per request)"
    )
    for label, values in (
        ("(a) added over the simulators' delay", over_delay),
        ("(b) added over the slowest provider call", over_slowest),
    ):
        print(
            f"  {label}: p50 {percentile(values, 50) * 1000:.2f} ms, p95 {percentile(values, 95) * 1000:.2f} ms"
            f", p99 {percentile(values, 99) * 1000:.2f} ms"
        )
    print(f"  end-to-end: p50 {statistics.median(totals) * 1000:.1f} ms")


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="wallbounce-bench-"))
    with processes(args, workdir) as (sim, service, gen):
        connector = aiohttp.TCPConnector(limit=max(args.concurrency) * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            await added_latency(session, gen, args)
            assert service.pid is not None and sim.pid is not None
            rates = [await sustained(session, gen, c, args.seconds, service.pid, sim.pid) for c in args.concurrency]
            print(f"highest sustained rate: {max(rates):.0f} requests/s")
        rss, peak = rss_kib(service.pid)
        print(f"service RSS: {rss / 1024:.1f} MiB now, {peak / 1024:.1f} MiB peak")
    profile = workdir / "service.prof"
    if args.profile and profile.exists():
        print("profile of the service process (cProfile, top 15 by own time):")
        pstats.Stats(str(profile)).sort_stats("tottime").print_stats(15)
    print_consensus_time()
    print(f"logs: {workdir}")


def print_consensus_time() -> None:
    """The engine alone: three 2 KB free-text answers, each cross-examined by the other two (the worst case)."""
    text = ("Retries should use exponential backoff with jitter, capped, and honour Retry-After from the server. ") * 30
    bodies = [text[:2048], text[7:2055], ("キープアライブはアイドル接続を保持します。" * 60)[:700]]
    finals = ["Back off exponentially.", "Use capped exponential backoff.", "いいえ。"]
    answers = [
        protocol.StructuredAnswer(b, Final.claim(f), (f,), True, "How should clients retry?")
        for b, f in zip(bodies, finals, strict=True)
    ]
    votes = [consensus.Vote(str(i), a) for i, a in enumerate(answers)]
    records = []
    for k in range(3):
        items = (*(protocol.Item(f"R{j}", j, False) for j in range(3)), protocol.Item("R3", k, True))
        verdicts: tuple[protocol.Verdict, ...] = ("agree", "agree", "disagree", "disagree")  # R3: the probe
        reviews = tuple(protocol.Review(f"R{j}", v) for j, v in enumerate(verdicts))
        records.append(consensus.ReviewRecord(k, items, protocol.ReviewOutput(reviews, finals[k]), True))
    settings = ConsensusSettings()
    consensus.build("How should clients retry?", votes, settings, records)
    runs = []
    for _ in range(50):
        t0 = time.perf_counter()
        consensus.build("How should clients retry?", votes, settings, records)
        runs.append(time.perf_counter() - t0)
    print(
        f"consensus of three 2 KB answers with three cross-examinations: p50 {statistics.median(runs) * 1000:.2f} ms, "
        f"max {max(runs) * 1000:.2f} ms"
    )


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
    parser.add_argument(
        "--cross-examination",
        choices=["auto", "always", "off"],
        default="auto",
        help="the critical task type's cross-examination policy (default auto, the service's default)",
    )
    asyncio.run(run(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
