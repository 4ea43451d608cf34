"""Helpers of the end-to-end scenarios: traffic through the Gateway with the route's weights recorded beside it,
the observed canary share per constant-weight span, the rollback delay, and the measured numbers reported at
the end.

Observed share tolerance (``SHARE_TOLERANCE``): Traefik turns a rule's backendRefs into a weighted round robin
that is *earliest-deadline-first*, i.e. deterministic, not random: over any run of N consecutive requests the
canary gets ⌊N·w⌋ or ⌈N·w⌉ of them (±1). Our spans are cut by the client's start times, and with a few requests
in flight a request near a span's edge can reach Traefik just before or after its neighbour; each edge may move
at most one request across, so the count lies within ±3 of N·w. A random splitter would need ±2σ = ±2·√(N·w·(1−w))
(±9 requests at N = 80, w = 0.5) — the tight bound is what shows the weights are applied, not approximated.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from wallbounce_local.driver import RolloutDriver
from wallbounce_local.loadgen import LoadGenerator, WeightLog, summarize
from wallbounce_local.procs import wait_for
from wallbounce_local.stack import Stack
from wallbounce_local.traffic import SimulatorTraffic

Driver = RolloutDriver[SimulatorTraffic]
SHARE_TOLERANCE = 3  # requests; see the module docstring
RESULTS: dict[str, Any] = {}  # printed at the end of the session (conftest's terminal summary)


class Traffic:
    """Steady traffic through the Gateway plus a thread recording the route's canary weight as it changes."""

    def __init__(self, stack: Stack, rate: float = 40.0, concurrency: int = 10) -> None:
        self.driver = stack.rollouts
        self.load = LoadGenerator(stack.gateway_url, rate=rate, concurrency=concurrency, max_seconds=280)
        self.weights = WeightLog()
        self._stop = threading.Event()
        self._recorder = threading.Thread(target=self.driver.record_weights, args=(self.weights, self._stop),
                                          name="route-weights", daemon=True)

    def start(self) -> Traffic:
        self.weights.record(self.driver.route_weights()[1])
        self._recorder.start()
        self.load.start()
        return self

    def stop(self) -> None:
        self.load.stop()
        self._stop.set()
        self._recorder.join(timeout=5)

    def shares(self, end: float | None = None, min_requests: int = 20) -> list[dict[str, Any]]:
        """Per constant-weight span: weight, requests, canary count, expected count, error (in requests)."""
        out = []
        for weight, t0, t1 in self.weights.segments(end or time.time()):
            s = summarize(self.load.between(t0, t1))
            answered = sum(s.by_variant.values())
            if answered < min_requests:
                continue
            canary = s.by_variant.get("canary", 0)
            expected = answered * weight / 100
            out.append({"weight": weight, "requests": answered, "canary": canary, "expected": round(expected, 2),
                        "error_requests": round(canary - expected, 2),
                        "share": round(canary / answered, 4),
                        "share_error": round(canary / answered - weight / 100, 4)})
        return out


@contextmanager
def traffic(stack: Stack, rate: float = 40.0) -> Iterator[Traffic]:
    t = Traffic(stack, rate=rate).start()
    try:
        yield t
    finally:
        t.stop()


def assert_shares(shares: list[dict[str, Any]]) -> None:
    assert shares, "no constant-weight span had enough requests to judge the traffic share"
    bad = [s for s in shares if abs(s["error_requests"]) > SHARE_TOLERANCE]
    assert not bad, f"observed canary share off the route's weight by more than {SHARE_TOLERANCE} requests: {bad}"


def measure_rollback(driver: Driver, breached: Callable[[], bool], target: int,
                     timeout: float = 60.0) -> dict[str, float]:
    """Poll Prometheus (is the breach visible?) and the route (canary weight at ``target``?) every 0.1 s.

    Returns the wall times of both and the delay between them (route after breach)."""
    seen: dict[str, float] = {}

    def both_seen() -> bool:
        now = time.time()
        if "breach" not in seen:
            try:
                if breached():
                    seen["breach"] = now
            except Exception:  # noqa: BLE001, S110 - Prometheus busy: poll again
                pass
        if "route" not in seen and driver.route_weights()[1] == target:
            seen["route"] = now
        return len(seen) == 2

    try:
        wait_for(f"the breach in Prometheus and the route at canary weight {target}", both_seen, timeout, every=0.1)
    except AssertionError:
        assert "breach" in seen, "the breach never became visible in Prometheus"
        raise AssertionError(f"the route never reached canary weight {target}") from None
    return {"breach_visible_at": seen["breach"], "route_at_target_at": seen["route"],
            "delay_s": round(seen["route"] - seen["breach"], 2)}
