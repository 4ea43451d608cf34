"""The kubectl plugin through the real kubectl (``kubectl wallbounce …``): list, status, pause,
resume, promote, promote --full, abort, retry — and the columns of ``kubectl get wbr``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wallbounce_api import ACTION_ANNOTATION
from wallbounce_local import controlplane
from wallbounce_local.components import Operator

from .conftest import Driver

pytestmark = pytest.mark.integration


def run_cli(*args: str, kubeconfig: str) -> subprocess.CompletedProcess[str]:
    """A command with this environment's console scripts (``kubectl-wallbounce``) on PATH."""
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "KUBECONFIG": kubeconfig, "PATH": f"{bindir}:{os.environ['PATH']}"}
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=60)


def test_actions_through_kubectl(driver: Driver, operator: Operator, control_plane: controlplane.ControlPlane,
                                 kubectl: object) -> None:
    kc = str(control_plane.kubeconfig)
    k = str(kubectl)
    ns = driver.namespace
    driver.healthy()
    ladder = [{"weight": w, "duration": "1h", "minRequests": 20} for w in (1, 2, 10, 50)]
    driver.apply("act", phases=ladder)
    driver.wait_weight(1)

    def do(*args: str) -> str:
        out = run_cli(k, "wallbounce", "-n", ns, *args, kubeconfig=kc)
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert "pause requested" in do("pause", "act")
    status = driver.wait_phase("act", "Paused", timeout=30)
    assert status["pauseReason"] == "Manual"
    annotations = driver.get("act")["metadata"].get("annotations") or {}
    assert ACTION_ANNOTATION not in annotations  # consumed
    do("resume", "act")
    driver.wait_status("act", "resumed", lambda s: s.get("phase") in ("Progressing", "Holding"), timeout=30)
    do("promote", "act")
    driver.wait_weight(2)
    do("promote", "act", "--full")
    driver.wait_phase("act", "Completed", timeout=30)
    driver.wait_weight(50)
    do("abort", "act")  # ignored: already completed
    driver.wait_reason("act", "ActionIgnored", timeout=30)
    assert driver.status("act")["phase"] == "Completed"

    driver.apply("act2", phases=ladder, route="techsapo2")
    driver.create_route("techsapo2")
    driver.wait_weight(1, route="techsapo2")
    do("abort", "act2")
    driver.wait_phase("act2", "Aborted", timeout=30)
    driver.wait_weight(0, route="techsapo2")
    do("retry", "act2")
    driver.wait_status("act2", "restarted", lambda s: s.get("phase") in ("Progressing", "Holding"), timeout=30)
    driver.wait_weight(1, route="techsapo2")
    driver.wait_reason("act2", "Retried")
    transitions = [h["reason"] for h in driver.history("act2")]
    assert transitions.index("Aborted") < transitions.index("Retried")

    listing = do("list")
    assert re.search(r"^act\s+Completed\s+4/4\s+50%", listing, re.M), listing
    status_text = do("status", "act")
    assert "Phase:       Completed" in status_text
    assert "canary techsapo-canary 50%" in status_text and "stable techsapo-stable 50%" in status_text
    assert "History:" in status_text

    table = run_cli(k, "get", "wbr", "-n", ns, kubeconfig=kc).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "STEP", "WEIGHT", "ERROR-RATE", "P95", "CONFIDENCE", "AGE"]
    assert re.search(r"^act\s+Completed\s+4\s+50\s+", table, re.M), table

    missing = run_cli(k, "wallbounce", "-n", ns, "status", "nope", kubeconfig=kc)
    assert missing.returncode == 1 and "not found" in missing.stderr
