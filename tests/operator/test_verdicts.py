"""Verdicts on evidence, against the real Prometheus scraping the traffic exporter: the current revision judged on
its own counts, the first error of a fresh series counted, a step never judged on the previous weight's requests,
one slow request no reason to roll back, a shared breach held rather than blamed on the canary, a canary answering
4xx to traffic stable serves failing the relative gate, a client that went away never an error, and a hard breach
rolled back within seconds whatever the analysis interval."""

from __future__ import annotations

import time

import pytest

from wallbounce_local.components import Operator
from wallbounce_local.procs import wait_for

from .conftest import Driver

pytestmark = pytest.mark.integration

CANARY, STABLE = "techsapo-canary", "techsapo-stable"
LONG = [{"weight": 10, "duration": "1h", "minRequests": 20}]


def every_look_written(operator: Operator) -> None:
    """The step's evidence lives in memory between visible changes: a heartbeat of 1 s writes it every look."""
    operator.stop()
    operator.args += ["--heartbeat", "1"]
    operator.start()


def test_the_first_errors_of_a_fresh_series_count(driver: Driver, operator: Operator) -> None:
    """The canary's error series does not exist until its first error (prometheus-client's way, which increase()
    reads as 0): the operator's counter differences still count those errors, exactly."""
    every_look_written(operator)
    driver.healthy()
    driver.traffic.set(CANARY, lazyErrors=True)
    driver.apply("fresh", phases=LONG)
    driver.wait_status("fresh", "evidence since the step began",
                       lambda s: ((s.get("evidence") or {}).get("looks") or 0) >= 2, timeout=30)
    driver.traffic.set(CANARY, burstErrors=3)  # the series' first three errors
    status = driver.wait_status("fresh", "the three errors counted",
                                lambda s: ((s.get("evidence") or {}).get("canary") or {}).get("errors", 0) >= 3,
                                timeout=20)
    assert status["evidence"]["canary"]["errors"] == 3


def test_a_previous_revisions_errors_never_roll_back_a_new_one(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    old = driver.current_revision(CANARY)
    driver.set_revision(CANARY, "wallbounce:fixed")  # the fix: a new revision, healthy
    driver.traffic.set(CANARY, revision=old, rps=400, errorRatio=0.4)  # the old pods still fail, beside it
    driver.apply("fixed", phases=[{"weight": 10, "duration": "3s", "minRequests": 20},
                                  {"weight": 20, "duration": "1h", "minRequests": 20}])
    driver.wait_status("fixed", "promoted on its own evidence", lambda s: s.get("step") == 2, timeout=60)
    assert driver.status("fixed")["phase"] != "RolledBack"
    assert "RolledBack" not in driver.reasons("fixed")


def test_a_step_is_judged_only_on_what_it_served(driver: Driver, operator: Operator) -> None:
    every_look_written(operator)
    driver.healthy()
    driver.apply("scoped", phases=[{"weight": 1, "duration": "2s", "minRequests": 20},
                                   {"weight": 20, "duration": "1h", "minRequests": 20}])
    status = driver.wait_status("scoped", "evidence of step 2", lambda s: s.get("step") == 2
                                and ((s.get("evidence") or {}).get("looks") or 0) >= 3, timeout=60)
    evidence = status["evidence"]
    assert evidence["since"] == status["stepStartedAt"]  # the step began when the route carried its weight
    span = (time_of(evidence["until"]) - time_of(evidence["since"]))
    # no request from before the step (the exporter serves 400 per second): at most what the step's span holds, give
    # or take one scrape (1 s: each look reads the counters as Prometheus last scraped them)
    assert 0 < evidence["canary"]["served"] <= 400 * (span + 1) + 1


def time_of(text: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_one_slow_request_does_not_roll_back(driver: Driver, operator: Operator) -> None:
    """At one request a second, one request of 30 s puts the histogram's p95 above the 10 s limit; it is no
    evidence that more than 5 % of requests are that slow."""
    driver.traffic.set(CANARY, variant="canary", rps=1, errorRatio=0, latency=0.5, confidence=0.9)
    driver.traffic.set(STABLE, variant="stable", rps=1, errorRatio=0, latency=0.5, confidence=0.9)
    driver.apply("patient", phases=[{"weight": 10, "duration": "1h", "minRequests": 5}])
    driver.wait_weight(10)
    time.sleep(3)
    driver.traffic.set(CANARY, burstSlow=1)
    status = driver.wait_status("patient", "the slow request in the window",
                                lambda s: ((s.get("analysis") or {}).get("latencyP95") or 0) > 10, timeout=20)
    time.sleep(4)
    status = driver.status("patient")
    assert status["phase"] != "RolledBack" and status["weight"] == 10, status.get("message")


def test_a_breach_of_both_variants_holds_and_says_so(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.apply("outage", phases=LONG)
    driver.wait_weight(10)
    for service in (CANARY, STABLE):  # a provider outage hits both
        driver.traffic.set(service, errorRatio=0.3)
    status = driver.wait_status("outage", "the shared breach", lambda s: any(
        c["type"] == "SharedBreach" and c["status"] == "True" for c in s.get("conditions") or []), timeout=30)
    assert status["analysis"]["verdict"] == "Hold" and status["analysis"]["sharedBreach"] is True
    time.sleep(3)
    assert driver.status("outage")["phase"] != "RolledBack" and driver.route_weights() == (90, 10)
    assert "SharedBreach" in driver.wait_reason("outage", "SharedBreach")
    driver.traffic.set(STABLE, errorRatio=0.0)  # stable recovers, the canary does not: now it is the canary
    driver.wait_phase("outage", "RolledBack", timeout=30)


def test_a_canary_answering_4xx_to_traffic_stable_serves_fails_the_relative_gate(driver: Driver,
                                                                               operator: Operator) -> None:
    driver.healthy()
    driver.apply("refusing", phases=LONG)
    driver.wait_weight(10)
    driver.traffic.set(CANARY, clientErrorRatio=0.4)  # its error rate stays 0: only 4xx
    status = driver.wait_phase("refusing", "RolledBack", timeout=30)
    assert "4xx share" in status["message"] and "stable" in status["message"]


def test_clients_that_go_away_are_not_errors(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    driver.traffic.set(CANARY, cancelRatio=0.5)
    driver.apply("abandoned", phases=[{"weight": 10, "duration": "2s", "minRequests": 20},
                                      {"weight": 20, "duration": "1h", "minRequests": 20}])
    status = driver.wait_status("abandoned", "promoted", lambda s: s.get("step") == 2, timeout=60)
    assert status["analysis"]["errorRate"] == 0


def test_a_hard_breach_is_rolled_back_in_seconds_at_a_five_minute_interval(driver: Driver,
                                                                         operator: Operator) -> None:
    driver.healthy()
    driver.apply("slowlook", phases=LONG, analysis={"interval": "5m", "window": "8s"})
    driver.wait_weight(10, timeout=30)
    driver.break_canary("errors")
    began = time.monotonic()
    wait_for("the route back at 0", lambda: driver.route_weights() == (100, 0), timeout=60, every=0.1)
    assert time.monotonic() - began < 12  # the guard looks every second; the interval is five minutes
    assert driver.status("slowlook")["phase"] == "RolledBack"
