"""The kubectl plugin through the real kubectl (``kubectl wallbounce …``): list, status, pause,
resume, promote, promote --full, abort, retry — and the columns of ``kubectl get wbr``."""

from __future__ import annotations

import re

import pytest

from wallbounce_local import controlplane
from wallbounce_local.prometheus import Prometheus

from .kit import Cluster, Exporter, OperatorProcess, run_cli, wait_for
from .test_rollout import healthy

pytestmark = pytest.mark.integration


def test_actions_through_kubectl(cluster: Cluster, exporter: Exporter, prometheus: Prometheus,
                                 operator: OperatorProcess, control_plane: controlplane.ControlPlane,
                                 kubectl: object) -> None:
    kc = str(control_plane.kubeconfig)
    k = str(kubectl)
    healthy(exporter, cluster)
    ladder = [{"weight": w, "duration": "1h", "minRequests": 20} for w in (1, 2, 10, 50)]
    cluster.rollout("act", prometheus.url, phases=ladder)
    wait_for("1%", lambda: cluster.route_weights() == (99, 1), timeout=30)

    def do(*args: str) -> str:
        out = run_cli(k, "wallbounce", "-n", cluster.ns, *args, kubeconfig=kc)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "pause requested" in do("pause", "act")
    status = cluster.wait_phase("act", "Paused", timeout=30)
    assert status["pauseReason"] == "Manual"
    annotations = cluster.get("act")["metadata"].get("annotations") or {}
    assert "wallbounce.dev/action" not in annotations  # consumed
    do("resume", "act")
    wait_for("resumed", lambda: cluster.status("act").get("phase") in ("Progressing", "Holding"), timeout=30)
    do("promote", "act")
    wait_for("2%", lambda: cluster.route_weights() == (98, 2), timeout=30)
    do("promote", "act", "--full")
    cluster.wait_phase("act", "Completed", timeout=30)
    wait_for("50%", lambda: cluster.route_weights() == (50, 50), timeout=30)
    do("abort", "act")  # ignored: already completed
    wait_for("ignored event", lambda: "ActionIgnored" in cluster.reasons("act"), timeout=30)
    assert cluster.status("act")["phase"] == "Completed"

    cluster.rollout("act2", prometheus.url, phases=ladder, route="techsapo2")
    cluster.httproute("techsapo2")
    wait_for("act2 1%", lambda: cluster.route_weights("techsapo2") == (99, 1), timeout=30)
    do("abort", "act2")
    cluster.wait_phase("act2", "Aborted", timeout=30)
    wait_for("act2 0%", lambda: cluster.route_weights("techsapo2") == (100, 0), timeout=30)
    do("retry", "act2")
    wait_for("act2 restarted", lambda: cluster.status("act2").get("phase") in ("Progressing", "Holding"),
             timeout=30)
    wait_for("act2 1% again", lambda: cluster.route_weights("techsapo2") == (99, 1), timeout=30)
    cluster.wait_reason("act2", "Retried")
    transitions = [h["reason"] for h in cluster.status("act2")["history"]]
    assert transitions.index("Aborted") < transitions.index("Retried")

    listing = do("list")
    assert re.search(r"^act\s+Completed\s+4/4\s+50%", listing, re.M), listing
    status_text = do("status", "act")
    assert "Phase:       Completed" in status_text
    assert "canary techsapo-canary 50%" in status_text and "stable techsapo-stable 50%" in status_text
    assert "History:" in status_text

    table = run_cli(k, "get", "wbr", "-n", cluster.ns, kubeconfig=kc).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "STEP", "WEIGHT", "ERROR-RATE", "P95", "CONFIDENCE", "AGE"]
    assert re.search(r"^act\s+Completed\s+4\s+50\s+", table, re.M), table

    missing = run_cli(k, "wallbounce", "-n", cluster.ns, "status", "nope", kubeconfig=kc)
    assert missing.returncode == 1 and "not found" in missing.stderr
