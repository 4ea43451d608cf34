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
    """A command with this environment's console scripts (``kubectl-wallbounce``) and kubectl on PATH, as a user
    has them (the plugin drives the kubectl it is plugged into)."""
    bindir = str(Path(sys.executable).parent)
    kubectl_dir = str(Path(args[0]).parent) if "/" in args[0] else ""
    env = {**os.environ, "KUBECONFIG": kubeconfig, "PATH": f"{bindir}:{kubectl_dir}:{os.environ['PATH']}"}
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

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(k, "wallbounce", "-n", ns, *args, kubeconfig=kc)

    def do(*args: str) -> str:
        out = run(*args)
        assert out.returncode == 0, out.stderr
        return out.stdout

    # an action waits for the operator's answer and prints it
    out = do("pause", "act")
    assert "pause requested" in out and "pause: paused by request" in out, out
    status = driver.status("act")
    assert (status["phase"], status["pauseReason"]) == ("Paused", "Manual")
    assert status["lastAction"]["action"] == "pause" and status["lastAction"]["result"] == "Applied"
    driver.wait_status("act", "the annotation removed",
                       lambda s: (s.get("lastAction") or {}).get("annotationCleared"), timeout=10)
    assert ACTION_ANNOTATION not in (driver.get("act")["metadata"].get("annotations") or {})  # consumed
    ignored = run("pause", "act")
    assert ignored.returncode == 1 and "ActionIgnored: pause ignored: already paused" in ignored.stderr, ignored
    do("resume", "act")
    assert driver.status("act")["phase"] in ("Progressing", "Holding")
    do("promote", "act")
    driver.wait_weight(2)
    do("promote", "act", "--full")
    driver.wait_phase("act", "Completed", timeout=30)
    driver.wait_weight(50)
    done = run("status", "act", "--timeout", "30s")
    assert done.returncode == 0 and "Phase:       Completed" in done.stdout, done

    listing = do("list")
    assert re.search(r"^act\s+Completed\s+4/4\s+50%\s+", listing, re.M), listing
    status_text = do("status", "act")
    assert "canary techsapo-canary 50%" in status_text and "stable techsapo-stable 50%" in status_text
    assert "History:" in status_text and "Last action: promote-full" in status_text
    table = run_cli(k, "get", "wbr", "-n", ns, kubeconfig=kc).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "STEP", "WEIGHT", "ERROR-RATE", "P95", "CONFIDENCE", "AGE"]
    assert re.search(r"^act\s+Completed\s+4\s+50\s+", table, re.M), table

    # a completed canary (50 %) can still be stopped
    do("abort", "act")
    driver.wait_phase("act", "Aborted", timeout=30)
    driver.wait_weight(0)

    driver.create_route("techsapo2")
    driver.apply("act2", phases=ladder, route="techsapo2")
    driver.wait_weight(1, route="techsapo2")
    do("abort", "act2")
    assert run("status", "act2", "--timeout", "5s").returncode == 1  # failed: Aborted
    driver.wait_weight(0, route="techsapo2")
    do("retry", "act2")
    driver.wait_weight(1, route="techsapo2")
    waited = run("status", "act2", "--timeout", "2s")  # a 1 h step: still under way when the timeout passes
    assert waited.returncode == 2 and "did not finish within 2s" in waited.stderr, waited
    driver.wait_reason("act2", "Retried")
    transitions = [h["reason"] for h in driver.history("act2")]
    assert transitions.index("Aborted") < transitions.index("Retried")

    missing = run("status", "nope")
    assert missing.returncode == 1 and "not found" in missing.stderr
