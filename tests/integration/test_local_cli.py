"""``wallbounce-local up/status/down`` as a user runs it: a real server, real kubectl, nothing left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wallbounce_local import controlplane, procs

from .test_controlplane import widget_crd

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-m", "wallbounce_local.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=240)


def test_up_status_down(tmp_path: Path) -> None:
    state = tmp_path / "state"
    up = run(*CLI, "--state-dir", str(state), "up")
    assert up.returncode == 0, up.stderr
    exports = dict(re.findall(r"^export (\w+)=(.*)$", up.stdout, re.M))
    assert exports["KUBECONFIG"] == str(state / "kubeconfig")
    assert exports["PATH"].startswith(f"{state / 'bin'}:")
    try:
        env = {**os.environ, "KUBECONFIG": exports["KUBECONFIG"],
               "PATH": exports["PATH"].replace("$PATH", os.environ["PATH"])}
        version = run("kubectl", "version", env=env)
        assert version.returncode == 0, version.stderr
        assert re.search(r"^Server Version: v1\.36\.\d+$", version.stdout, re.M), version.stdout

        crd = tmp_path / "crd.yaml"
        import yaml

        crd.write_text(yaml.safe_dump(widget_crd("gadgets")))
        applied = run("kubectl", "apply", "-f", str(crd), env=env)
        assert applied.returncode == 0, applied.stderr
        assert "created" in applied.stdout
        run("kubectl", "wait", "--for=condition=Established", f"crd/gadgets.{'selftest.wallbounce.dev'}",
            "--timeout=30s", env=env)
        resources = run("kubectl", "api-resources", "--api-group=selftest.wallbounce.dev", env=env)
        assert re.search(r"^gadgets\s", resources.stdout, re.M), resources.stdout

        again = run(*CLI, "--state-dir", str(state), "up")
        assert again.returncode == 0
        assert "already running" in again.stderr
        assert again.stdout == up.stdout

        status = run(*CLI, "--state-dir", str(state), "status")
        assert status.returncode == 0
        assert re.search(r"^kube-apiserver\s+pid \d+\s+running", status.stdout, re.M)
        assert re.search(r"^etcd\s+pid \d+\s+running", status.stdout, re.M)
        pids = controlplane.read_state(state).pids  # type: ignore[union-attr]
    finally:
        down = run(*CLI, "--state-dir", str(state), "down")
    assert down.returncode == 0
    assert not state.exists()
    assert not any(procs.pid_alive(pid) for pid in pids.values())
    assert procs.pids_mentioning(str(state)) == []
    assert run(*CLI, "--state-dir", str(state), "status").returncode == 3


def test_down_cleans_up_after_a_crash(tmp_path: Path) -> None:
    """kube-apiserver killed by hand: status reports it, down still stops etcd, up starts anew."""
    state = tmp_path / "state"
    assert run(*CLI, "--state-dir", str(state), "up").returncode == 0
    try:
        recorded = controlplane.read_state(state)
        assert recorded is not None
        procs.terminate(recorded.pids["kube-apiserver"], timeout=0)
        status = run(*CLI, "--state-dir", str(state), "status")
        assert status.returncode == 1
        assert re.search(r"^kube-apiserver\s+pid \d+\s+NOT RUNNING", status.stdout, re.M)

        restarted = run(*CLI, "--state-dir", str(state), "up")
        assert restarted.returncode == 0, restarted.stderr
        assert "cleaning up and starting anew" in restarted.stderr
        assert not procs.pid_alive(recorded.pids["etcd"])
    finally:
        down = run(*CLI, "--state-dir", str(state), "down")
    assert down.returncode == 0
    assert procs.pids_mentioning(str(state)) == []
