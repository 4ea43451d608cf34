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
    assert status["analysis"]["requests"] > 20
    assert 0.5 < status["analysis"]["latencyP95"] <= 1.0  # the 0.5–1 s histogram bucket
    assert status["analysis"]["consensusConfidence"] == pytest.approx(0.9, abs=0.01)
    conditions = {c["type"]: (c["status"], c.get("observedGeneration")) for c in status["conditions"]}
    assert conditions["Ready"] == ("True", 1) and conditions["Completed"] == ("True", 1)
    assert conditions["Stalled"][0] == conditions["Reconciling"][0] == "False"
    steps = [h for h in status["history"] if h["reason"] in ("StepStarted", "PhasePromoted", "Completed")]
    assert [h["weight"] for h in steps] == [1, 2, 10, 20, 35, 50, 50]
    text = operator.metrics()
    labels = f'namespace="{driver.namespace}",rollout="walk"'
    assert f"wallbounce_operator_rollout_weight{{{labels}}} 50.0" in text
    assert f'wallbounce_operator_verdicts_total{{{labels},verdict="Pass"}}' in text


def test_an_error_burst_rolls_back(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    phases = [{"weight": 1, "duration": "2s", "minRequests": 20}, {"weight": 10, "duration": "1h", "minRequests": 20}]
    driver.apply("burst", phases=phases)
    driver.wait_status("burst", "step 2", lambda s: s.get("step") == 2)
    driver.break_canary("errors")  # 30 % of the canary's requests fail
    status = driver.wait_phase("burst", "RolledBack", timeout=60)
    assert status["desiredWeight"] == 0
    # the status is written first and the route follows it: wait for the route rather than race it
    driver.wait_weight(0, timeout=10)
    driver.wait_status("burst", "the route read back at 0", lambda s: s.get("weight") == 0, timeout=10)
    assert status["analysis"]["verdict"] == "Fail"
    assert "error rate" in status["analysis"]["reason"]
    stalled = next(c for c in status["conditions"] if c["type"] == "Stalled")
    assert (stalled["status"], stalled["reason"]) == ("True", "RolledBack")
    driver.wait_reason("burst", "RolledBack")


def test_gradual_steps_down_while_the_breach_lasts(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    phases = [{"weight": w, "duration": "1s", "minRequests": 20} for w in (1, 10)]
    phases.append({"weight": 20, "duration": "1h", "minRequests": 20})
    driver.apply("steps", phases=phases, rollbackStrategy="Gradual")
    driver.wait_status("steps", "step 3", lambda s: s.get("step") == 3 and s.get("weight") == 20)
    driver.break_canary("errors")
    status = driver.wait_phase("steps", "RolledBack", timeout=60)
    rungs = [h["weight"] for h in status["history"] if h["reason"] in ("RollingBack", "RolledBack")]
    assert rungs == [10, 1, 0]  # one rung at a time, down to 0
    driver.wait_weight(0, timeout=10)


def test_gradual_stops_where_the_breach_clears_and_pauses(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    phases = [{"weight": w, "duration": "1s", "minRequests": 20} for w in (1, 10)]
    phases.append({"weight": 20, "duration": "1h", "minRequests": 20})
    # a slow analysis (a rung per 8 s) over a short window: the breach can clear between two rungs
    driver.apply("clears", phases=phases, rollbackStrategy="Gradual", analysis={"interval": "8s", "window": "3s"})
    driver.wait_status("clears", "step 3", lambda s: s.get("step") == 3 and s.get("weight") == 20, timeout=90)
    driver.break_canary("errors")
    driver.wait_phase("clears", "RollingBack", timeout=30, step=2)
    driver.healthy()
    status = driver.wait_phase("clears", "Paused", timeout=60)
    assert (status["pauseReason"], status["step"], status["desiredWeight"]) == ("RolledBack", 2, 10)
    driver.wait_weight(10)


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
    operator.stop()  # the operator must allow this second Prometheus: rollouts name only the ones it was given
    operator.args += ["--prometheus-allow", own.url]
    operator.start()
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
    driver.wait_status("blind", "resumed", lambda s: (s.get("lastAction") or {}).get("action") == "resume")
    status = driver.wait_status("blind", "judged again, and passing", lambda s: s.get("phase") == "Progressing"
                                and (s.get("analysis") or {}).get("verdict") == "Pass")
    assert status["consecutiveErrors"] == 0
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
    driver.apply("lost", route="not-yet", own_route=False)
    status = driver.wait_phase("lost", "Paused", timeout=60)
    assert status["pauseReason"] == "RouteMissing"
    assert "not-yet" in status["message"] and "not found" in status["message"]
    driver.create_route("not-yet")
    driver.own_route("not-yet", "lost")
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


def test_a_rollout_created_before_its_canary_is_available_waits_at_zero_then_stalls(driver: Driver,
                                                                                   operator: Operator) -> None:
    driver.healthy()
    driver.set_available("techsapo-canary", 0)
    driver.apply("cold", progressDeadline="3s")
    status = driver.wait_status("cold", "Stalled after the progress deadline", lambda s: any(
        c["type"] == "Stalled" and c["status"] == "True" for c in s.get("conditions") or []), timeout=30)
    assert (status["phase"], status["weight"], status["desiredWeight"]) == ("Progressing", 0, 0)
    assert "waiting for the canary" in status["message"]
    assert driver.route_weights() == (100, 0)
    driver.set_available("techsapo-canary", 1)
    driver.wait_weight(1)
    driver.wait_status("cold", "no longer stalled", lambda s: any(
        c["type"] == "Stalled" and c["status"] == "False" for c in s.get("conditions") or []), timeout=10)
