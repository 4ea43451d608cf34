"""The whole system on one machine, end to end: the operator's weights become real traffic shares through
Traefik, the services' real metrics reach a real Prometheus, and the operator's decisions follow from them.

Each scenario asserts on the route, the rollout's status, its Events and the traffic observed through the
Gateway (requests counted per variant from the responses). Durations are seconds, windows 6 s, interval 1 s.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest
from e2e_kit import RESULTS, Driver, assert_shares, measure_rollback, traffic

from wallbounce_local.driver import SETTLED
from wallbounce_local.loadgen import fire, run_users, summarize
from wallbounce_local.procs import WaitTimeout, wait_for
from wallbounce_local.stack import Stack, compressed_ladder
from wallbounce_operator.model import parse_time

pytestmark = pytest.mark.integration

LADDER = (1, 2, 10, 20, 35, 50)


def two_step(hold_s: int = 300) -> list[dict[str, Any]]:
    """A short first step, then a long one at 20 % where the scenario does its damage."""
    return [*compressed_ladder(2, (2,)), *compressed_ladder(hold_s, (20,))]


def test_happy_path_walks_the_whole_ladder_and_traffic_follows_the_weights(clean: Stack, driver: Driver) -> None:
    with traffic(clean) as t:
        driver.apply("happy", phases=compressed_ladder(3, LADDER))
        begun = time.monotonic()
        st = driver.wait_phase("happy", "Completed", timeout=150, fail_on=SETTLED)
        took = time.monotonic() - begun
        time.sleep(3)  # a last span at 50 %
        shares = t.shares()
    assert driver.route_weights() == (50, 50)
    assert st["weight"] == 50 and st["step"] == 6 and st["steps"] == 6
    assert st["analysis"]["verdict"] == "Pass"
    seen = [w for _, w in t.weights.changes]
    assert seen == [0, *LADDER], f"the route should walk the ladder in order, it went {seen}"
    driver.wait_reason("happy", "Completed")
    promoted = [m for r, m in driver.events("happy") if r == "PhasePromoted"]
    assert promoted == [f"step {i} passed (every promotion gate holds on the step's evidence): step {i + 1} "
                        f"({LADDER[i]}%)"
                        for i in range(1, len(LADDER))], promoted
    assert "Completed" in driver.reasons("happy")
    assert_shares(shares)
    assert {s["weight"] for s in shares} >= {10, 20, 35, 50}, shares
    RESULTS["happy_path_s"] = round(took, 1)
    RESULTS["happy_path_share_error_per_phase"] = [
        {k: s[k] for k in ("weight", "requests", "canary", "expected", "share_error")} for s in shares]


@pytest.mark.parametrize("strategy", ["Emergency", "Gradual"])
def test_error_burst_on_the_canary_rolls_back_fast(clean: Stack, driver: Driver, strategy: str) -> None:
    name = f"burst-{strategy.lower()}"
    with traffic(clean) as t:
        driver.apply(name, phases=two_step(), rollbackStrategy=strategy)
        driver.wait_phase(name, "Progressing", timeout=120, fail_on=SETTLED, step=2)
        driver.wait_verdict(name, "Pass")  # at step 2
        driver.break_canary("errors")
        target = 0 if strategy == "Emergency" else 2  # Gradual: the first rung down (step 1, 2 %)
        limit = 0.1  # the phase's rollback.errorRate
        measured = measure_rollback(driver, lambda: (clean.canary.error_rate() or 0) > limit, target)
        if strategy == "Gradual":  # the breach lasts: one more rung an interval later, to 0
            driver.wait_phase(name, "RolledBack", timeout=30)
            driver.wait_weight(0, timeout=10)
        time.sleep(2.5)
        after = summarize(t.load.since(measured["route_at_target_at"] + 1.0))
        shares = t.shares()
    st = driver.status(name)
    if strategy == "Emergency":
        assert st["phase"] == "RolledBack" and st["weight"] == 0
        assert driver.route_weights() == (100, 0)
        assert after.by_variant.get("canary", 0) == 0, f"canary still served after the rollback: {after}"
    else:
        rungs = [h["weight"] for h in st["history"] if h["reason"] in ("RollingBack", "RolledBack")]
        assert st["phase"] == "RolledBack" and rungs == [2, 0], st["history"]
        assert driver.route_weights() == (100, 0)
    assert st["analysis"]["verdict"] == "Fail" and st["analysis"]["errorRate"] > limit
    assert "RolledBack" in driver.wait_reason(name, "RolledBack")
    assert_shares(shares)
    # one analysis interval (1 s) plus a few seconds of scraping, querying and writing the route
    assert measured["delay_s"] <= 5.0, measured
    RESULTS[f"rollback_delay_{strategy.lower()}_s"] = measured["delay_s"]


def test_consensus_collapse_on_the_canary_rolls_back(clean: Stack, driver: Driver) -> None:
    name = "collapse"
    with traffic(clean) as t:
        driver.apply(name, phases=two_step())
        driver.wait_phase(name, "Progressing", timeout=120, fail_on=SETTLED, step=2)
        driver.wait_verdict(name, "Pass")  # at step 2
        healthy = driver.status(name)["analysis"]["consensusConfidence"]
        driver.break_canary("disagree")
        measured = measure_rollback(driver, lambda: (clean.canary.confidence() or 1) < 0.6, 0)
        time.sleep(1)
        answered = [s for s in t.load.since(measured["route_at_target_at"] - 10) if s.variant == "canary"]
    st = driver.status(name)
    assert healthy >= 0.7
    assert st["phase"] == "RolledBack" and driver.route_weights() == (100, 0)
    assert st["analysis"]["verdict"] == "Fail" and st["analysis"]["consensusConfidence"] < 0.6
    assert st["analysis"]["errorRate"] == 0  # not an error burst: the providers answered, they just disagreed
    driver.wait_reason(name, "RolledBack")
    assert any(r == "RolledBack" and "confidence" in m.lower() for r, m in driver.events(name)), driver.events(name)
    low = [s.confidence for s in answered if s.confidence is not None and s.confidence < 0.6]
    assert low, "the canary's own answers should report the collapsed confidence"
    RESULTS["rollback_delay_consensus_s"] = measured["delay_s"]
    RESULTS["canary_confidence_healthy_vs_collapsed"] = [healthy, st["analysis"]["consensusConfidence"]]


def test_prometheus_down_holds_then_pauses_and_resumes(clean: Stack, driver: Driver) -> None:
    stack, name = clean, "promdown"
    phases = compressed_ladder(2, (10, 20, 50))
    limit = 6  # above the NoData verdicts of a step's first seconds (series not yet in two scrapes)
    with traffic(stack):
        driver.apply(name, phases=phases, analysis={"errorLimit": limit})
        driver.wait_phase(name, "Progressing", timeout=120, fail_on=SETTLED, step=2)
        stack.stop_prometheus()
        try:
            driver.wait_phase(name, "Holding", timeout=20)  # on analysis errors
            st = driver.wait_phase(name, "Paused", timeout=30)  # after errorLimit
            assert st["pauseReason"] == "AnalysisErrors" and st["consecutiveErrors"] >= limit
            time.sleep(3)  # well past the step's dwell: still no promotion without Prometheus
            st = driver.status(name)
            assert st["step"] == 2 and st["weight"] == 20 and st["phase"] == "Paused"
            assert driver.route_weights() == (80, 20)
        finally:
            stack.restart_prometheus()
        # a human resumes once Prometheus has scraped a window's worth of canary traffic again
        wait_for("canary data back in Prometheus", lambda: stack.canary.error_rate() is not None, timeout=30)
        driver.action(name, "resume")
        driver.wait_status(name, "the resume to be taken", lambda s: s.get("phase") != "Paused", timeout=20)
        st = driver.wait_phase(name, "Completed", timeout=60, fail_on=SETTLED)
    assert st["weight"] == 50 and driver.route_weights() == (50, 50)
    seen = driver.wait_reason(name, "Completed")
    for reason in ("Holding", "Paused", "Resumed", "Completed"):
        assert reason in seen, seen
    assert seen.index("Paused") < seen.index("Resumed") < seen.index("Completed")


def test_operator_killed_repeatedly_finishes_without_skipping_or_shortening(clean: Stack, driver: Driver) -> None:
    stack, name, dwell = clean, "crashy", 4
    kills = 0

    def kill_and_restart() -> bool:
        """Kills land at about 1.5, 6.5, 11.5 and 16.5 s: all inside the ≥ 24 s ladder."""
        nonlocal kills
        if driver.status(name).get("phase") == "Completed":
            return True
        if kills < 4:
            stack.kill_operator()
            kills += 1
            time.sleep(1)
            stack.start_operator()
        return False

    with traffic(stack) as t:
        driver.apply(name, phases=compressed_ladder(dwell, LADDER))
        driver.wait_status(name, "step 1", lambda s: s.get("step") == 1 and s.get("weight") == 1)
        time.sleep(1.5)
        try:
            wait_for(f"{name} to complete while its operator is killed", kill_and_restart, timeout=150, every=1.5)
        except WaitTimeout:
            pass  # the wait below says where it stands
        st = driver.wait_phase(name, "Completed", timeout=90, fail_on=SETTLED)
        shares = t.shares()
    assert kills == 4
    assert st["weight"] == 50 and driver.route_weights() == (50, 50)
    seen = [w for _, w in t.weights.changes]
    assert seen == [0, *LADDER], f"a phase was skipped or repeated: {seen}"
    driver.wait_reason(name, "Completed")
    promoted = [m for r, m in driver.events(name) if r == "PhasePromoted"]
    assert len(promoted) == len(LADDER) - 1, f"a double or missing promotion: {promoted}"
    # dwell per step from the route's own changes (polled every 0.1 s): never shorter than the phase's duration,
    # allowing 1 s for stepStartedAt's whole-second resolution, 0.1 s of polling at each end and 0.1 s of margin
    # (a restart that lost or restarted the dwell would show as a dwell of 0–1 s, or of twice the duration)
    times = [at for at, _ in t.weights.changes[1:]]
    dwells = [round(b - a, 2) for a, b in itertools.pairwise(times)]
    assert all(d >= dwell - 1.3 for d in dwells), dwells
    history = [h for h in st["history"] if h["reason"] in ("StepStarted", "PhasePromoted")]
    assert [h["step"] for h in history] == list(range(1, 7))
    starts = [parse_time(h["time"]) for h in history]
    assert all((b - a).total_seconds() >= dwell for a, b in itertools.pairwise(starts) if a and b)
    assert_shares(shares)
    RESULTS["operator_kills"] = kills
    RESULTS["dwells_with_kills_s"] = dwells


def test_manual_weight_edit_is_reasserted(clean: Stack, driver: Driver) -> None:
    name = "drift"
    with traffic(clean) as t:
        driver.apply(name, phases=compressed_ladder(300, (10,)))
        driver.wait_weight(10, timeout=60)  # step 1 at 10 %
        time.sleep(2)
        driver.set_route_weights(50, 50)
        edited = time.monotonic()
        t.weights.record(50)  # known here, whether or not the 0.1 s polling sees it before the operator undoes it
        driver.wait_weight(10, timeout=15, every=0.1)  # the operator re-asserts 10 %
        reasserted = time.monotonic() - edited
        time.sleep(4)
        shares = t.shares()
    assert "WeightDrift" in driver.wait_reason(name, "WeightDrift")
    assert driver.status(name)["weight"] == 10 and driver.status(name)["step"] == 1
    assert_shares(shares)
    assert any(s["weight"] == 10 and s["requests"] >= 60 for s in shares), shares
    RESULTS["weight_drift_reasserted_after_s"] = round(reasserted, 2)


def test_seed_checks_half_srp_at_50_and_load_profile(clean: Stack, driver: Driver) -> None:
    url = clean.gateway_url
    driver.set_route_weights(50, 50)  # no rollout: the route as a user left it
    wait_for("Traefik to apply 50/50", lambda: summarize(fire(url, 20)).by_variant.get("canary", 0) >= 8,
             timeout=15, every=0.3)
    hundred = summarize(fire(url, 100, concurrency=10))
    assert hundred.count == 100 and hundred.errors == 0
    assert abs(hundred.srp_processed - 50) <= 2, hundred  # deterministic WRR: 50 ± the edges
    samples = run_users(url, users=10, seconds=30)
    profile = summarize(samples)
    assert profile.count >= 100
    assert profile.p95 < 10.0, profile
    assert profile.error_rate < 0.01, profile
    assert profile.mean_confidence is not None and profile.mean_confidence > 0.7, profile
    RESULTS["seed_srp_processed_of_100"] = hundred.srp_processed
    RESULTS["seed_load_profile"] = {"requests": profile.count, "rps": round(profile.count / 30, 1),
                                    "p95_s": round(profile.p95, 3), "error_rate": profile.error_rate,
                                    "mean_confidence": round(profile.mean_confidence, 3),
                                    "by_variant": profile.by_variant}
