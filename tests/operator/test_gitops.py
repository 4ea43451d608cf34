"""GitOps against the operator process: the route weights it writes are recorded under its field manager
(``wallbounce-operator``, which the Argo CD Application ignores with managedFieldsManagers), and the Flux
Kustomization's healthCheckExprs, evaluated with cel-python as kustomize-controller evaluates them, read the status
objects the operator wrote: InProgress while it steps and while paused, Current when Completed, Failed when
Aborted; Argo CD's health check reads the same objects alike."""

from __future__ import annotations

from typing import Any

import pytest

from tests.shipping.flux import flux_health
from tests.shipping.test_argocd import HEALTH, run_lua
from wallbounce_api import FIELD_MANAGER
from wallbounce_local.components import Operator

from .conftest import Driver

pytestmark = pytest.mark.integration


def test_route_fields_are_the_operators_and_flux_reads_its_status(driver: Driver, operator: Operator,
                                                                   kube: Any) -> None:
    driver.healthy()
    driver.apply("git", phases=[{"weight": w, "duration": "1h", "minRequests": 20} for w in (1, 2, 50)])
    driver.wait_weight(1)
    route = driver.route()
    writers = {(m["manager"], m["operation"]) for m in route["metadata"]["managedFields"]}
    assert (FIELD_MANAGER, "Update") in writers, writers
    weights = next(m for m in route["metadata"]["managedFields"] if m["manager"] == FIELD_MANAGER)
    assert "f:rules" in weights["fieldsV1"]["f:spec"], "the operator's entry holds the rules it rewrote"

    seen: dict[str, tuple[str, str]] = {}

    def record(label: str) -> None:
        obj = driver.get("git")
        seen[label] = (flux_health(obj), run_lua(HEALTH, obj)["status"])

    driver.wait_status("git", "observed at step 1", lambda s: s.get("phase") in ("Progressing", "Holding")
                       and s.get("weight") == 1)
    record("stepping")
    driver.action("git", "pause")
    driver.wait_phase("git", "Paused", timeout=30)
    record("paused")
    driver.action("git", "resume")
    driver.wait_status("git", "resumed", lambda s: s.get("phase") != "Paused")
    driver.action("git", "promote-full")
    driver.wait_phase("git", "Completed", timeout=30)
    driver.wait_status("git", "Ready", lambda s: any(c["type"] == "Ready" and c["status"] == "True"
                                                     for c in s.get("conditions") or []))
    record("completed")
    driver.action("git", "abort")
    driver.wait_phase("git", "Aborted", timeout=30)
    record("aborted")
    assert seen == {"stepping": ("InProgress", "Progressing"), "paused": ("InProgress", "Suspended"),
                    "completed": ("Current", "Healthy"), "aborted": ("Failed", "Degraded")}
