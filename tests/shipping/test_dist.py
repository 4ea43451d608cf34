"""``make dist``: dist/install.yaml (namespace, CRD, RBAC, operator) and dist/wallbounce-service.yaml (the example
service) rendered from the charts with the images named by REGISTRY and TAG, both accepted by the real API server
(``kubectl apply --server-side --dry-run=server``, as the README installs them); ``make images`` builds and pushes
exactly the images they name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.shipping.conftest import Cluster
from tests.shipping.support import ROOT, documents, run


def make_dist(helm: Path, out: Path) -> None:
    env = {**os.environ, "HELM": str(helm), "PYTHON": sys.executable, "REGISTRY": "registry.example/team",
           "TAG": "1.2.3"}
    work = out / "repo"
    # the script writes into dist/ of the folder it lives in: run a copy so the checkout's dist/ is left alone
    subprocess.run(["cp", "-r", str(ROOT / "scripts"), str(ROOT / "charts"), str(ROOT / "plugins"), str(out)],
                   check=True)
    work.mkdir()
    for name in ("scripts", "charts", "plugins"):
        (out / name).rename(work / name)
    (work / "testbin").mkdir()
    proc = subprocess.run(["bash", str(work / "scripts" / "dist.sh")], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    for name in ("install.yaml", "wallbounce-service.yaml", "kubectl-wallbounce.tar.gz", "wallbounce.yaml"):
        (work / "dist" / name).rename(out / name)


def test_dist_manifests_are_accepted_by_the_api_server(helm: Path, cluster: Cluster, tmp_path: Path) -> None:
    make_dist(helm, tmp_path)
    install = documents((tmp_path / "install.yaml").read_text())
    service = documents((tmp_path / "wallbounce-service.yaml").read_text())
    assert install[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "wallbounce-system", "labels": {"app.kubernetes.io/part-of": "wallbounce"}}}
    kinds = {o["kind"] for o in install}
    assert {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ServiceAccount", "Deployment",
            "Role", "RoleBinding"} <= kinds
    assert all(o["metadata"].get("namespace") in (None, "wallbounce-system") for o in install)
    operator = next(o for o in install if o["kind"] == "Deployment")
    assert operator["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/team/operator:1.2.3"
    images = {c["image"] for o in service if o["kind"] == "Deployment"
              for c in o["spec"]["template"]["spec"]["containers"]}
    assert images == {"registry.example/team/service:1.2.3"}
    assert {o["kind"] for o in service} >= {"Namespace", "Deployment", "Service", "HTTPRoute", "WallBounceRollout"}
    base = [cluster.kubectl, "--kubeconfig", cluster.kubeconfig]
    for ns in ("wallbounce-system", "llm"):  # a dry run creates no namespace for the objects after it
        proc = run([*base, "create", "namespace", ns], check=False)
        assert proc.returncode == 0 or "AlreadyExists" in proc.stderr
    for path, objects in ((tmp_path / "install.yaml", install), (tmp_path / "wallbounce-service.yaml", service)):
        proc = run([*base, "apply", "--server-side", "--dry-run=server", "--force-conflicts", "-f", path])
        accepted = [line for line in proc.stdout.splitlines() if line.endswith("(server dry run)")]
        assert len(accepted) == len(objects), proc.stdout


def test_make_images_builds_and_pushes_what_dist_names() -> None:
    proc = run(["make", "-n", "-C", str(ROOT), "images", "REGISTRY=registry.example/team", "TAG=1.2.3"])
    lines = proc.stdout.splitlines()
    assert "docker build --target operator -t registry.example/team/operator:1.2.3 ." in lines
    assert "docker build --target service -t registry.example/team/service:1.2.3 ." in lines
    assert "docker push registry.example/team/operator:1.2.3" in proc.stdout
    assert "docker push registry.example/team/service:1.2.3" in proc.stdout
