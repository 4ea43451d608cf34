"""Fixtures of the shipping tests: helm and promtool binaries, and a cluster ready for dry-runs (the real
kube-apiserver with our CRD, the third-party CRDs and Argo CD's Application CRD installed)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.shipping.support import ARGOCD_MODULE, CRD, run
from wallbounce_api import CRD_NAME
from wallbounce_local import testbin, thirdparty


@dataclass(frozen=True)
class Cluster:
    kubectl: Path
    kubeconfig: Path


@pytest.fixture(scope="session")
def helm() -> Path:
    try:
        return testbin.binary("helm", part="helm")
    except testbin.TestbinError as exc:
        pytest.fail(f"helm is needed by the chart tests and could not be built: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def promtool() -> Path:
    found = shutil.which("promtool") or ("/usr/bin/promtool" if Path("/usr/bin/promtool").exists() else None)
    if not found:
        pytest.fail("promtool not found: install Debian's prometheus package (make system-deps does)", pytrace=False)
    return Path(found)


def _apply_crd(kubectl: Path, kubeconfig: Path, path: Path) -> None:
    run([kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "--force-conflicts", "-f", path])


@pytest.fixture(scope="session")
def cluster(control_plane: Any, kube: Any, kubectl: Path, third_party_crds: list[str]) -> Cluster:
    """The local API server with every CRD the artifacts use, and the namespaces the kustomize base and
    the Argo CD examples name (they must exist for a server-side dry-run of namespaced objects)."""
    kubeconfig = Path(control_plane.kubeconfig)
    if not CRD.exists():
        pytest.fail(f"{CRD} is missing: the manifests cannot be validated without the WallBounceRollout CRD",
                    pytrace=False)
    _apply_crd(kubectl, kubeconfig, CRD)
    try:
        argocd = thirdparty.module_dir(*ARGOCD_MODULE)
    except thirdparty.ThirdPartyError as exc:
        pytest.fail(f"Argo CD's Go module (for its Application CRD) is not available: {exc}", pytrace=False)
    _apply_crd(kubectl, kubeconfig, argocd / "manifests" / "crds" / "application-crd.yaml")
    # not `kubectl wait`: it fails at once on a CRD whose status the API server has not written yet
    thirdparty.wait_established(kube, [CRD_NAME, "applications.argoproj.io"])
    for ns in ("wallbounce", "argocd"):
        proc = run([kubectl, "--kubeconfig", kubeconfig, "create", "namespace", ns], check=False)
        assert proc.returncode == 0 or "AlreadyExists" in proc.stderr, proc.stderr
    return Cluster(kubectl, kubeconfig)
