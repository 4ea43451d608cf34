"""The end-to-end suite's stack: one for the whole session (control plane, Traefik, simulators, both services,
Prometheus, the operator), started by ``wallbounce_local.stack`` in a temporary state directory and stopped
at the end. Each scenario starts from a clean slate (no rollout, route 100/0, healthy canary, an analysis
window with no canary traffic in it) and drives it through ``driver`` (the stack's ``RolloutDriver``).
Nothing is skipped: a part that cannot start fails the session.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_kit import RESULTS, Driver
from kubernetes import client

from wallbounce_local import procs, testbin, thirdparty
from wallbounce_local.procs import wait_for
from wallbounce_local.prometheus import PrometheusNotInstalled
from wallbounce_local.remote import RemoteStack
from wallbounce_local.stack import Options, Stack

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
    driver = stack.rollouts
    driver.delete_all()
    driver.healthy()
    driver.set_available("techsapo-canary", 1)
    driver.set_route_weights(100, 0)
    wait_for("the canary's analysis window to be empty", stack.canary.empty, timeout=30, every=0.5)
    return stack


@pytest.fixture
def driver(clean: Stack) -> Driver:
    """The clean stack's rollouts."""
    return clean.rollouts


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        for s in _stacks:
            logs = s.logs()
            for name in ("operator", "traefik", "service-canary"):
                if name in logs:
                    report.sections.append((f"{name} log ({logs[name]})", procs.tail_of(logs[name], 40)))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RESULTS:
        terminalreporter.write_sep("-", "end-to-end measurements")
        for key, value in RESULTS.items():
            terminalreporter.write_line(f"{key}: {json.dumps(value)}")
