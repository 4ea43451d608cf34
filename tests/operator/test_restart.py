"""Restart safety: the operator SIGKILLed and restarted several times mid-ladder finishes the ladder
with no phase skipped or repeated and no dwell shortened (checked from the history and events)."""

from __future__ import annotations

import datetime as dt
import itertools
import time

import pytest

from wallbounce_local.prometheus import Prometheus

from .kit import Cluster, Exporter, OperatorProcess, wait_for
from .test_rollout import healthy

pytestmark = pytest.mark.integration


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_sigkill_mid_ladder(cluster: Cluster, exporter: Exporter, prometheus: Prometheus,
                            operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    ladder = [{"weight": w, "duration": "3s", "minRequests": 20} for w in (1, 2, 10, 20, 35, 50)]
    cluster.rollout("phoenix", prometheus.url, phases=ladder)
    kills = 0
    deadline = time.monotonic() + 150
    while cluster.status("phoenix").get("phase") != "Completed" and time.monotonic() < deadline:
        time.sleep(2.2 + kills * 0.7)
        if cluster.status("phoenix").get("phase") == "Completed":
            break
        operator.kill()
        kills += 1
        time.sleep(0.5)
        operator.start()
    status = cluster.wait_phase("phoenix", "Completed", timeout=60)
    assert kills >= 3
    promotions = [h for h in status["history"] if h["reason"] in ("Started", "PhasePromoted", "Completed")]
    assert [h["weight"] for h in promotions] == [1, 2, 10, 20, 35, 50, 50]  # none skipped, none repeated
    for before, after in itertools.pairwise(promotions):
        assert (ts(after["time"]) - ts(before["time"])).total_seconds() >= 3  # dwell never shortened
    reasons = cluster.reasons("phoenix")
    assert reasons.count("PhasePromoted") == 5
    assert reasons.count("Completed") == 1
    wait_for("route at 50%", lambda: cluster.route_weights() == (50, 50), timeout=30)
