"""The operator against a real kube-apiserver and a real Prometheus (scraping a traffic exporter
process whose numbers each test sets): the ladder, rollbacks, holds, pauses, drift, missing routes,
new revisions and restarts."""

from __future__ import annotations

import time

import pytest

from wallbounce_local.prometheus import Prometheus

from .kit import Cluster, Exporter, OperatorProcess, wait_for

pytestmark = pytest.mark.integration

HEALTHY = {"rps": 80, "errorRatio": 0.0, "latency": 0.8, "confidence": 0.9, "cost": 0.001}


def healthy(exporter: Exporter, cluster: Cluster) -> None:
    exporter.set(cluster.ns, "techsapo-canary", variant="canary", **HEALTHY)
    exporter.set(cluster.ns, "techsapo-stable", variant="stable", **HEALTHY)


def test_the_whole_ladder_to_completed(cluster: Cluster, exporter: Exporter, prometheus: Prometheus,
                                       operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    cluster.rollout("walk", prometheus.url)
    seen: list[int] = []

    def watch_weights() -> bool:
        s = cluster.status("walk")
        w = cluster.route_weights()
        if w[1] not in seen:
            seen.append(w[1])
        return s.get("phase") == "Completed"

    wait_for("the ladder to complete", watch_weights, timeout=120, every=0.1)
    status = cluster.status("walk")
    assert (status["step"], status["steps"], status["weight"]) == (6, 6, 50)
    assert cluster.route_weights() == (50, 50)
    assert seen == [0, 1, 2, 10, 20, 35, 50]  # every weight of the ladder, in order, none skipped
    reasons = cluster.wait_reason("walk", "Completed")
    assert reasons.count("PhasePromoted") == 5 and reasons[-1] == "Completed"
    assert status["analysis"]["verdict"] == "Pass"
    assert status["analysis"]["requests"] > 20
    assert 0.5 < status["analysis"]["latencyP95"] <= 1.0  # the 0.5–1 s histogram bucket
    assert status["analysis"]["consensusConfidence"] == pytest.approx(0.9, abs=0.01)
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Completed"] == "True"
    # dwell: every step lasted at least its 2 s duration
    times = [h["time"] for h in status["history"]]
    assert len(times) == 7
    text = operator.metrics()
    labels = f'namespace="{cluster.ns}",rollout="walk"'
    assert f"wallbounce_operator_rollout_weight{{{labels}}} 50.0" in text
    assert f'wallbounce_operator_verdicts_total{{{labels},verdict="Pass"}}' in text


@pytest.mark.parametrize("strategy", ["Emergency", "Gradual"])
def test_an_error_burst_rolls_back(strategy: str, cluster: Cluster, exporter: Exporter, prometheus: Prometheus,
                                   operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    phases = [{"weight": 1, "duration": "2s", "minRequests": 20}, {"weight": 10, "duration": "1h", "minRequests": 20}]
    cluster.rollout("burst", prometheus.url, phases=phases, rollbackStrategy=strategy)
    wait_for("step 2", lambda: cluster.status("burst").get("step") == 2, timeout=60)
    exporter.set(cluster.ns, "techsapo-canary", errorRatio=0.3)
    if strategy == "Emergency":
        status = cluster.wait_phase("burst", "RolledBack", timeout=60)
        assert status["weight"] == 0
        # the status is written first and the route follows it: wait for the route rather than race it
        wait_for("route at 0%", lambda: cluster.route_weights() == (100, 0), timeout=10)
    else:
        status = cluster.wait_phase("burst", "Paused", timeout=60)
        assert (status["pauseReason"], status["step"], status["weight"]) == ("RolledBack", 1, 1)
        wait_for("route back at 1%", lambda: cluster.route_weights() == (99, 1), timeout=10)
    assert status["analysis"]["verdict"] == "Fail"
    assert "error rate" in status["analysis"]["reason"]
    cluster.wait_reason("burst", "RolledBack")
    healthy(exporter, cluster)


def test_a_canary_that_never_erred_has_no_error_series_and_still_passes(
        cluster: Cluster, exporter: Exporter, prometheus: Prometheus, operator: OperatorProcess) -> None:
    """prometheus-client creates a label set with its first increment: no error series means no errors."""
    exporter.set(cluster.ns, "techsapo-canary", variant="canary", lazyErrors=True, **HEALTHY)
    assert 'service="techsapo-canary",variant="canary",task_type="basic",outcome="error"' not in exporter._get(
        "/metrics").decode()
    cluster.rollout("clean", prometheus.url, phases=[{"weight": 1, "duration": "1s", "minRequests": 20},
                                                    {"weight": 2, "duration": "1h", "minRequests": 20}])
    status = wait_for("step 2", lambda: (s := cluster.status("clean")).get("step") == 2 and s, timeout=60)
    assert status["analysis"]["errorRate"] == 0


def test_low_traffic_holds(cluster: Cluster, exporter: Exporter, prometheus: Prometheus,
                           operator: OperatorProcess) -> None:
    exporter.set(cluster.ns, "techsapo-canary", variant="canary", **{**HEALTHY, "rps": 1})
    cluster.rollout("quiet", prometheus.url, phases=[{"weight": 1, "duration": "1s", "minRequests": 500},
                                                    {"weight": 2, "duration": "1s", "minRequests": 500}])
    status = wait_for("a Hold verdict", lambda: (s := cluster.status("quiet")).get("analysis", {}).get(
        "verdict") == "Hold" and s, timeout=60)
    assert status["phase"] == "Holding"
    assert "needed" in status["analysis"]["reason"]
    time.sleep(3)
    status = cluster.status("quiet")
    assert (status["step"], status["weight"]) == (1, 1)  # never promoted
    cluster.wait_reason("quiet", "Holding")


def test_no_data_holds_and_pauses_after_the_error_limit(cluster: Cluster, exporter: Exporter,
                                                         prometheus: Prometheus, operator: OperatorProcess) -> None:
    exporter.drop(cluster.ns, "techsapo-canary")  # no series at all for this canary
    cluster.rollout("silent", prometheus.url, analysis={"errorLimit": 3})
    status = cluster.wait_phase("silent", "Paused", timeout=60)
    assert status["pauseReason"] == "AnalysisErrors"
    assert status["consecutiveErrors"] == 3
    assert status["analysis"]["verdict"] == "NoData"
    assert (status["step"], status["weight"]) == (1, 1)
    cluster.wait_reason("silent", "AnalysisError")


def test_prometheus_down_never_promotes_then_resume(cluster: Cluster, exporter: Exporter,
                                                    prometheus_factory: object, operator: OperatorProcess,
                                                    control_plane: object) -> None:
    from .conftest import scrape_job

    healthy(exporter, cluster)
    own = prometheus_factory([scrape_job(exporter)])  # type: ignore[operator]
    wait_for("the new Prometheus to have a window of data", lambda: own.query(
        f'sum(increase(wallbounce_requests_total{{namespace="{cluster.ns}"}}[8s])) > 50'), timeout=30)
    phases = [{"weight": 1, "duration": "1s", "minRequests": 20}, {"weight": 2, "duration": "1h", "minRequests": 20}]
    cluster.rollout("blind", own.url, phases=phases, analysis={"errorLimit": 4})
    wait_for("step 2", lambda: cluster.status("blind").get("step") == 2, timeout=60)
    own.stop()
    status = cluster.wait_phase("blind", "Paused", timeout=60)
    assert status["pauseReason"] == "AnalysisErrors"
    assert status["analysis"]["verdict"] == "Error"
    assert "Prometheus" in status["analysis"]["reason"]
    assert (status["step"], status["weight"]) == (2, 2)  # held where it was
    assert cluster.route_weights() == (98, 2)
    cluster.wait_reason("blind", "Paused")
    assert any(r == "Paused" and "Prometheus" in m for r, m in cluster.events("blind"))

    # Prometheus comes back on the same address; a human resumes; the canary is judged again
    own.start()
    wait_for("Prometheus back with a full window of fresh samples", lambda: own.query(
        f'min(count_over_time(wallbounce_requests_total{{namespace="{cluster.ns}"}}[8s])) >= 7'), timeout=30)
    cluster.objects.patch_namespaced_custom_object("wallbounce.dev", "v1alpha1", cluster.ns, "wallbouncerollouts",
                                                   "blind", {"metadata": {"annotations": {
                                                       "wallbounce.dev/action": "resume"}}})
    status = wait_for("a Pass after the resume", lambda: (s := cluster.status("blind")).get("analysis", {}).get(
        "verdict") == "Pass" and s, timeout=60)
    assert status["phase"] == "Progressing" and status["consecutiveErrors"] == 0
    cluster.wait_reason("blind", "Resumed")


def test_a_manual_weight_edit_is_reasserted(cluster: Cluster, exporter: Exporter, prometheus: Prometheus,
                                            operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    cluster.rollout("drift", prometheus.url, phases=[{"weight": 10, "duration": "1h", "minRequests": 20}])
    wait_for("10%", lambda: cluster.route_weights() == (90, 10), timeout=60)
    cluster.set_route_weights(50, 50)
    wait_for("re-asserted 10%", lambda: cluster.route_weights() == (90, 10), timeout=30)
    cluster.wait_reason("drift", "WeightDrift")


def test_a_missing_route_pauses_and_resumes_when_it_appears(cluster: Cluster, exporter: Exporter,
                                                            prometheus: Prometheus,
                                                            operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    cluster.rollout("lost", prometheus.url, route="not-yet")
    status = cluster.wait_phase("lost", "Paused", timeout=60)
    assert status["pauseReason"] == "RouteMissing"
    assert "not-yet" in status["message"] and "not found" in status["message"]
    cluster.httproute("not-yet")
    wait_for("resumed", lambda: cluster.status("lost").get("phase") in ("Progressing", "Holding"), timeout=60)
    wait_for("weight on the new route", lambda: cluster.route_weights("not-yet")[1] >= 1, timeout=30)


def test_a_new_canary_revision_restarts_the_ladder(cluster: Cluster, exporter: Exporter, prometheus: Prometheus,
                                                   operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    cluster.rollout("rev", prometheus.url, phases=[
        {"weight": 1, "duration": "1s", "minRequests": 20}, {"weight": 10, "duration": "1s", "minRequests": 20},
        {"weight": 20, "duration": "1h", "minRequests": 20}])
    first = wait_for("step 3", lambda: (s := cluster.status("rev")).get("step") == 3 and s, timeout=60)
    cluster.set_image("techsapo-canary", "wallbounce:2")
    status = wait_for("restart", lambda: (s := cluster.status("rev")).get("canaryRevision") != first[
        "canaryRevision"] and s, timeout=30)
    assert status["step"] == 1 or status["weight"] <= 10
    cluster.wait_reason("rev", "RevisionChanged")


def test_an_unavailable_canary_is_not_given_traffic(cluster: Cluster, exporter: Exporter, prometheus: Prometheus,
                                                    operator: OperatorProcess) -> None:
    healthy(exporter, cluster)
    cluster.set_available("techsapo-canary", 0)
    cluster.rollout("cold", prometheus.url)
    status = cluster.wait_phase("cold", "Holding", timeout=30)
    assert status["weight"] == 0
    time.sleep(2)
    assert cluster.route_weights() == (100, 0)
    cluster.set_available("techsapo-canary", 1)
    wait_for("1%", lambda: cluster.route_weights() == (99, 1), timeout=30)
