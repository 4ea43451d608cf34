"""Helpers of the end-to-end scenarios: traffic through the Gateway with the route's weights recorded beside it,
the observed canary share per constant-weight span, waits, and the measured numbers reported at the end.

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

from wallbounce_local.loadgen import LoadGenerator, WeightLog, summarize
from wallbounce_local.procs import wait_for
from wallbounce_local.stack import Stack

SHARE_TOLERANCE = 3  # requests; see the module docstring
RESULTS: dict[str, Any] = {}  # printed at the end of the session (conftest's terminal summary)


def wait_phase(stack: Stack, name: str, phase: str, timeout: float = 120.0, **want: Any) -> dict[str, Any]:
    """Wait for ``phase`` (and the ``want`` fields); fail at once if the rollout lands somewhere else for good."""
    final = {"Completed", "RolledBack", "Aborted", "Paused"} - {phase}

    def check() -> Any:
        st = stack.status(name)
        if st.get("phase") in final:
            raise AssertionError(f"{name} went {st.get('phase')} while waiting for {phase}: {st.get('message')}")
        return st if st.get("phase") == phase and all(st.get(k) == v for k, v in want.items()) else False

    return dict(wait_for(f"{name} to be {phase} {want or ''}", check, timeout))


class Traffic:
    """Steady traffic through the Gateway plus a poller recording the route's canary weight as it changes."""

    def __init__(self, stack: Stack, rate: float = 40.0, concurrency: int = 10) -> None:
        self.stack = stack
        assert stack.traefik is not None
        self.load = LoadGenerator(stack.traefik.url, rate=rate, concurrency=concurrency, max_seconds=280)
        self.weights = WeightLog()
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="route-poller", daemon=True)

    def _poll(self) -> None:
        deadline = time.monotonic() + 300
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.weights.record(self.stack.route_weights()[1])
            except Exception:  # noqa: BLE001, S110 - a transient API error: poll again
                pass
            time.sleep(0.1)

    def start(self) -> Traffic:
        self.weights.record(self.stack.route_weights()[1])
        self._poller.start()
        self.load.start()
        return self

    def stop(self) -> None:
        self.load.stop()
        self._stop.set()
        self._poller.join(timeout=5)

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


def measure_rollback(stack: Stack, breached: Callable[[], bool], target: int,
                     timeout: float = 60.0) -> dict[str, float]:
    """Poll Prometheus (is the breach visible?) and the route (canary weight at ``target``?) every 0.1 s.

    Returns the wall times of both and the delay between them (route after breach)."""
    t_breach = t_route = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (t_breach is None or t_route is None):
        now = time.time()
        if t_breach is None:
            try:
                if breached():
                    t_breach = now
            except Exception:  # noqa: BLE001, S110 - Prometheus busy: poll again
                pass
        if t_route is None and stack.route_weights()[1] == target:
            t_route = now
        time.sleep(0.1)
    assert t_breach is not None, "the breach never became visible in Prometheus"
    assert t_route is not None, f"the route never reached canary weight {target}"
    return {"breach_visible_at": t_breach, "route_at_target_at": t_route, "delay_s": round(t_route - t_breach, 2)}


def reasons(stack: Stack, name: str, wait_for_reason: str | None = None) -> list[str]:
    """The rollout's event reasons; with ``wait_for_reason``, first wait until that one is posted (events
    follow the status and route writes, so a test that saw the status must not race them)."""
    if wait_for_reason:
        wait_for(f"event {wait_for_reason} on {name}",
                 lambda: wait_for_reason in [r for r, _ in stack.events(name)], 20)
    return [r for r, _ in stack.events(name)]
