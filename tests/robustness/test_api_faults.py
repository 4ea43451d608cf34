"""API faults: a concurrent writer bumping the rollout and the route (409s on every stale write),
the route deleted and recreated mid-phase, and the rollout deleted mid-phase."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from kubernetes import client

from tests.operator.conftest import Driver
from wallbounce_api import GROUP, PLURAL, VERSION
from wallbounce_local.components import Operator
from wallbounce_local.gateway import GATEWAY_GROUP, GATEWAY_VERSION
from wallbounce_local.procs import wait_for

pytestmark = pytest.mark.integration


def test_a_concurrent_writer_causes_no_double_promotion(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("busy")
    stop = threading.Event()
    writes = itertools.count()

    def scribble() -> None:
        objects = client.CustomObjectsApi(driver.api)
        while not stop.is_set():
            n = next(writes)
            try:
                objects.patch_namespaced_custom_object(GROUP, VERSION, driver.namespace, PLURAL, "busy",
                                                       {"metadata": {"labels": {"scribble": str(n)}}})
                objects.patch_namespaced_custom_object(GATEWAY_GROUP, GATEWAY_VERSION, driver.namespace,
                                                       "httproutes", "techsapo",
                                                       {"metadata": {"labels": {"scribble": str(n)}}})
            except client.ApiException:
                pass
            time.sleep(0.02)

    writer = threading.Thread(target=scribble)
    writer.start()
    try:
        status = driver.wait_phase("busy", "Completed", timeout=120)
    finally:
        stop.set()
        writer.join()
    assert next(writes) > 100
    promotions = [h["weight"] for h in status["history"]
                  if h["reason"] in ("StepStarted", "PhasePromoted", "Completed")]
    assert promotions == [1, 2, 10, 20, 35, 50, 50]
    assert driver.wait_reason("busy", "Completed").count("PhasePromoted") == 5
    assert driver.route_weights() == (50, 50)


def test_route_deleted_and_recreated_mid_phase(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("reroute", phases=[{"weight": 10, "duration": "1h", "minRequests": 20}])
    driver.wait_weight(10)
    driver.objects.delete_namespaced_custom_object(GATEWAY_GROUP, GATEWAY_VERSION, driver.namespace, "httproutes",
                                                   "techsapo")
    status = driver.wait_phase("reroute", "Paused", timeout=30)
    # no route carries canary traffic: the weight says so, the step's weight is still the one wanted
    assert (status["pauseReason"], status["step"], status["weight"], status["desiredWeight"]) == (
        "RouteMissing", 1, 0, 10)
    driver.create_route()  # recreated from the manifest at 100/0, its owner annotation with it
    driver.own_route("techsapo", "reroute")
    driver.wait_weight(10)  # re-asserted on the new route
    assert driver.status("reroute")["phase"] in ("Progressing", "Holding")


def test_rollout_deleted_mid_phase_leaves_the_route(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("gone", phases=[{"weight": 20, "duration": "1h", "minRequests": 20}])
    driver.wait_weight(20)
    driver.delete("gone")
    wait_for("deleted (no finalizer blocks it)", lambda: not driver.names(), timeout=15)
    time.sleep(3)
    assert driver.route_weights() == (80, 20)  # documented: the route is left as it is
    assert operator.healthy()
    assert 'rollout="gone"' not in operator.metrics().split("wallbounce_operator_verdicts_total")[0]
