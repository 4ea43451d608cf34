"""Prometheus metrics of one service process: exactly the names and labels of the design's metrics contract.

Each application owns its own ``CollectorRegistry`` (two apps in one test process must not share counters). Every
series carries the process's ``variant`` and ``revision`` labels (``WALLBOUNCE_REVISION``, the pod-template-hash from
the downward API; ``unknown`` when unset). Every label set a counter (or histogram) can be given exists at 0 from
start-up (``prime``), so that Prometheus' ``increase()`` sees the first error of a fresh canary.
``wallbounce_provider_available`` (1 usable, 0 cooled down) is the one addition to the contract.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REQUEST_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
CONFIDENCE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
PROVIDER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

#: ``wallbounce_requests_total{outcome}``: see ``middleware`` for the mapping from HTTP statuses
OUTCOMES = ("success", "error", "client_error", "cancelled", "low_consensus", "rejected")
#: ``task_type="unknown"``: a request refused before its body was read (no key, overload, bad JSON)
TASK_TYPES = ("basic", "premium", "critical", "unknown")
CACHES = ("exact", "similar", "provider")
DIRECTIONS = ("input", "output")

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The contract's metrics, bound to one variant and revision."""

    def __init__(self, variant: str, revision: str = "unknown") -> None:
        self.variant = variant
        self.revision = revision
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        base = ["variant", "revision"]
        ProcessCollector(registry=r)  # process_resident_memory_bytes etc.: the memory alerts read it
        self.requests = Counter("wallbounce_requests_total", "Requests by outcome", [*base, "task_type", "outcome"],
                                registry=r)
        self.request_duration = Histogram("wallbounce_request_duration_seconds", "Request duration",
                                          [*base, "task_type"], buckets=REQUEST_BUCKETS, registry=r)
        self.confidence = Histogram("wallbounce_consensus_confidence", "Consensus confidence of answered requests",
                                    [*base, "task_type"], buckets=CONFIDENCE_BUCKETS, registry=r)
        self.provider_requests = Counter("wallbounce_provider_requests_total", "Provider calls by outcome",
                                         [*base, "provider", "outcome"], registry=r)
        self.provider_duration = Histogram("wallbounce_provider_duration_seconds", "Provider call duration",
                                           [*base, "provider"], buckets=PROVIDER_BUCKETS, registry=r)
        self.tokens = Counter("wallbounce_tokens_total", "Tokens by direction", [*base, "provider", "direction"],
                              registry=r)
        self.cost = Counter("wallbounce_cost_usd_total", "Cost in USD", [*base, "provider"], registry=r)
        self.cache_requests = Counter("wallbounce_cache_requests_total", "Cache look-ups", [*base, "cache", "result"],
                                      registry=r)
        self.inflight = Gauge("wallbounce_inflight_requests", "Requests in flight", base, registry=r)
        self.provider_available = Gauge("wallbounce_provider_available",
                                        "1 when the provider may be picked, 0 while cooled down",
                                        [*base, "provider"], registry=r)
        self.inflight.labels(variant, revision).set(0)
        for task_type in TASK_TYPES:
            for outcome in OUTCOMES:
                self.requests.labels(variant, revision, task_type, outcome)
            self.request_duration.labels(variant, revision, task_type)
            self.confidence.labels(variant, revision, task_type)
        for cache in CACHES:
            for result in ("hit", "miss"):
                self.cache_requests.labels(variant, revision, cache, result)

    def prime_providers(self, providers: Iterable[str], outcomes: Iterable[str]) -> None:
        """The provider series at 0: every configured provider with every outcome a call can have."""
        outcomes = list(outcomes)
        for provider in providers:
            for outcome in outcomes:
                self.provider_requests.labels(self.variant, self.revision, provider, outcome)
            self.provider_duration.labels(self.variant, self.revision, provider)
            for direction in DIRECTIONS:
                self.tokens.labels(self.variant, self.revision, provider, direction)
            self.cost.labels(self.variant, self.revision, provider)

    def request(self, task_type: str, outcome: str, seconds: float) -> None:
        self.requests.labels(self.variant, self.revision, task_type, outcome).inc()
        self.request_duration.labels(self.variant, self.revision, task_type).observe(seconds)

    def observe_confidence(self, task_type: str, confidence: float) -> None:
        self.confidence.labels(self.variant, self.revision, task_type).observe(confidence)

    def provider_call(
        self, provider: str, outcome: str, seconds: float, input_tokens: int, output_tokens: int, cost: float
    ) -> None:
        self.provider_requests.labels(self.variant, self.revision, provider, outcome).inc()
        self.provider_duration.labels(self.variant, self.revision, provider).observe(seconds)
        if input_tokens:
            self.tokens.labels(self.variant, self.revision, provider, "input").inc(input_tokens)
        if output_tokens:
            self.tokens.labels(self.variant, self.revision, provider, "output").inc(output_tokens)
        if cost:
            self.cost.labels(self.variant, self.revision, provider).inc(cost)

    def cache(self, cache: str, hit: bool) -> None:
        self.cache_requests.labels(self.variant, self.revision, cache, "hit" if hit else "miss").inc()

    def set_available(self, provider: str, available: bool) -> None:
        self.provider_available.labels(self.variant, self.revision, provider).set(1 if available else 0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
