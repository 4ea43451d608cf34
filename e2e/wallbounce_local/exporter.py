"""A traffic exporter for operator tests and benchmarks: serves the service's metrics contract (design.md) for any
number of fake Services and revisions, each with a traffic profile a test controls at run time: requests per second,
and the shares of errors, 4xx, cancelled requests and slow requests, latency, consensus confidence, cost per request.

Series carry their own ``namespace``, ``service`` and ``revision`` labels (scrape with ``honor_labels: true``), so
one process stands in for the stable and canary Deployments (and their revisions) of many rollouts. Every outcome's
series exists from the profile's start (as the service primes them), unless ``lazyErrors``.

    python -m wallbounce_local.exporter --port P
    POST   /profiles   {"namespace", "service", "revision", "variant", "rps", "errorRatio", "clientErrorRatio",
                        "cancelRatio", "latency", "slowRatio", "slowLatency", "confidence", "cost", "lazyErrors",
                        "burstErrors", "burstSlow"}   (bursts: whole requests added once)
    DELETE /profiles   {"namespace", "service"[, "revision"]}   (their series disappear: NoData)
    GET    /metrics
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from wallbounce_api import metrics as m

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 30, 60, 120, 300, 600)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


@dataclass
class Profile:
    namespace: str
    service: str
    revision: str = ""
    variant: str = "canary"
    rps: float = 50.0
    error_ratio: float = 0.0  # of the served requests
    client_error_ratio: float = 0.0  # of all requests: answered 4xx
    cancel_ratio: float = 0.0  # of all requests: the client went away
    latency: float = 0.8
    slow_ratio: float = 0.0  # this share of the requests takes slow_latency instead
    slow_latency: float = 30.0
    confidence: float = 0.9
    cost: float = 0.001
    lazy_errors: bool = False  # like prometheus-client by itself: no error series until the first error
    # accumulated state
    outcomes: dict[str, float] = field(default_factory=lambda: {str(o): 0.0 for o in m.Outcome})
    latency_buckets: list[float] = field(default_factory=lambda: [0.0] * len(LATENCY_BUCKETS))
    confidence_buckets: list[float] = field(default_factory=lambda: [0.0] * len(CONFIDENCE_BUCKETS))
    requests: float = 0.0
    latency_sum: float = 0.0
    confidence_sum: float = 0.0
    confidence_count: float = 0.0
    cost_sum: float = 0.0

    def burst(self, errors: float = 0.0, slow: float = 0.0) -> None:
        """At once: ``errors`` failed requests, ``slow`` requests that took ``slow_latency`` (whole requests, for
        tests that count them)."""
        self.requests += errors + slow
        self.outcomes[str(m.Outcome.ERROR)] += errors
        self.outcomes[str(m.Outcome.SUCCESS)] += slow
        for count, latency in ((errors, self.latency), (slow, self.slow_latency)):
            for i, le in enumerate(LATENCY_BUCKETS):
                if latency <= le:
                    self.latency_buckets[i] += count
            self.latency_sum += count * latency
        for i, le in enumerate(CONFIDENCE_BUCKETS):
            if self.confidence <= le:
                self.confidence_buckets[i] += slow
        self.confidence_sum += slow * self.confidence
        self.confidence_count += slow

    def advance(self, seconds: float) -> None:
        n = self.rps * seconds
        if n <= 0:
            return
        client, cancelled = n * self.client_error_ratio, n * self.cancel_ratio
        served = max(n - client - cancelled, 0.0)
        errors = served * self.error_ratio
        self.requests += n
        for outcome, count in ((m.Outcome.SUCCESS, served - errors), (m.Outcome.ERROR, errors),
                               (m.Outcome.CLIENT_ERROR, client), (m.Outcome.CANCELLED, cancelled)):
            self.outcomes[str(outcome)] += count
        for share, latency in ((1 - self.slow_ratio, self.latency), (self.slow_ratio, self.slow_latency)):
            for i, le in enumerate(LATENCY_BUCKETS):
                if latency <= le:
                    self.latency_buckets[i] += n * share
            self.latency_sum += n * share * latency
        answered = served - errors
        for i, le in enumerate(CONFIDENCE_BUCKETS):
            if self.confidence <= le:
                self.confidence_buckets[i] += answered
        self.confidence_sum += answered * self.confidence
        self.confidence_count += answered
        self.cost_sum += served * self.cost


def _cumulative(buckets: list[float], bounds: tuple[float, ...], total: float) -> list[tuple[str, float]]:
    return [(repr(float(b)), v) for b, v in zip(bounds, buckets, strict=True)] + [("+Inf", total)]


class TrafficCollector:
    def __init__(self) -> None:
        self.profiles: dict[tuple[str, str, str], Profile] = {}
        self.lock = threading.Lock()  # a scrape sees every profile's counters as of one moment

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            yield from self._collect()

    def _collect(self) -> Iterator[Metric]:
        base = [m.NAMESPACE, m.SERVICE, m.REVISION, m.VARIANT]
        req = CounterMetricFamily(m.REQUESTS_TOTAL.removesuffix("_total"), "Requests",
                                  labels=[*base, m.TASK_TYPE, m.OUTCOME])
        dur = HistogramMetricFamily(m.REQUEST_DURATION_SECONDS, "Latency", labels=[*base, m.TASK_TYPE])
        conf = HistogramMetricFamily(m.CONSENSUS_CONFIDENCE, "Confidence", labels=[*base, m.TASK_TYPE])
        cost = CounterMetricFamily(m.COST_USD_TOTAL.removesuffix("_total"), "Cost", labels=[*base, m.PROVIDER])
        for p in list(self.profiles.values()):  # a snapshot: rendered in a thread while profiles are added
            values = [p.namespace, p.service, p.revision, p.variant]
            for outcome, count in p.outcomes.items():
                if outcome == m.Outcome.ERROR and p.lazy_errors and count <= 0:
                    continue
                req.add_metric([*values, "basic", outcome], count)
            dur.add_metric([*values, "basic"], _cumulative(p.latency_buckets, LATENCY_BUCKETS, p.requests),
                           p.latency_sum)
            conf.add_metric([*values, "basic"], _cumulative(p.confidence_buckets, CONFIDENCE_BUCKETS,
                                                          p.confidence_count), p.confidence_sum)
            cost.add_metric([*values, "gemini"], p.cost_sum)
        yield from (req, dur, conf, cost)


def make_app(tick: float = 0.1) -> web.Application:
    collector = TrafficCollector()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(cast(Any, collector))

    async def advance(app: web.Application) -> Any:
        async def loop() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(tick)
                if not collector.lock.acquire(blocking=False):
                    continue  # a scrape is being rendered: its time is added at the next advance
                try:
                    now = time.monotonic()
                    for p in list(collector.profiles.values()):
                        p.advance(now - last)
                    last = now
                finally:
                    collector.lock.release()

        task = asyncio.create_task(loop())
        yield
        task.cancel()

    async def metrics(_: web.Request) -> web.Response:
        # rendered off the loop: thousands of Services take seconds to render, and profiles are set meanwhile
        body = await asyncio.to_thread(generate_latest, registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def set_profile(request: web.Request) -> web.Response:
        body = await request.json()
        key = (str(body["namespace"]), str(body["service"]), str(body.get("revision") or ""))
        p = collector.profiles.get(key) or Profile(*key)
        for attr, name in (("variant", "variant"), ("rps", "rps"), ("error_ratio", "errorRatio"),
                           ("client_error_ratio", "clientErrorRatio"), ("cancel_ratio", "cancelRatio"),
                           ("latency", "latency"), ("slow_ratio", "slowRatio"), ("slow_latency", "slowLatency"),
                           ("confidence", "confidence"), ("cost", "cost"), ("lazy_errors", "lazyErrors")):
            if name in body:
                setattr(p, attr, type(getattr(p, attr))(body[name]))
        p.burst(float(body.get("burstErrors", 0)), float(body.get("burstSlow", 0)))
        collector.profiles[key] = p
        return web.json_response({"profiles": len(collector.profiles)})

    async def drop_profile(request: web.Request) -> web.Response:
        body = await request.json()
        namespace, service, revision = str(body["namespace"]), str(body["service"]), body.get("revision")
        for key in [k for k in collector.profiles if k[:2] == (namespace, service)
                    and (revision is None or k[2] == revision)]:
            collector.profiles.pop(key)
        return web.json_response({"profiles": len(collector.profiles)})

    app = web.Application()
    app.cleanup_ctx.append(advance)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/profiles", set_profile)
    app.router.add_delete("/profiles", drop_profile)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wallbounce_local.exporter")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tick", type=float, default=0.1,
                        help="seconds between traffic advances (longer for thousands of Services)")
    args = parser.parse_args(argv)
    web.run_app(make_app(args.tick), host=args.host, port=args.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
