"""The end-to-end suite's stack: one for the whole session (control plane, Traefik, simulators, both services,
Prometheus, the operator), started by ``wallbounce_local.stack`` in a temporary state directory and stopped
at the end. Each scenario starts from a clean slate (no rollout, route 100/0, healthy canary, an analysis
window with no canary traffic in it). Nothing is skipped: a part that cannot start fails the session.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_kit import RESULTS, wait_for
from kubernetes import client

from wallbounce_local import procs, testbin, thirdparty
from wallbounce_local.prometheus import PrometheusNotInstalled
from wallbounce_local.remote import RemoteStack
from wallbounce_local.stack import GROUP, PLURAL, VERSION, Options, Stack

_stacks: list[Stack] = []


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    remote = os.environ.get("WALLBOUNCE_E2E_KUBECONFIG")
    if remote:  # a real cluster (e2e/kind/run.sh) instead of the local stack
        s: Stack = RemoteStack(remote, tmp_path_factory.mktemp("remote"))
    else:
        s = Stack(tmp_path_factory.mktemp("stack"), Options(namespace="e2e", service_cidr="127.0.101.0/24"))
    try:
        info = s.start()
    except (procs.StartError, testbin.TestbinError, thirdparty.ThirdPartyError, PrometheusNotInstalled,
            TimeoutError, client.ApiException) as exc:
        pytest.fail(f"the local stack did not start: {exc}", pytrace=False)
    if info is not None:
        RESULTS["stack_start_s"] = info.start_seconds
    _stacks.append(s)
    try:
        yield s
    finally:
        _stacks.remove(s)
        s.stop()


@pytest.fixture
def clean(stack: Stack) -> Stack:
    """No rollout, route 100/0, canary healthy and available, no canary traffic left in the analysis window."""
    objects = client.CustomObjectsApi(stack.api)
    for item in objects.list_namespaced_custom_object(GROUP, VERSION, stack.namespace, PLURAL)["items"]:
        stack.delete_rollout(item["metadata"]["name"])
    stack.canary_healthy()
    stack.set_available("techsapo-canary", 1)
    stack.set_route_weights(100, 0)
    wait_for("the canary's analysis window to be empty",
             lambda: stack.canary_error_rate() is None and stack.canary_confidence() is None, timeout=30, every=0.5)
    return stack


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for s in _stacks:
            for name, proc in (("operator", s.operator), ("traefik", s.traefik and s.traefik.process),
                               ("service-canary", s.services.get("canary"))):
                if proc:
                    report.sections.append((f"{name} log ({proc.log})", procs.tail_of(proc.log, 40)))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RESULTS:
        terminalreporter.write_sep("-", "end-to-end measurements")
        for key, value in RESULTS.items():
            terminalreporter.write_line(f"{key}: {json.dumps(value)}")
