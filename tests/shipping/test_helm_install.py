"""The operator chart installed, upgraded and uninstalled by helm against the real local API server: an upgrade from
the previous chart version carries a CRD change (with ``crds.install``), the CRD outlives the release
(``helm.sh/resource-policy: keep``), and a second cluster-wide operator is refused.

The previous version is this chart as version 0.1.0 with the CRD of an earlier commit of this repository
(tests/shipping/fixtures/wallbouncerollouts-previous.yaml: before the relative gates and the evidence existed), so
the upgrade has a real schema change to carry. The CRD is cluster-wide and shared by the test session: the test
puts back crds/wallbouncerollouts.yaml whatever happens.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.shipping.conftest import Cluster
from tests.shipping.support import CRD, OPERATOR_CHART, run
from wallbounce_api import CRD_NAME

PREVIOUS_CRD = Path(__file__).parent / "fixtures" / "wallbouncerollouts-previous.yaml"


def helm_cmd(helm: Path, cluster: Cluster, *args: str | Path) -> list[str | Path]:
    return [helm, "--kubeconfig", cluster.kubeconfig, *args]


def kubectl(cluster: Cluster, *args: str | Path) -> list[str | Path]:
    return [cluster.kubectl, "--kubeconfig", cluster.kubeconfig, *args]


@pytest.fixture
def previous_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "wallbounce-operator"
    shutil.copytree(OPERATOR_CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"] = "0.1.0"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    shutil.copy(PREVIOUS_CRD, chart / "crds" / "wallbouncerollouts.yaml")
    return chart


def crd_phase_properties(cluster: Cluster) -> set[str]:
    crd = yaml.safe_load(run(kubectl(cluster, "get", "crd", CRD_NAME, "-o", "yaml")).stdout)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    phases = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["phases"]
    return set(phases["items"]["properties"])


def rollout(name: str, namespace: str, *, relative: bool) -> dict[str, Any]:
    phase: dict[str, Any] = {"weight": 10, "duration": "5m"}
    if relative:
        phase["relative"] = {"maxClientErrorRateRatio": 2}
    return {"apiVersion": "wallbounce.dev/v1alpha1", "kind": "WallBounceRollout",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"stable": {"deployment": "a-stable", "service": "a-stable"},
                     "canary": {"deployment": "a-canary", "service": "a-canary"},
                     "trafficRouting": {"gatewayAPI": {"httpRoute": "a"}}, "phases": [phase]}}


def create(cluster: Cluster, obj: dict[str, Any], *, check: bool = True) -> Any:
    return run(kubectl(cluster, "create", "--validate=strict", "-f", "-"), input_text=yaml.safe_dump(obj),
               check=check)


def test_upgrade_from_the_previous_version_upgrades_the_crd_and_keeps_it(
        helm: Path, cluster: Cluster, namespace: str, previous_chart: Path) -> None:
    release = "wbup"
    values = ["--namespace", namespace, "--skip-crds", "--set", "crds.install=true", "--set", "rbac.scope=namespace"]
    adoption = [f"meta.helm.sh/release-name={release}", f"meta.helm.sh/release-namespace={namespace}"]
    try:
        # a CRD that came from crds/ (or install.yaml) is adopted by the release first, as the README says
        run(kubectl(cluster, "annotate", "--overwrite", "crd", CRD_NAME, *adoption))
        run(kubectl(cluster, "label", "--overwrite", "crd", CRD_NAME, "app.kubernetes.io/managed-by=Helm"))
        run(helm_cmd(helm, cluster, "install", release, previous_chart, *values))
        assert "relative" not in crd_phase_properties(cluster), "the previous CRD has no relative gates"
        refused = create(cluster, rollout("new-field", namespace, relative=True), check=False)
        assert refused.returncode != 0 and "relative" in refused.stderr, refused
        create(cluster, rollout("before", namespace, relative=False))

        run(helm_cmd(helm, cluster, "upgrade", release, OPERATOR_CHART, *values))
        assert "relative" in crd_phase_properties(cluster), "the upgrade carried the CRD change"
        create(cluster, rollout("after", namespace, relative=True))
        names = run(kubectl(cluster, "get", "wbr", "-n", namespace, "-o", "name")).stdout.split()
        assert sorted(names) == [f"wallbouncerollout.wallbounce.dev/{n}" for n in ("after", "before")]
        history = yaml.safe_load(run(helm_cmd(helm, cluster, "history", release, "-n", namespace, "-o",
                                              "yaml")).stdout)
        assert [h["chart"] for h in history] == ["wallbounce-operator-0.1.0", "wallbounce-operator-0.2.0"]

        run(helm_cmd(helm, cluster, "uninstall", release, "-n", namespace))
        kept = yaml.safe_load(run(kubectl(cluster, "get", "crd", CRD_NAME, "-o", "yaml")).stdout)
        assert kept["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        names = run(kubectl(cluster, "get", "wbr", "-n", namespace, "-o", "name")).stdout.split()
        assert len(names) == 2, "uninstalling the operator keeps the CRD and so every rollout"
    finally:
        run(helm_cmd(helm, cluster, "uninstall", release, "-n", namespace, "--ignore-not-found"), check=False)
        run(kubectl(cluster, "annotate", "crd", CRD_NAME, "meta.helm.sh/release-name-",
                    "meta.helm.sh/release-namespace-", "helm.sh/resource-policy-"), check=False)
        run(kubectl(cluster, "label", "crd", CRD_NAME, "app.kubernetes.io/managed-by-"), check=False)
        run(kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", CRD))


def test_a_second_cluster_wide_operator_is_refused(helm: Path, cluster: Cluster, namespace: str, kube: Any) -> None:
    from kubernetes import client

    other = f"{namespace}-b"
    client.CoreV1Api(kube).create_namespace({"metadata": {"name": other}})
    try:
        run(helm_cmd(helm, cluster, "install", "wbfirst", OPERATOR_CHART, "-n", namespace, "--skip-crds"))
        second = run(helm_cmd(helm, cluster, "install", "wbsecond", OPERATOR_CHART, "-n", other, "--skip-crds"),
                     check=False)
        assert second.returncode != 0
        assert 'release "wbfirst" already runs a cluster-wide wallbounce operator' in second.stderr, second.stderr
        run(helm_cmd(helm, cluster, "install", "wbsecond", OPERATOR_CHART, "-n", other, "--skip-crds",
                     "--set", "rbac.scope=namespace"))
        roles = run(kubectl(cluster, "get", "roles", "-n", other, "-o", "name")).stdout.split()
        assert sorted(roles) == ["role.rbac.authorization.k8s.io/wbsecond-wallbounce-operator",
                                 "role.rbac.authorization.k8s.io/wbsecond-wallbounce-operator-leases"]
        # upgrading the first one is not refused by its own ClusterRole
        run(helm_cmd(helm, cluster, "upgrade", "wbfirst", OPERATOR_CHART, "-n", namespace, "--set", "shards=4"))
    finally:
        for release, ns in (("wbfirst", namespace), ("wbsecond", other)):
            run(helm_cmd(helm, cluster, "uninstall", release, "-n", ns, "--ignore-not-found"), check=False)
        client.CoreV1Api(kube).delete_namespace(other)
