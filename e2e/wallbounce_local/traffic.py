"""How a ``RolloutDriver`` sets the canary's traffic: healthy, or broken (errors, or answers that disagree).

- ``ExporterTraffic``: synthetic traffic — the traffic exporter serves the metrics contract for a Service with
  the profile a test sets (requests per second, error ratio, latency, confidence, cost); the operator tests
  and the benchmarks use it.
- ``SimulatorTraffic``: real traffic — the provider simulators behind each variant's service processes are
  scripted (failing with a status, or contradicting each other), and the service's own metrics show it; the
  end-to-end suite and the demo use it.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from typing import Any, Protocol

from wallbounce_api.metrics import Variant

from .web import http_json

VENDORS = ("openai", "gemini", "anthropic")
#: The exporter's healthy profile: 400 requests/s, no errors, 0.8 s latency, confidence 0.9.
HEALTHY: dict[str, Any] = {"rps": 400, "errorRatio": 0.0, "latency": 0.8, "confidence": 0.9, "cost": 0.001}
#: A simulator script under which every vendor answers and agrees.
HEALTHY_SCRIPT: dict[str, Any] = {"error_status": None, "error_rate": 0.0, "answer": None,
                                  "final": "Yes, this is the recommended approach.", "verdict": "agree"}
#: Basic requests go to Gemini and Claude: make them contradict each other on the same question.
DISAGREE_SCRIPT: dict[str, dict[str, Any]] = {
    "gemini": {"answer": "No. Keep-alive must stay off here: idle sockets pile up on the balancer and hide "
                         "backend failures until they time out.\nFINAL: No, never enable it."},
    "anthropic": {"answer": "Yes, turn it on: reusing connections saves a TCP and TLS handshake per call and "
                            "cuts tail latency noticeably.\nFINAL: Yes, enable it."},
    "openai": {"answer": "It depends entirely on the workload; measure before deciding.\nFINAL: Maybe, measure it."},
}


class TrafficControl(Protocol):
    """What a driver asks of the traffic of a stable/canary pair of Services named ``<prefix>-<variant>``."""

    def healthy(self, prefix: str) -> None:
        """Both variants answer well."""
        ...

    def break_canary(self, prefix: str, how: str = "errors") -> None:
        """The canary goes bad: ``errors`` (it fails requests) or ``disagree`` (its consensus collapses)."""
        ...

    def revision(self, deployment: str, revision: str) -> None:
        """The pods of ``deployment`` (behind the Service of the same name) now run ``revision``."""
        ...


class ExporterTraffic:
    """Profiles of the traffic exporter at ``url`` for Services in ``namespace``."""

    def __init__(self, url: str, namespace: str, healthy_profile: Mapping[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.healthy_profile = dict(HEALTHY if healthy_profile is None else healthy_profile)
        self.revisions: dict[str, str] = {}  # Service → the revision its pods run (the driver says)
        self.profiles: dict[str, dict[str, Any]] = {}  # Service → the last profile set

    def set(self, service: str, **profile: Any) -> None:
        """Set (or create) ``service``'s profile for its current revision: ``variant``, ``rps``, ``errorRatio``,
        ``latency``, ``confidence``, ``cost``, ``clientErrorRatio``, ``cancelRatio``, ``slowRatio`` and
        ``slowLatency`` (a share of the requests takes that long), ``lazyErrors`` (no error series until the first
        error, as prometheus-client does by itself)."""
        self.profiles[service] = {**self.profiles.get(service, {}), **profile}
        revision = profile.pop("revision", None) or self.revisions.get(service, "")
        http_json(f"{self.url}/profiles", {"namespace": self.namespace, "service": service, "revision": revision,
                                           **profile})

    def revision(self, deployment: str, revision: str) -> None:
        """New pods: the old revision's stop serving (its series stay, flat), the new one serves as the old did,
        from fresh counters."""
        old = self.revisions.get(deployment)
        self.revisions[deployment] = revision
        if old != revision and deployment in self.profiles:  # (a profile set before any revision: revision "")
            http_json(f"{self.url}/profiles", {"namespace": self.namespace, "service": deployment,
                                               "revision": old or "", "rps": 0})
            self.set(deployment, **{k: v for k, v in self.profiles[deployment].items() if k != "revision"})

    def drop(self, service: str) -> None:
        """No series at all for ``service`` any more (the operator sees no data)."""
        http_json(f"{self.url}/profiles", {"namespace": self.namespace, "service": service}, method="DELETE")
        self.profiles.pop(service, None)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as resp:  # noqa: S310 - loopback
            return str(resp.read().decode())

    def healthy(self, prefix: str) -> None:
        for variant in (Variant.CANARY, Variant.STABLE):
            self.set(f"{prefix}-{variant}", variant=str(variant), **self.healthy_profile)

    def break_canary(self, prefix: str, how: str = "errors") -> None:
        change = {"errors": {"errorRatio": 0.3}, "disagree": {"confidence": 0.3}}[how]
        self.set(f"{prefix}-{Variant.CANARY}", **change)


class SimulatorTraffic:
    """The provider simulators of each variant, at ``urls[variant]`` (one process per variant)."""

    def __init__(self, urls: Mapping[str, str]) -> None:
        self.urls = dict(urls)

    def script(self, variant: str, per_vendor: Mapping[str, Mapping[str, Any]]) -> None:
        http_json(f"{self.urls[variant]}/_sim/script", per_vendor)

    def revision(self, deployment: str, revision: str) -> None:
        """The service processes carry their revision from their start (the stack starts them with it)."""

    def healthy(self, prefix: str = "") -> None:
        """The canary's providers answer and agree again (nothing here breaks the stable's)."""
        self.script(str(Variant.CANARY), {vendor: HEALTHY_SCRIPT for vendor in VENDORS})

    def break_canary(self, prefix: str = "", how: str = "errors", status: int = 500) -> None:
        """``errors``: every provider of the canary answers ``status`` (the canary service answers 503);
        ``disagree``: they contradict each other (its consensus confidence collapses)."""
        scripts = {"errors": {v: {"error_status": status} for v in VENDORS}, "disagree": DISAGREE_SCRIPT}[how]
        self.script(str(Variant.CANARY), scripts)
