"""Benchmark: decide() calls per second on one core (the pure decision core, no I/O).

    .venv/bin/python bench/decide_core.py [--seconds 5]

Each call judges an observation, walks the ladder and rewrites the status (conditions, history), as
the operator does once per rollout per analysis interval.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

from wallbounce_operator.ladder import decide
from wallbounce_operator.model import Inputs, Observation, RolloutSpec, RouteState

SPEC = RolloutSpec.from_dict(
    {
        "stable": {"deployment": "s", "service": "s"},
        "canary": {"deployment": "c", "service": "c"},
        "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}},
        "analysis": {"prometheus": {"address": "http://p:9090"}},
        "phases": [{"weight": w, "duration": "10m", "minRequests": 100} for w in (1, 2, 10, 20, 35, 50)],
    }
)
OBS = [
    Observation(requests=2000, errors=1, latency_p95=1.2, confidence=0.88, cost_per_request=0.002),  # Pass
    Observation(requests=60, errors=0, latency_p95=1.2, confidence=0.88),  # Hold
    Observation(),  # NoData
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    t0 = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
    status = decide(SPEC, {}, Inputs(now=t0, canary_revision="r", route=RouteState(0))).status
    calls = 0
    minute = 0.0
    start = time.perf_counter()
    deadline = start + args.seconds
    while time.perf_counter() < deadline:
        for i in range(200):
            minute += 0.5
            d = decide(
                SPEC,
                status,
                Inputs(
                    now=t0 + dt.timedelta(minutes=minute),
                    observation=OBS[i % 3],
                    canary_revision="r",
                    route=RouteState(status["weight"]),
                ),
            )
            status = d.status if d.status.get("phase") != "Completed" else status
        calls += 200
    elapsed = time.perf_counter() - start
    print(
        f"decide(): {calls / elapsed:,.0f} calls/s on one core ({calls} calls in {elapsed:.2f} s, "
        f"{elapsed / calls * 1e6:.1f} µs per call)"
    )


if __name__ == "__main__":
    main()
