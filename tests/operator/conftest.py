"""Fixtures for the operator's integration tests: our CRD and the routers' CRDs in the real API server, one
traffic exporter and one Prometheus scraping it for the session, a ``RolloutDriver`` per test (its namespace
holds the techsapo pair and route), and the operator process per test (its log is attached to a failing
test's report)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wallbounce_local import controlplane, procs
from wallbounce_local.components import Exporter, Operator
from wallbounce_local.crds import install_wallbounce_crd
from wallbounce_local.driver import RolloutDriver
from wallbounce_local.prometheus import Prometheus
from wallbounce_local.traffic import ExporterTraffic

#: Every rollout of these tests: analysed every second over 8 s, at 95 %; 20 errors in a row pause it.
ANALYSIS = {"interval": "1s", "window": "8s", "confidenceLevel": 0.95, "errorLimit": 20}
#: The seed's ladder with 2 s steps.
LADDER = [{"weight": w, "duration": "2s", "minRequests": 20} for w in (1, 2, 10, 20, 35, 50)]

Driver = RolloutDriver[ExporterTraffic]
_operators: list[Operator] = []


@pytest.fixture(scope="session")
def wbr_crd(kube: Any, third_party_crds: list[str]) -> str:
    return install_wallbounce_crd(kube)


@pytest.fixture(scope="session")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    ex = Exporter(tmp_path_factory.mktemp("exporter") / "exporter.log")
    try:
        ex.start()
    except procs.StartError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield ex
    ex.stop()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory, exporter: Exporter) -> Iterator[Prometheus]:
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), [exporter.scrape_job()])
    try:
        server.start()
    except procs.StartError as exc:
        pytest.fail(f"Prometheus did not start: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def driver(kube: Any, wbr_crd: str, namespace: str, exporter: Exporter, prometheus: Prometheus) -> Driver:
    """Rollouts in a fresh namespace holding the techsapo pair and an HTTPRoute at 100/0."""
    d = RolloutDriver(kube, namespace, prometheus=prometheus.url, traffic=ExporterTraffic(exporter.url, namespace),
                      analysis=ANALYSIS, phases=LADDER)
    d.create_pair()
    d.create_route()
    return d


@pytest.fixture
def operator(control_plane: controlplane.ControlPlane, driver: Driver, prometheus: Prometheus,
             tmp_path: Path) -> Iterator[Operator]:
    op = Operator(tmp_path / "operator.log", control_plane.kubeconfig, namespaces=[driver.namespace],
                  args=("--prometheus", prometheus.url, "--guard-period", "1"))
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
