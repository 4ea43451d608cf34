"""The kubectl plugin through the real kubectl against the real API server (no operator: the tests write the
rollouts' status themselves): ``get`` as a tree and as JSON/YAML, ``--watch`` through one watch (no polling),
``status --timeout`` exit codes, ``set image``, kubectl's completion, the namespace and context resolved as kubectl
does (two contexts), and the Krew install path (the manifest and the archive ``make dist`` writes, installed by the
real Krew and run by a Python without any package of this project)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.shipping.support import ROOT
from wallbounce_api import CRD_NAME
from wallbounce_local import testbin, thirdparty

pytestmark = pytest.mark.integration
BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="module")
def setup(control_plane: Any, kube: Any, kubectl: Path, third_party_crds: list[str]) -> dict[str, Any]:
    kubeconfig = Path(control_plane.kubeconfig)
    subprocess.run([kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "--force-conflicts", "-f",
                    ROOT / "crds" / "wallbouncerollouts.yaml"], check=True, capture_output=True)
    thirdparty.wait_established(kube, [CRD_NAME])
    return {"kubeconfig": kubeconfig, "kubectl": kubectl}


def env_for(setup: dict[str, Any], kubeconfig: Path | None = None, **extra: str) -> dict[str, str]:
    path = f"{BIN}:{Path(setup['kubectl']).parent}:{os.environ['PATH']}"
    return {**os.environ, "KUBECONFIG": str(kubeconfig or setup["kubeconfig"]), "PATH": path, **extra}


def kubectl(setup: dict[str, Any], *args: str, input_text: str | None = None,
            kubeconfig: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(setup["kubectl"]), *args], input=input_text, capture_output=True, text=True,
                          env=env_for(setup, kubeconfig, **extra), timeout=60, check=False)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def deployment(name: str, image: str, revision: int, ready: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "annotations": {"deployment.kubernetes.io/revision": str(revision)}},
            "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "service", "image": image}]}}}}


def make_rollout(setup: dict[str, Any], ns: str, name: str = "techsapo", *, phase: str = "Progressing",
                 weight: int = 2, **status: Any) -> None:
    """Deployments, an HTTPRoute and a WallBounceRollout whose status the test writes (as the operator would)."""
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": name, "annotations": {"wallbounce.dev/rollout": name}},
             "spec": {"rules": [{"backendRefs": [{"name": f"{name}-stable", "port": 4000, "weight": 100 - weight},
                                                 {"name": f"{name}-canary", "port": 4000, "weight": weight}]}]}}
    rollout = {"apiVersion": "wallbounce.dev/v1alpha1", "kind": "WallBounceRollout", "metadata": {"name": name},
               "spec": {"stable": {"deployment": f"{name}-stable", "service": f"{name}-stable"},
                        "canary": {"deployment": f"{name}-canary", "service": f"{name}-canary"},
                        "trafficRouting": {"gatewayAPI": {"httpRoute": name}}}}
    objects = [deployment(f"{name}-stable", "registry.example/service:1.0", 3, 2),
               deployment(f"{name}-canary", "registry.example/service:1.1", 5, 1), route, rollout]
    ok(kubectl(setup, "apply", "-n", ns, "-f", "-", input_text=yaml.safe_dump_all(objects)))
    for dep, ready in ((f"{name}-stable", 2), (f"{name}-canary", 1)):
        ok(kubectl(setup, "patch", "deployment", dep, "-n", ns, "--subresource=status", "--type=merge", "-p",
                   json.dumps({"status": {"replicas": 2, "readyReplicas": ready, "availableReplicas": ready,
                                          "updatedReplicas": ready}})))
    set_status(setup, ns, name, phase=phase, weight=weight, **status)


def set_status(setup: dict[str, Any], ns: str, name: str, **status: Any) -> None:
    generation = json.loads(ok(kubectl(setup, "get", "wbr", name, "-n", ns, "-o", "json")))["metadata"]["generation"]
    body = {"step": 2, "steps": 6, "desiredWeight": status.get("weight"), "observedGeneration": generation,
            "canaryRevision": "5d4f8c", "analysis": {"verdict": "Pass", "reason": "all gates hold"}, **status}
    ok(kubectl(setup, "patch", "wbr", name, "-n", ns, "--subresource=status", "--type=merge", "-p",
               json.dumps({"status": body})))


def plugin(setup: dict[str, Any], *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return kubectl(setup, "wallbounce", *args, **extra)


def test_get_draws_the_rollout_its_deployments_and_route(setup: dict[str, Any], namespace: str) -> None:
    make_rollout(setup, namespace)
    text = ok(plugin(setup, "get", "techsapo", "-n", namespace))
    assert "Phase:       Progressing" in text and "Step:        2/6" in text
    lines = text.splitlines()
    stable = next(line for line in lines if "stable: techsapo-stable" in line)
    canary = next(line for line in lines if "canary: techsapo-canary" in line)
    route = next(line for line in lines if "route: techsapo" in line)
    assert "2/2 ready, 2 available" in stable and "rev 3" in stable and "service=registry.example/service:1.0" in stable
    assert "weight 98%" in stable
    assert "1/2 ready, 1 available" in canary and "rev 5 (5d4f8c)" in canary and "service:1.1" in canary
    assert "weight 2%" in canary and "HTTPRoute" in route and "stable 98% / canary 2%" in route

    data = json.loads(ok(plugin(setup, "get", "techsapo", "-n", namespace, "-o", "json")))
    assert (data["phase"], data["step"], data["weight"]) == ("Progressing", 2, 2)
    assert data["stable"]["images"] == {"service": "registry.example/service:1.0"}
    assert (data["canary"]["revision"], data["canary"]["ready"], data["canary"]["currentRevisionHash"]) == (
        "5", 1, "5d4f8c")
    assert data["route"] == {"kind": "HTTPRoute", "name": "techsapo", "found": True,
                             "weights": {"stable": 98, "canary": 2}}
    as_yaml = yaml.safe_load(ok(plugin(setup, "get", "techsapo", "-n", namespace, "-o", "yaml")))
    assert as_yaml == data
    listed = json.loads(ok(plugin(setup, "list", "-n", namespace, "-o", "json")))
    assert [i["metadata"]["name"] for i in listed["items"]] == ["techsapo"]
    missing = plugin(setup, "get", "nope", "-n", namespace)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_list_names_the_replica_holding_each_rollouts_shard(setup: dict[str, Any], namespace: str) -> None:
    """OWNER is the holder of the shard Lease the operator's own hash puts the rollout in; '-' without Leases or with
    an expired one. (Other tests' replicas leave Leases in the shared API server: expired ones, ignored.)"""
    from wallbounce_operator.shards import SHARD_LABEL, SHARD_PREFIX, SHARDS_LABEL, shard_of

    names = ["alpha", "beta"]
    for name in names:
        make_rollout(setup, namespace, name)
    unsharded = ok(plugin(setup, "list", "-n", namespace)).splitlines()
    assert "OWNER" in unsharded[0] and all(line.split()[5] == "-" for line in unsharded[1:])
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def lease(index: int, renewed: str) -> dict[str, Any]:
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": f"{SHARD_PREFIX}{index}", "labels": {SHARD_LABEL: "shard", SHARDS_LABEL: "4"}},
                "spec": {"holderIdentity": f"replica-{index}", "renewTime": renewed, "leaseDurationSeconds": 15}}

    # shard 0's Lease expired long ago (its replica is gone): its rollouts have no owner until one takes it
    leases = [lease(index, now if index else "2020-01-01T00:00:00.000000Z") for index in range(4)]
    ok(kubectl(setup, "apply", "-n", namespace, "-f", "-", input_text=yaml.safe_dump_all(leases)))
    try:
        listed = ok(plugin(setup, "list", "-n", namespace)).splitlines()[1:]
        rows = {line.split()[0]: line.split()[5] for line in listed}
        expected = {name: shard_of(namespace, name, 4) for name in names}
        assert rows == {name: f"replica-{shard}" if shard else "-" for name, shard in expected.items()}
    finally:
        ok(kubectl(setup, "delete", "leases", "-n", namespace, "-l", f"{SHARD_LABEL}=shard"))


def test_watch_is_one_watch_not_polling(setup: dict[str, Any], namespace: str, tmp_path: Path) -> None:
    """--watch prints the tree again at each change of the rollout, from one ``kubectl get --watch``: a kubectl
    wrapper logs every invocation."""
    make_rollout(setup, namespace)
    log = tmp_path / "calls.log"
    wrapper = tmp_path / "kubectl"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {setup["kubectl"]} "$@"\n')
    wrapper.chmod(0o755)
    proc = subprocess.Popen([f"{BIN}/kubectl-wallbounce", "get", "techsapo", "-n", namespace, "--watch",
                             "--timeout", "30s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env_for(setup, WALLBOUNCE_KUBECTL=str(wrapper)))
    try:
        time.sleep(4)  # idle: a poller would be calling kubectl meanwhile
        idle_calls = log.read_text().splitlines()
        set_status(setup, namespace, "techsapo", phase="Completed", weight=50, step=6)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(log.read_text().splitlines()) < len(idle_calls) + 1:
            time.sleep(0.2)
        time.sleep(2)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    calls = log.read_text().splitlines()
    watches = [c for c in calls if "--watch" in c]
    assert len(watches) == 1 and "--output-watch-events" in watches[0], calls
    assert not [c for c in calls if c.startswith("get") and CRD_NAME.split(".")[0] in c and "--watch" not in c], (
        f"the rollout was re-read outside the watch: {calls}")
    assert "Phase:       Progressing" in out and "Phase:       Completed" in out, out + err
    assert out.index("Phase:       Progressing") < out.index("Phase:       Completed")
    assert len(calls) == len(idle_calls) + 1, "one read of the Deployments and route per change, nothing else"


@pytest.mark.parametrize(("phase", "stalled", "code"), [
    ("Completed", False, 0), ("Promoted", False, 0), ("RolledBack", False, 1), ("Aborted", False, 1),
    ("Holding", True, 1), ("Progressing", False, 2)])
def test_status_timeout_exit_codes(setup: dict[str, Any], namespace: str, phase: str, stalled: bool,
                                   code: int) -> None:
    conditions = [{"type": "Stalled", "status": "True" if stalled else "False", "reason": "ProgressDeadlineExceeded",
                   "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    make_rollout(setup, namespace, phase=phase, conditions=conditions)
    proc = plugin(setup, "status", "techsapo", "-n", namespace, "--timeout", "2s")
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert f"Phase:       {phase}" in proc.stdout
    if code == 2:
        assert "did not finish within 2s" in proc.stderr


def test_set_image_changes_the_canary_only(setup: dict[str, Any], namespace: str) -> None:
    make_rollout(setup, namespace)
    out = ok(plugin(setup, "set", "image", "techsapo", "registry.example/service:1.2", "-n", namespace))
    assert "deployment.apps/techsapo-canary" in out

    def image(dep: str) -> str:
        obj = json.loads(ok(kubectl(setup, "get", "deployment", dep, "-n", namespace, "-o", "json")))
        return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])

    assert image("techsapo-canary") == "registry.example/service:1.2"
    assert image("techsapo-stable") == "registry.example/service:1.0"
    ok(plugin(setup, "set", "image", "techsapo", "service=registry.example/service:1.3", "-n", namespace))
    assert image("techsapo-canary") == "registry.example/service:1.3"
    wrong = plugin(setup, "set", "image", "techsapo", "sidecar=x:1", "-n", namespace)
    assert wrong.returncode == 1 and "no container 'sidecar'" in wrong.stderr


def test_namespace_and_context_are_resolved_as_kubectl_does(setup: dict[str, Any], namespace: str,
                                                            tmp_path: Path) -> None:
    """Two contexts on one cluster, each with its own namespace: ``--context`` takes that context's namespace (not
    the current context's), ``-n`` wins over both, and the current context is the default."""
    other = f"{namespace}-b"
    ok(kubectl(setup, "create", "namespace", other))
    make_rollout(setup, namespace, "in-a")
    make_rollout(setup, other, "in-b")
    config = yaml.safe_load(Path(setup["kubeconfig"]).read_text())
    base = config["contexts"][0]["context"]
    config["contexts"] = [{"name": "ctx-a", "context": {**base, "namespace": namespace}},
                          {"name": "ctx-b", "context": {**base, "namespace": other}}]
    config["current-context"] = "ctx-a"
    two = tmp_path / "kubeconfig"
    two.write_text(yaml.safe_dump(config))

    def names(*args: str) -> list[str]:
        listed = json.loads(ok(kubectl(setup, "wallbounce", "list", "-o", "json", *args, kubeconfig=two)))
        return [i["metadata"]["name"] for i in listed["items"]]

    assert names() == ["in-a"]
    assert names("--context", "ctx-b") == ["in-b"]
    assert names("--context", "ctx-b", "-n", namespace) == ["in-a"]
    assert names("-n", other) == ["in-b"]
    assert ok(kubectl(setup, "wallbounce", "--context", "ctx-b", "get", "in-b", "-o", "json",
                      kubeconfig=two)).count('"in-b-canary"') == 1


def test_completion_through_kubectl(setup: dict[str, Any], namespace: str) -> None:
    make_rollout(setup, namespace)

    def complete(*words: str) -> list[str]:
        out = ok(kubectl(setup, "__complete", "wallbounce", *words))
        lines = out.splitlines()
        assert lines[-1].startswith(":"), out
        return lines[:-1]

    assert {"get", "status", "promote", "set"} <= set(complete(""))
    assert complete("st") == ["status"]
    assert complete("get", "-n", namespace, "") == ["techsapo"]
    assert complete("set", "image", "-n", namespace, "tech") == ["techsapo"]
    assert set(complete("get", "techsapo", "-o", "")) == {"json", "yaml"}
    assert "--watch" in complete("status", "-")


def test_krew_installs_the_plugin_that_runs_without_this_project(setup: dict[str, Any], namespace: str,
                                                                 tmp_path: Path) -> None:
    """``make dist``'s archive and manifest, installed by Krew itself, run by a clean virtualenv's python3."""
    make_rollout(setup, namespace)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "wallbounce_kubectl.package", dist], check=True, timeout=60)
    again = tmp_path / "again"
    subprocess.run([sys.executable, "-m", "wallbounce_kubectl.package", again], check=True, timeout=60)
    archive = (dist / "kubectl-wallbounce.tar.gz").read_bytes()
    assert archive == (again / "kubectl-wallbounce.tar.gz").read_bytes(), "the archive is reproducible"
    manifest = yaml.safe_load((dist / "wallbounce.yaml").read_text())
    committed = yaml.safe_load((ROOT / "plugins" / "wallbounce.yaml").read_text())
    import hashlib

    assert manifest["spec"]["platforms"][0]["sha256"] == hashlib.sha256(archive).hexdigest()
    manifest["spec"]["platforms"][0]["sha256"] = committed["spec"]["platforms"][0]["sha256"]
    assert manifest == committed, "dist/wallbounce.yaml is plugins/wallbounce.yaml with the archive's sha256"

    venv = tmp_path / "clean"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    krew = testbin.binary("kubectl-krew", part="krew")
    root = tmp_path / "krew"
    kubectl_dir = Path(setup["kubectl"]).parent
    path = f"{venv / 'bin'}:{root / 'bin'}:{krew.parent}:{kubectl_dir}:/usr/bin:/bin"
    env = {"HOME": str(tmp_path), "KREW_ROOT": str(root), "PATH": path, "KUBECONFIG": str(setup["kubeconfig"])}
    installed = subprocess.run([str(setup["kubectl"]), "krew", "install", f"--manifest={dist / 'wallbounce.yaml'}",
                                f"--archive={dist / 'kubectl-wallbounce.tar.gz'}"], capture_output=True, text=True,
                               env=env, timeout=120, check=False)
    assert installed.returncode == 0, installed.stderr
    assert (root / "bin" / "kubectl-wallbounce").exists()
    proc = subprocess.run([str(setup["kubectl"]), "wallbounce", "get", "techsapo", "-n", namespace, "-o", "json"],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["route"]["weights"] == {"stable": 98, "canary": 2}
    isolated = subprocess.run([str(venv / "bin" / "python3"), "-c", "import wallbounce_api"], capture_output=True,
                              env=env, check=False)
    assert isolated.returncode != 0, "the clean virtualenv must not see this project's packages"
    listed = [line.split()[0] for line in subprocess.run(
        [str(setup["kubectl"]), "plugin", "list", "--name-only"], capture_output=True, text=True, env=env,
        check=False).stdout.splitlines() if line.strip()]
    assert "kubectl-wallbounce" in listed
