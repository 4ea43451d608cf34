"""Prometheus metrics of one service process: exactly the names and labels of the design's metrics contract.

Each application owns its own ``CollectorRegistry`` (two apps in one test process must not share counters); every
series carries the process's ``variant`` label. ``wallbounce_provider_available`` (1 usable, 0 cooled down) is the one
addition to the contract: the issue asks for the cooldown state as a metric.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
PROVIDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The contract's metrics, bound to one variant."""

    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)  # process_resident_memory_bytes etc.: the memory alerts read it
        self.requests = Counter(
            "wallbounce_requests_total", "Requests by outcome", ["variant", "task_type", "outcome"], registry=r
        )
        self.request_duration = Histogram(
            "wallbounce_request_duration_seconds",
            "Request duration",
            ["variant", "task_type"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.confidence = Histogram(
            "wallbounce_consensus_confidence",
            "Consensus confidence of answered requests",
            ["variant", "task_type"],
            buckets=CONFIDENCE_BUCKETS,
            registry=r,
        )
        self.provider_requests = Counter(
            "wallbounce_provider_requests_total",
            "Provider calls by outcome",
            ["variant", "provider", "outcome"],
            registry=r,
        )
        self.provider_duration = Histogram(
            "wallbounce_provider_duration_seconds",
            "Provider call duration",
            ["variant", "provider"],
            buckets=PROVIDER_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "wallbounce_tokens_total", "Tokens by direction", ["variant", "provider", "direction"], registry=r
        )
        self.cost = Counter("wallbounce_cost_usd_total", "Cost in USD", ["variant", "provider"], registry=r)
        self.cache_requests = Counter(
            "wallbounce_cache_requests_total", "Cache look-ups", ["variant", "cache", "result"], registry=r
        )
        self.inflight = Gauge("wallbounce_inflight_requests", "Requests in flight", ["variant"], registry=r)
        self.provider_available = Gauge(
            "wallbounce_provider_available",
            "1 when the provider may be picked, 0 while cooled down",
            ["variant", "provider"],
            registry=r,
        )
        self.inflight.labels(variant).set(0)

    def request(self, task_type: str, outcome: str, seconds: float) -> None:
        self.requests.labels(self.variant, task_type, outcome).inc()
        self.request_duration.labels(self.variant, task_type).observe(seconds)

    def observe_confidence(self, task_type: str, confidence: float) -> None:
        self.confidence.labels(self.variant, task_type).observe(confidence)

    def provider_call(
        self, provider: str, outcome: str, seconds: float, input_tokens: int, output_tokens: int, cost: float
    ) -> None:
        self.provider_requests.labels(self.variant, provider, outcome).inc()
        self.provider_duration.labels(self.variant, provider).observe(seconds)
        if input_tokens:
            self.tokens.labels(self.variant, provider, "input").inc(input_tokens)
        if output_tokens:
            self.tokens.labels(self.variant, provider, "output").inc(output_tokens)
        if cost:
            self.cost.labels(self.variant, provider).inc(cost)

    def cache(self, cache: str, hit: bool) -> None:
        self.cache_requests.labels(self.variant, cache, "hit" if hit else "miss").inc()

    def set_available(self, provider: str, available: bool) -> None:
        self.provider_available.labels(self.variant, provider).set(1 if available else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
