"""pytest fixtures for the real local parts, shared by ``tests/`` and ``e2e/``.

- ``control_plane`` (session): one etcd + kube-apiserver for the whole run; ``KUBECONFIG`` points at it.
- ``kube`` (session): a ``kubernetes.client.ApiClient`` for that server.
- ``third_party_crds`` (session): Gateway API, Istio, SMI and Prometheus Operator CRDs installed.
- ``namespace``: a fresh namespace per test.
- ``prometheus_factory``: starts real Prometheus servers with a scrape configuration; stops them after.

Nothing is skipped: a part that cannot be built or started fails the test with the component's
name and its log. When a test that used the control plane fails, the tails of the etcd and
kube-apiserver logs are attached to its report.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from . import controlplane, procs, prometheus, testbin, thirdparty

_planes: list[controlplane.ControlPlane] = []


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    plane = controlplane.ControlPlane(tmp_path_factory.mktemp("controlplane"))
    try:
        plane.start()
    except (procs.StartError, testbin.TestbinError) as exc:
        pytest.fail(f"the local control plane did not start: {exc}", pytrace=False)
    _planes.append(plane)
    previous = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(plane.kubeconfig)
    try:
        yield plane
    finally:
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous
        plane.stop()
        _planes.remove(plane)


@pytest.fixture(scope="session")
def kube(control_plane: controlplane.ControlPlane) -> Iterator[Any]:
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def kubectl(control_plane: controlplane.ControlPlane) -> Path:
    return testbin.binary("kubectl")


@pytest.fixture(scope="session")
def third_party_crds(kube: Any) -> list[str]:
    """Gateway API, Istio networking, SMI split and Prometheus Operator CRDs, from their Go modules."""
    try:
        return thirdparty.install(kube, list(thirdparty.SOURCES))
    except thirdparty.ThirdPartyError as exc:
        pytest.fail(f"third-party CRDs could not be installed: {exc}", pytrace=False)


@pytest.fixture
def namespace(kube: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test (namespaces never finish deleting here: no controller)."""
    from kubernetes import client

    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(kube)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException:
        pass


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., prometheus.Prometheus]]:
    started: list[prometheus.Prometheus] = []

    def start(scrape_configs: list[dict[str, Any]], **kwargs: Any) -> prometheus.Prometheus:
        server = prometheus.Prometheus(tmp_path / f"prometheus-{len(started)}", scrape_configs, **kwargs)
        try:
            server.start()
        except (procs.StartError, prometheus.PrometheusNotInstalled) as exc:
            pytest.fail(f"Prometheus did not start: {exc}", pytrace=False)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and "control_plane" in getattr(item, "fixturenames", ()):
        for plane in _planes:
            for name, log in plane.logs.items():
                report.sections.append((f"{name} log (tail of {log})", procs.tail_of(log, 60)))
    return report
