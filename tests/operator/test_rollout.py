"""The operator against a real kube-apiserver and a real Prometheus (scraping a traffic exporter
process whose numbers each test sets): the ladder, rollbacks, holds, pauses, drift, missing routes,
new revisions and restarts."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from wallbounce_api.metrics import REQUESTS_TOTAL
from wallbounce_local.components import Exporter, Operator
from wallbounce_local.procs import wait_for
from wallbounce_local.prometheus import Prometheus
from wallbounce_local.traffic import HEALTHY

from .conftest import Driver

pytestmark = pytest.mark.integration


def test_the_whole_ladder_to_completed(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("walk")
    seen: list[int] = []

    def watch_weights() -> bool:
        s = driver.status("walk")
        w = driver.route_weights()
        if w[1] not in seen:
            seen.append(w[1])
        return s.get("phase") == "Completed"

    wait_for("the ladder to complete", watch_weights, timeout=120, every=0.1)
    status = driver.status("walk")
    assert (status["step"], status["steps"], status["weight"]) == (6, 6, 50)
    assert driver.route_weights() == (50, 50)
    assert seen == [0, 1, 2, 10, 20, 35, 50]  # every weight of the ladder, in order, none skipped
    reasons = driver.wait_reason("walk", "Completed")
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
    labels = f'namespace="{driver.namespace}",rollout="walk"'
    assert f"wallbounce_operator_rollout_weight{{{labels}}} 50.0" in text
    assert f'wallbounce_operator_verdicts_total{{{labels},verdict="Pass"}}' in text


@pytest.mark.parametrize("strategy", ["Emergency", "Gradual"])
def test_an_error_burst_rolls_back(strategy: str, driver: Driver, operator: Operator) -> None:
    driver.healthy()
    phases = [{"weight": 1, "duration": "2s", "minRequests": 20}, {"weight": 10, "duration": "1h", "minRequests": 20}]
    driver.apply("burst", phases=phases, rollbackStrategy=strategy)
    driver.wait_status("burst", "step 2", lambda s: s.get("step") == 2)
    driver.break_canary("errors")  # 30 % of the canary's requests fail
    if strategy == "Emergency":
        status = driver.wait_phase("burst", "RolledBack", timeout=60)
        assert status["weight"] == 0
        # the status is written first and the route follows it: wait for the route rather than race it
        driver.wait_weight(0, timeout=10)
    else:
        status = driver.wait_phase("burst", "Paused", timeout=60)
        assert (status["pauseReason"], status["step"], status["weight"]) == ("RolledBack", 1, 1)
        driver.wait_weight(1, timeout=10)
    assert status["analysis"]["verdict"] == "Fail"
    assert "error rate" in status["analysis"]["reason"]
    driver.wait_reason("burst", "RolledBack")
    driver.healthy()


def test_a_canary_that_never_erred_has_no_error_series_and_still_passes(driver: Driver, operator: Operator) -> None:
    """prometheus-client creates a label set with its first increment: no error series means no errors."""
    driver.traffic.set("techsapo-canary", variant="canary", lazyErrors=True, **HEALTHY)
    mine = (f'namespace="{driver.namespace}"', 'service="techsapo-canary"')
    series = [line for line in driver.traffic.metrics().splitlines() if all(label in line for label in mine)]
    assert series, "the canary's series are exported"
    assert not [line for line in series if 'outcome="error"' in line], series
    driver.apply("clean", phases=[{"weight": 1, "duration": "1s", "minRequests": 20},
                                  {"weight": 2, "duration": "1h", "minRequests": 20}])
    status = driver.wait_status("clean", "step 2", lambda s: s.get("step") == 2)
    assert status["analysis"]["errorRate"] == 0


def test_low_traffic_holds(driver: Driver, operator: Operator) -> None:
    driver.traffic.set("techsapo-canary", variant="canary", **{**HEALTHY, "rps": 1})
    driver.apply("quiet", phases=[{"weight": 1, "duration": "1s", "minRequests": 500},
                                  {"weight": 2, "duration": "1s", "minRequests": 500}])
    status = driver.wait_verdict("quiet", "Hold")
    assert status["phase"] == "Holding"
    assert "needed" in status["analysis"]["reason"]
    time.sleep(3)
    status = driver.status("quiet")
    assert (status["step"], status["weight"]) == (1, 1)  # never promoted
    driver.wait_reason("quiet", "Holding")


def test_no_data_holds_and_pauses_after_the_error_limit(driver: Driver, operator: Operator) -> None:
    driver.traffic.drop("techsapo-canary")  # no series at all for this canary
    driver.apply("silent", analysis={"errorLimit": 3})
    status = driver.wait_phase("silent", "Paused", timeout=60)
    assert status["pauseReason"] == "AnalysisErrors"
    assert status["consecutiveErrors"] == 3
    assert status["analysis"]["verdict"] == "NoData"
    assert (status["step"], status["weight"]) == (1, 1)
    driver.wait_reason("silent", "AnalysisError")


def test_prometheus_down_never_promotes_then_resume(driver: Driver, exporter: Exporter,
                                                    prometheus_factory: Callable[..., Prometheus],
                                                    operator: Operator) -> None:
    driver.healthy()
    own = prometheus_factory([exporter.scrape_job()])
    wait_for("the new Prometheus to have a window of data", lambda: own.query(
        f'sum(increase({REQUESTS_TOTAL}{{namespace="{driver.namespace}"}}[8s])) > 50'), timeout=30)
    phases = [{"weight": 1, "duration": "1s", "minRequests": 20}, {"weight": 2, "duration": "1h", "minRequests": 20}]
    driver.apply("blind", phases=phases, analysis={"errorLimit": 4, "prometheus": {"address": own.url}})
    driver.wait_status("blind", "step 2", lambda s: s.get("step") == 2)
    own.stop()
    status = driver.wait_phase("blind", "Paused", timeout=60)
    assert status["pauseReason"] == "AnalysisErrors"
    assert status["analysis"]["verdict"] == "Error"
    assert "Prometheus" in status["analysis"]["reason"]
    assert (status["step"], status["weight"]) == (2, 2)  # held where it was
    assert driver.route_weights() == (98, 2)
    driver.wait_reason("blind", "Paused")
    assert any(r == "Paused" and "Prometheus" in m for r, m in driver.events("blind"))

    # Prometheus comes back on the same address; a human resumes; the canary is judged again
    own.start()
    wait_for("Prometheus back with a full window of fresh samples", lambda: own.query(
        f'min(count_over_time({REQUESTS_TOTAL}{{namespace="{driver.namespace}"}}[8s])) >= 7'), timeout=30)
    driver.action("blind", "resume")
    status = driver.wait_verdict("blind", "Pass")
    assert status["phase"] == "Progressing" and status["consecutiveErrors"] == 0
    driver.wait_reason("blind", "Resumed")


def test_a_manual_weight_edit_is_reasserted(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("drift", phases=[{"weight": 10, "duration": "1h", "minRequests": 20}])
    driver.wait_weight(10, timeout=60)
    driver.set_route_weights(50, 50)
    driver.wait_weight(10, timeout=30)
    driver.wait_reason("drift", "WeightDrift")


def test_a_missing_route_pauses_and_resumes_when_it_appears(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("lost", route="not-yet")
    status = driver.wait_phase("lost", "Paused", timeout=60)
    assert status["pauseReason"] == "RouteMissing"
    assert "not-yet" in status["message"] and "not found" in status["message"]
    driver.create_route("not-yet")
    driver.wait_status("lost", "resumed", lambda s: s.get("phase") in ("Progressing", "Holding"))
    wait_for("weight on the new route", lambda: driver.route_weights("not-yet")[1] >= 1, timeout=30)


def test_a_new_canary_revision_restarts_the_ladder(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("rev", phases=[
        {"weight": 1, "duration": "1s", "minRequests": 20}, {"weight": 10, "duration": "1s", "minRequests": 20},
        {"weight": 20, "duration": "1h", "minRequests": 20}])
    first = driver.wait_status("rev", "step 3", lambda s: s.get("step") == 3)
    driver.set_revision("techsapo-canary", "wallbounce:2")
    status = driver.wait_status("rev", "restart", lambda s: s.get("canaryRevision") != first["canaryRevision"],
                                timeout=30)
    assert status["step"] == 1 or status["weight"] <= 10
    driver.wait_reason("rev", "RevisionChanged")


def test_an_unavailable_canary_is_not_given_traffic(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.set_available("techsapo-canary", 0)
    driver.apply("cold")
    status = driver.wait_phase("cold", "Holding", timeout=30)
    assert status["weight"] == 0
    time.sleep(2)
    assert driver.route_weights() == (100, 0)
    driver.set_available("techsapo-canary", 1)
    driver.wait_weight(1)
