"""API faults: a concurrent writer bumping the rollout and the route (409s on every stale write),
the route deleted and recreated mid-phase, and the rollout deleted mid-phase."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from kubernetes import client

from tests.operator.kit import GROUP, PLURAL, VERSION, Cluster, Exporter, OperatorProcess, wait_for
from tests.operator.test_rollout import healthy
from wallbounce_local.prometheus import Prometheus

pytestmark = pytest.mark.integration


def test_a_concurrent_writer_causes_no_double_promotion(cluster: Cluster, exporter: Exporter,
                                                        prometheus: Prometheus, operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    cluster.rollout("busy", prometheus.url)
    stop = threading.Event()
    writes = itertools.count()

    def scribble() -> None:
        objects = client.CustomObjectsApi(cluster.api)
        while not stop.is_set():
            n = next(writes)
            try:
                objects.patch_namespaced_custom_object(GROUP, VERSION, cluster.ns, PLURAL, "busy",
                                                       {"metadata": {"labels": {"scribble": str(n)}}})
                objects.patch_namespaced_custom_object("gateway.networking.k8s.io", "v1", cluster.ns, "httproutes",
                                                       "techsapo", {"metadata": {"labels": {"scribble": str(n)}}})
            except client.ApiException:
                pass
            time.sleep(0.02)

    writer = threading.Thread(target=scribble)
    writer.start()
    try:
        status = cluster.wait_phase("busy", "Completed", timeout=120)
    finally:
        stop.set()
        writer.join()
    assert next(writes) > 100
    promotions = [h["weight"] for h in status["history"] if h["reason"] in ("Started", "PhasePromoted", "Completed")]
    assert promotions == [1, 2, 10, 20, 35, 50, 50]
    assert cluster.wait_reason("busy", "Completed").count("PhasePromoted") == 5
    assert cluster.route_weights() == (50, 50)


def test_route_deleted_and_recreated_mid_phase(cluster: Cluster, exporter: Exporter, prometheus: Prometheus,
                                               operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    cluster.rollout("reroute", prometheus.url, phases=[{"weight": 10, "duration": "1h", "minRequests": 20}])
    wait_for("10%", lambda: cluster.route_weights() == (90, 10), timeout=30)
    cluster.objects.delete_namespaced_custom_object("gateway.networking.k8s.io", "v1", cluster.ns, "httproutes",
                                                    "techsapo")
    status = cluster.wait_phase("reroute", "Paused", timeout=30)
    assert (status["pauseReason"], status["step"], status["weight"]) == ("RouteMissing", 1, 10)
    cluster.httproute()  # recreated by someone at 100/0
    wait_for("10% re-asserted on the new route", lambda: cluster.route_weights() == (90, 10), timeout=30)
    assert cluster.status("reroute")["phase"] in ("Progressing", "Holding")


def test_rollout_deleted_mid_phase_leaves_the_route(cluster: Cluster, exporter: Exporter, prometheus: Prometheus,
                                                   operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    cluster.rollout("gone", prometheus.url, phases=[{"weight": 20, "duration": "1h", "minRequests": 20}])
    wait_for("20%", lambda: cluster.route_weights() == (80, 20), timeout=30)
    cluster.objects.delete_namespaced_custom_object(GROUP, VERSION, cluster.ns, PLURAL, "gone")
    wait_for("deleted (no finalizer blocks it)", lambda: not cluster.objects.list_namespaced_custom_object(
        GROUP, VERSION, cluster.ns, PLURAL)["items"], timeout=15)
    time.sleep(3)
    assert cluster.route_weights() == (80, 20)  # documented: the route is left as it is
    assert operator.healthy()
    assert 'rollout="gone"' not in operator.metrics().split("wallbounce_operator_verdicts_total")[0]
