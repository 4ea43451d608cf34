"""API load of a steady rollout: the canary Deployment and the route are read from watches, so an
analysis tick costs the API server one status PATCH per rollout, not two GETs and a PATCH. Counted
by the real kube-apiserver's own ``apiserver_request_total``."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from wallbounce_api import PLURAL
from wallbounce_local.components import Operator

from .conftest import Driver

pytestmark = pytest.mark.integration

_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)


def requests_served(kube: Any, verb: str, resource: str, subresource: str = "") -> float:
    """The API server's count of ``verb`` requests on ``resource`` so far (every namespace)."""
    response = kube.call_api("GET", f"{kube.configuration.host}/metrics")
    response.read()
    total = 0.0
    for labels, value in _SAMPLE.findall(response.data.decode()):
        if f'verb="{verb}"' in labels and f'resource="{resource}"' in labels \
                and f'subresource="{subresource}"' in labels:
            total += float(value)
    return total


def verdicts(text: str, namespace: str, rollout: str) -> float:
    pattern = re.compile(rf'^wallbounce_operator_verdicts_total\{{namespace="{namespace}",rollout="{rollout}",'
                         rf'verdict="[A-Za-z]+"\}} ([0-9.e+]+)$', re.MULTILINE)
    return sum(float(v) for v in pattern.findall(text))


def test_steady_ticks_read_the_canary_and_route_from_watches(kube: Any, driver: Driver, operator: Operator) -> None:
    driver.healthy()
    phases = [{"weight": w, "duration": "1h", "minRequests": 20} for w in (1, 2)]
    driver.apply("steady", phases=phases)
    first = driver.wait_status("steady", "a passing verdict", lambda s: s.get("phase") == "Progressing"
                               and (s.get("analysis") or {}).get("verdict") == "Pass")
    driver.wait_weight(1)
    driver.wait_status("steady", "the step's evidence growing", lambda s: (s.get("evidence") or {}).get("looks"))
    time.sleep(8)  # the window (8 s) full of the canary's steady traffic
    gets = {r: requests_served(kube, "GET", r) for r in ("deployments", "httproutes")}
    patches = requests_served(kube, "PATCH", PLURAL)
    status_writes = requests_served(kube, "PATCH", PLURAL, "status")
    looks = verdicts(operator.metrics(), driver.namespace, "steady")
    time.sleep(6)  # six 1 s analysis intervals
    later = driver.status("steady")
    assert later["phase"] == "Progressing" and later["weight"] == 1
    # a steady look writes nothing (the heartbeat is minutes away): the looks ran, the status was not written
    assert requests_served(kube, "PATCH", PLURAL, "status") - status_writes == 0
    assert verdicts(operator.metrics(), driver.namespace, "steady") >= looks + 4  # the looks did run
    for resource, before in gets.items():
        assert requests_served(kube, "GET", resource) - before == 0, f"{resource} were read by GET every tick"
    status_patches = requests_served(kube, "PATCH", PLURAL) - patches
    assert status_patches == 0  # the status subresource is counted apart; the rollout itself is never patched
    # the watch, not a GET, tells the operator what changes: a new canary revision restarts the ladder
    driver.set_revision("techsapo-canary", "wallbounce:2")
    driver.wait_status("steady", "the new revision seen",
                       lambda s: s.get("canaryRevision") != first["canaryRevision"], timeout=20)
    assert "RevisionChanged" in driver.wait_reason("steady", "RevisionChanged")
    assert requests_served(kube, "GET", "deployments") - gets["deployments"] == 0


def watches(text: str) -> float:
    return float(next(x.split()[1] for x in text.splitlines() if x.startswith("wallbounce_operator_watches ")))


def test_objects_are_watched_only_in_namespaces_with_rollouts(driver: Driver, operator: Operator) -> None:
    from wallbounce_local.procs import wait_for

    assert wait_for("the first tick", lambda: "wallbounce_operator_watches " in operator.metrics(), timeout=20)
    assert watches(operator.metrics()) == 0  # nothing watched before a rollout names anything
    driver.healthy()
    driver.apply("watched", phases=[{"weight": 1, "duration": "1h", "minRequests": 20}])
    driver.wait_weight(1)
    # Deployments, ReplicaSets, HTTPRoutes of this namespace (the gauge is set at the end of the tick that wrote it)
    wait_for("three watches", lambda: watches(operator.metrics()) == 3, timeout=10)
    driver.delete("watched")
    wait_for("the watches stopped with the last rollout", lambda: watches(operator.metrics()) == 0, timeout=20)
