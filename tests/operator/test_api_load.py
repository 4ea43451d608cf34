"""API load of a steady rollout: the canary Deployment and the route are read from watches, so an
analysis tick costs the API server one status PATCH per rollout, not two GETs and a PATCH. Counted
by the real kube-apiserver's own ``apiserver_request_total``."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from wallbounce_local.prometheus import Prometheus

from .kit import Cluster, Exporter, OperatorProcess, wait_for
from .test_rollout import healthy

pytestmark = pytest.mark.integration

_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)


def requests_served(kube: Any, verb: str, resource: str) -> float:
    """The API server's count of ``verb`` requests on ``resource`` so far (every namespace)."""
    response = kube.call_api("GET", f"{kube.configuration.host}/metrics")
    response.read()
    total = 0.0
    for labels, value in _SAMPLE.findall(response.data.decode()):
        if f'verb="{verb}"' in labels and f'resource="{resource}"' in labels and 'subresource=""' in labels:
            total += float(value)
    return total


def test_steady_ticks_read_the_canary_and_route_from_watches(
        kube: Any, cluster: Cluster, exporter: Exporter, prometheus: Prometheus, operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    phases = [{"weight": w, "duration": "1h", "minRequests": 20} for w in (1, 2)]
    cluster.rollout("steady", prometheus.url, phases=phases)
    first = wait_for("a passing verdict", lambda: (s := cluster.status("steady")).get("phase") == "Progressing"
                     and (s.get("analysis") or {}).get("verdict") == "Pass" and s, timeout=60)
    wait_for("route at 1%", lambda: cluster.route_weights() == (99, 1), timeout=30)
    gets = {r: requests_served(kube, "GET", r) for r in ("deployments", "httproutes")}
    patches = requests_served(kube, "PATCH", "wallbouncerollouts")
    time.sleep(6)  # six 1 s analysis intervals
    later = cluster.status("steady")
    assert later["analysis"]["time"] != first["analysis"]["time"], "no analysis ran: nothing was measured"
    assert later["phase"] == "Progressing" and later["weight"] == 1
    for resource, before in gets.items():
        assert requests_served(kube, "GET", resource) - before == 0, f"{resource} were read by GET every tick"
    status_patches = requests_served(kube, "PATCH", "wallbouncerollouts") - patches
    assert status_patches == 0  # the status subresource is counted apart; the rollout itself is never patched
    # the watch, not a GET, tells the operator what changes: a new canary revision restarts the ladder
    cluster.set_image("techsapo-canary", "wallbounce:2")
    wait_for("the new revision seen", lambda: cluster.status("steady").get("canaryRevision") != first["canaryRevision"],
             timeout=20)
    assert "RevisionChanged" in cluster.wait_reason("steady", "RevisionChanged")
    assert requests_served(kube, "GET", "deployments") - gets["deployments"] == 0
