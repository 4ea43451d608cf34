"""Fixtures for the operator's integration tests: our CRD and the routers' CRDs in the real API
server, one traffic exporter and one Prometheus scraping it for the session, and the operator
process per test (its log is attached to a failing test's report)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from wallbounce_local import controlplane, procs, thirdparty
from wallbounce_local.prometheus import Prometheus

from .kit import CRD, Cluster, Exporter, OperatorProcess

_operators: list[OperatorProcess] = []


@pytest.fixture(scope="session")
def wbr_crd(kube: Any, third_party_crds: list[str]) -> str:
    body = yaml.safe_load(CRD.read_text())
    ext = client.ApiextensionsV1Api(kube)
    try:
        ext.create_custom_resource_definition(body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    thirdparty.wait_established(kube, [body["metadata"]["name"]])
    return str(body["metadata"]["name"])


@pytest.fixture(scope="session")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    ex = Exporter(tmp_path_factory.mktemp("exporter") / "exporter.log")
    yield ex
    ex.stop()


def scrape_job(exporter: Exporter) -> dict[str, Any]:
    return {"job_name": "traffic", "honor_labels": True, "static_configs": [{"targets": [exporter.target]}]}


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory, exporter: Exporter) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), [scrape_job(exporter)])
    try:
        server.start()
    except procs.StartError as exc:
        pytest.fail(f"Prometheus did not start: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def cluster(kube: Any, wbr_crd: str, namespace: str) -> Cluster:
    c = Cluster(kube, namespace)
    c.pair()
    c.httproute()
    return c


@pytest.fixture
def operator(control_plane: controlplane.ControlPlane, cluster: Cluster, prometheus: Prometheus,
             tmp_path: Path) -> Iterator[OperatorProcess]:
    op = OperatorProcess(cluster.ns, tmp_path / "operator.log", str(control_plane.kubeconfig),
                         ("--prometheus", prometheus.url))
    _operators.append(op)
    try:
        op.start()
    except procs.StartError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield op
    op.stop()
    _operators.remove(op)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for op in _operators:
            report.sections.append((f"operator log ({op.log})", procs.tail_of(op.log, 80)))
    return report
