"""A small aiohttp load generator for the local stack: it drives the Gateway (never a backend directly)
and records, per request, which variant answered (the response's ``variant`` field, else the
``X-Wallbounce-Variant`` header), the status, the latency and the consensus confidence.

Two shapes:
- ``LoadGenerator``: open loop at a steady rate (bounded concurrency) in a background thread, until stopped
  or until its ``max_seconds`` run out; the demo and the end-to-end scenarios run it alongside a rollout.
- ``run_users``: the seed's load profile, N concurrent users each sending requests back to back for T
  seconds (10 users for 30 s by default), returning every sample.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

VARIANT_HEADER = "X-Wallbounce-Variant"
#: the API key of the local stack's tenant (loopback only, like the stack's fake provider keys); a real deployment's
#: key comes from ``WALLBOUNCE_API_KEY``
LOCAL_API_KEY = "wbk_local_stack_demo_key_000000000000"


def api_key(given: str | None = None) -> str:
    """The key to send: ``given``, else ``WALLBOUNCE_API_KEY``, else the local stack's."""
    import os

    return given or os.environ.get("WALLBOUNCE_API_KEY") or LOCAL_API_KEY


def auth_headers(key: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key(key)}"}
PROMPTS = (
    "Should we enable HTTP keep-alive on the load balancer?",
    "Is it safe to raise the connection pool size to 200?",
    "Should retries use exponential backoff with jitter?",
    "Do we need a read replica for the reporting queries?",
)


@dataclass
class Sample:
    """One request through the Gateway; ``started`` is wall-clock time (comparable with Kubernetes times)."""

    started: float
    elapsed: float
    status: int
    variant: str | None = None
    srp_processed: bool | None = None
    confidence: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Summary:
    """What a set of samples says: counts per variant, error rate (5xx or no answer), p95 and mean confidence."""

    count: int
    by_variant: dict[str, int]
    errors: int
    p95: float
    mean_confidence: float | None
    srp_processed: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0

    def share(self, variant: str = "canary") -> float:
        answered = sum(self.by_variant.values())
        return self.by_variant.get(variant, 0) / answered if answered else 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 1))))
    return ordered[rank - 1]


def summarize(samples: Iterable[Sample]) -> Summary:
    chosen = list(samples)
    by_variant: dict[str, int] = {}
    for s in chosen:
        if s.variant:
            by_variant[s.variant] = by_variant.get(s.variant, 0) + 1
    confidences = [s.confidence for s in chosen if s.confidence is not None]
    return Summary(
        count=len(chosen),
        by_variant=by_variant,
        errors=sum(1 for s in chosen if s.status >= 500 or s.status == 0),
        p95=percentile([s.elapsed for s in chosen], 0.95),
        mean_confidence=sum(confidences) / len(confidences) if confidences else None,
        srp_processed=sum(1 for s in chosen if s.srp_processed),
    )


async def _one(session: aiohttp.ClientSession, url: str, n: int, task_type: str, timeout: float) -> Sample:  # noqa: ASYNC109
    body = {"prompt": f"{PROMPTS[n % len(PROMPTS)]} (request {n})", "task_type": task_type}
    started, t0 = time.time(), time.monotonic()
    try:
        async with session.post(f"{url}/api/v1/generate", json=body, headers=auth_headers(),
                                timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            data: Any = None
            try:
                data = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                data = None
            variant = resp.headers.get(VARIANT_HEADER)
            srp = confidence = None
            if isinstance(data, dict):
                variant = data.get("variant") or variant
                srp = data.get("srp_processed")
                confidence = data.get("confidence")
            return Sample(started, time.monotonic() - t0, resp.status, variant, srp, confidence)
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        return Sample(started, time.monotonic() - t0, 0, error=type(exc).__name__)


class LoadGenerator:
    """Steady-rate traffic through the Gateway in a background thread; ``samples`` grows as answers come.
    A stack component (``components.Component``): the load part of the stack."""

    name = "load"

    def __init__(self, url: str, *, rate: float = 25.0, concurrency: int = 10, task_type: str = "basic",
                 timeout: float = 30.0, max_seconds: float = 900.0) -> None:
        self.url = url.rstrip("/")
        self.rate = rate
        self.concurrency = concurrency
        self.task_type = task_type
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.samples: list[Sample] = []
        self.skipped = 0  # ticks dropped because `concurrency` requests were already in flight
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._counter = itertools.count()

    def start(self) -> LoadGenerator:
        self._stop.clear()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="loadgen", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 5)
            self._thread = None

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def ready(self) -> bool:
        return self.running()

    @property
    def logs(self) -> dict[str, Path]:
        return {}  # its record is ``samples``

    def between(self, t0: float, t1: float) -> list[Sample]:
        """Samples whose request started in [t0, t1) (wall-clock seconds)."""
        with self._lock:
            return [s for s in self.samples if t0 <= s.started < t1]

    def since(self, t0: float) -> list[Sample]:
        return self.between(t0, float("inf"))

    async def _run(self) -> None:
        inflight: set[asyncio.Task[None]] = set()
        period = 1.0 / self.rate
        deadline = time.monotonic() + self.max_seconds
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            next_at = time.monotonic()
            while not self._stop.is_set() and time.monotonic() < deadline:
                if len(inflight) < self.concurrency:
                    task = asyncio.create_task(self._record(session, next(self._counter)))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                else:
                    self.skipped += 1
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if inflight:
                await asyncio.wait(inflight, timeout=self.timeout)

    async def _record(self, session: aiohttp.ClientSession, n: int) -> None:
        sample = await _one(session, self.url, n, self.task_type, self.timeout)
        with self._lock:
            self.samples.append(sample)


async def _users(url: str, users: int, seconds: float, task_type: str,
                 timeout: float) -> list[Sample]:  # noqa: ASYNC109
    samples: list[Sample] = []
    counter = itertools.count()
    end = time.monotonic() + seconds

    async def user(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < end:
            samples.append(await _one(session, url, next(counter), task_type, timeout))

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=users)) as session:
        await asyncio.gather(*(user(session) for _ in range(users)))
    return samples


def run_users(url: str, *, users: int = 10, seconds: float = 30.0, task_type: str = "basic",
              timeout: float = 30.0) -> list[Sample]:
    """The seed's load profile: ``users`` concurrent users, each sending back to back for ``seconds``."""
    return asyncio.run(_users(url.rstrip("/"), users, seconds, task_type, timeout))


def fire(url: str, count: int, *, concurrency: int = 10, task_type: str = "basic",
         timeout: float = 30.0) -> list[Sample]:
    """Exactly ``count`` requests through the Gateway, at most ``concurrency`` at a time."""

    async def go() -> list[Sample]:
        sem = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            async def one(n: int) -> Sample:
                async with sem:
                    return await _one(session, url.rstrip("/"), n, task_type, timeout)
            return list(await asyncio.gather(*(one(n) for n in range(count))))

    return asyncio.run(go())


@dataclass
class WeightLog:
    """Canary weights seen on the route over time: ``(wall time, weight)``, one entry per change."""

    changes: list[tuple[float, int]] = field(default_factory=list)

    def record(self, weight: int, at: float | None = None) -> None:
        if not self.changes or self.changes[-1][1] != weight:
            self.changes.append((at if at is not None else time.time(), weight))

    def segments(self, end: float, settle: float = 1.0, guard: float = 0.3) -> list[tuple[int, float, float]]:
        """``(weight, t0, t1)`` per constant-weight span, trimmed by ``settle`` after a change (Traefik's watch
        and reload) and ``guard`` before the next one (the change is observed by polling, a little late)."""
        out = []
        for i, (t, w) in enumerate(self.changes):
            t_next = self.changes[i + 1][0] if i + 1 < len(self.changes) else end
            t0, t1 = t + settle, t_next - guard
            if t1 > t0:
                out.append((w, t0, t1))
        return out
