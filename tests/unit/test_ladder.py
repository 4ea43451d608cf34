"""decide(): every rule of the ladder, example by example and as hypothesis properties."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallbounce_operator.ladder import decide
from wallbounce_operator.model import (
    Inputs,
    Observation,
    Phase,
    PhaseSpec,
    RolloutSpec,
    RouteState,
    Verdict,
    format_time,
    parse_duration,
)

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


def make_spec(**over: Any) -> RolloutSpec:
    raw: dict[str, Any] = {
        "stable": {"deployment": "s", "service": "s"},
        "canary": {"deployment": "c", "service": "c"},
        "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}},
        "analysis": {"prometheus": {"address": "http://p:9090"}, "interval": "30s", "window": "2m",
                     "confidenceLevel": 0.95, "errorLimit": 3},
        "phases": [{"weight": w, "duration": "10m", "minRequests": 100} for w in (1, 2, 10, 20, 35, 50)],
    }
    raw.update(over)
    return RolloutSpec.from_dict(raw)


GOOD = Observation(requests=2000, errors=0, latency_p95=1.0, confidence=0.9, cost_per_request=0.001)
BURST = Observation(requests=2000, errors=400, latency_p95=1.0, confidence=0.9)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def run(spec: RolloutSpec, status: dict[str, Any], minutes: float, **inputs: Any) -> Any:
    inputs.setdefault("route", RouteState(int(status.get("weight") or 0)))
    return decide(spec, status, Inputs(now=at(minutes), **inputs))


def started(spec: RolloutSpec) -> dict[str, Any]:
    d = run(spec, {}, 0, canary_revision="r1", route=RouteState(0))
    return d.status


# ----- starting ---------------------------------------------------------------------------------


def test_a_new_rollout_shifts_the_first_weight_once_the_canary_is_available() -> None:
    spec = make_spec()
    d = run(spec, {}, 0, canary_revision="r1", route=RouteState(0))
    assert (d.status["phase"], d.status["step"], d.status["steps"], d.weight) == ("Progressing", 1, 6, 1)
    assert d.status["stepStartedAt"] == format_time(T0)
    assert d.status["canaryRevision"] == "r1"
    assert [e.reason for e in d.events] == ["Started"]


def test_a_new_rollout_waits_for_an_available_canary() -> None:
    spec = make_spec()
    d = run(spec, {}, 0, canary_available=False, route=RouteState(0))
    assert (d.status["phase"], d.weight) == ("Holding", 0)
    later = run(spec, d.status, 1, canary_available=True)
    assert (later.status["phase"], later.weight) == ("Progressing", 1)
    assert later.status["stepStartedAt"] == format_time(at(1))


# ----- promotion --------------------------------------------------------------------------------


def test_pass_before_the_dwell_does_not_promote_and_after_it_does() -> None:
    spec = make_spec()
    s = started(spec)
    early = run(spec, s, 9.9, observation=GOOD)
    assert (early.status["phase"], early.weight, early.verdict) == ("Progressing", 1, Verdict.PASS)
    assert early.events == []
    due = run(spec, early.status, 10, observation=GOOD)
    assert (due.status["step"], due.weight) == (2, 2)
    assert due.status["stepStartedAt"] == format_time(at(10))
    assert [e.reason for e in due.events] == ["PhasePromoted"]


def test_the_whole_ladder_walks_to_completed() -> None:
    spec = make_spec()
    s = started(spec)
    weights = [1]
    minute = 0.0
    while s["phase"] != "Completed":
        minute += 10
        d = run(spec, s, minute, observation=GOOD)
        s = d.status
        weights.append(d.weight)
    assert weights == [1, 2, 10, 20, 35, 50, 50]
    assert s["step"] == 6
    conditions = {c["type"]: c["status"] for c in s["conditions"]}
    assert conditions["Completed"] == "True" and conditions["Progressing"] == "False"


def test_promotion_needs_an_available_canary() -> None:
    spec = make_spec()
    s = started(spec)
    d = run(spec, s, 11, observation=GOOD, canary_available=False)
    assert (d.status["phase"], d.weight) == ("Holding", 1)


@pytest.mark.parametrize("obs", [
    Observation(requests=50, errors=0, latency_p95=1, confidence=0.9),  # too few requests
    Observation(requests=2000, errors=8, latency_p95=1, confidence=0.9),  # 0.4% > 0.2% gate
    Observation(requests=2000, errors=0, latency_p95=7, confidence=0.9),  # p95 between gate and limit
    Observation(requests=2000, errors=0, latency_p95=1, confidence=0.65),  # confidence between
])
def test_hold_never_promotes(obs: Observation) -> None:
    spec = make_spec()
    d = run(spec, started(spec), 30, observation=obs)
    assert (d.verdict, d.status["phase"], d.weight) == (Verdict.HOLD, "Holding", 1)
    assert [e.reason for e in d.events] == ["Holding"]


def test_nodata_and_error_hold_then_pause_after_error_limit() -> None:
    spec = make_spec()  # errorLimit 3
    s = started(spec)
    for i, obs in enumerate([Observation(), Observation(error="connection refused"), Observation()], start=1):
        d = run(spec, s, 10 + i, observation=obs)
        s = d.status
        assert d.weight == 1
        assert s["consecutiveErrors"] == i
    assert (s["phase"], s["pauseReason"]) == ("Paused", "AnalysisErrors")
    # Paused does not analyse any more
    d = run(spec, s, 30, observation=GOOD)
    assert (d.status["phase"], d.weight, d.verdict) == ("Paused", 1, None)


def test_a_pass_resets_the_error_count() -> None:
    spec = make_spec()
    s = run(spec, started(spec), 1, observation=Observation()).status
    assert s["consecutiveErrors"] == 1
    s = run(spec, s, 2, observation=GOOD).status
    assert s["consecutiveErrors"] == 0


# ----- rollback ---------------------------------------------------------------------------------


def test_emergency_rollback_goes_to_weight_zero() -> None:
    spec = make_spec()
    s = run(spec, started(spec), 10, observation=GOOD).status  # step 2
    d = run(spec, s, 11, observation=BURST)
    assert (d.verdict, d.status["phase"], d.weight) == (Verdict.FAIL, "RolledBack", 0)
    assert [e.reason for e in d.events] == ["RolledBack"]
    assert d.events[0].type == "Warning"


def test_gradual_rollback_returns_to_the_first_weight_and_pauses() -> None:
    spec = make_spec(rollbackStrategy="Gradual")
    s = started(spec)
    for m in (10, 20, 30):
        s = run(spec, s, m, observation=GOOD).status
    assert s["weight"] == 20
    d = run(spec, s, 31, observation=BURST)
    assert (d.status["phase"], d.status["pauseReason"], d.status["step"], d.weight) == ("Paused", "RolledBack", 1, 1)
    resumed = run(spec, d.status, 40, action="resume")
    assert (resumed.status["phase"], resumed.status["step"], resumed.weight) == ("Progressing", 1, 1)


def test_one_unlucky_error_at_low_traffic_does_not_roll_back() -> None:
    spec = make_spec()
    d = run(spec, started(spec), 5, observation=Observation(requests=50, errors=1, latency_p95=1, confidence=0.9))
    assert d.verdict is Verdict.HOLD  # 2% raw, but the lower Wilson bound (0.35%) is below the 0.8% limit
    assert d.status["analysis"]["errorRateLower"] < 0.008 < d.status["analysis"]["errorRate"]


def test_with_confidence_level_zero_the_raw_ratio_decides() -> None:
    spec = make_spec(analysis={"prometheus": {"address": "http://p"}, "confidenceLevel": 0})
    d = run(spec, started(spec), 5, observation=Observation(requests=50, errors=1, latency_p95=1, confidence=0.9))
    assert d.verdict is Verdict.FAIL


def test_latency_and_confidence_breaches_roll_back_even_below_min_requests() -> None:
    spec = make_spec()
    slow = run(spec, started(spec), 1, observation=Observation(requests=5, errors=0, latency_p95=12, confidence=0.9))
    assert slow.verdict is Verdict.FAIL and slow.weight == 0
    unsure = run(spec, started(spec), 1, observation=Observation(requests=5, errors=0, latency_p95=1, confidence=0.4))
    assert unsure.verdict is Verdict.FAIL and "consensus confidence" in unsure.status["analysis"]["reason"]


# ----- actions, spec, revision, route -------------------------------------------------------


def test_actions() -> None:
    spec = make_spec()
    s = started(spec)
    paused = run(spec, s, 1, action="pause")
    assert (paused.status["phase"], paused.status["pauseReason"], paused.action_handled) == ("Paused", "Manual", True)
    resumed = run(spec, paused.status, 2, action="resume")
    assert resumed.status["phase"] == "Progressing"
    promoted = run(spec, resumed.status, 3, action="promote")
    assert (promoted.status["step"], promoted.weight) == (2, 2)
    full = run(spec, promoted.status, 4, action="promote-full")
    assert (full.status["phase"], full.status["step"], full.weight) == ("Completed", 6, 50)
    aborted = run(spec, started(spec), 5, action="abort")
    assert (aborted.status["phase"], aborted.weight) == ("Aborted", 0)
    retried = run(spec, aborted.status, 6, action="retry")
    assert (retried.status["phase"], retried.status["step"], retried.weight) == ("Progressing", 1, 1)
    ignored = run(spec, started(spec), 7, action="retry")
    assert ignored.status["phase"] == "Progressing" and [e.reason for e in ignored.events] == ["ActionIgnored"]
    unknown = run(spec, started(spec), 7, action="explode")
    assert unknown.events[0].type == "Warning" and unknown.action_handled


def test_spec_paused_pauses_and_resume_cannot_override_it() -> None:
    paused_spec = make_spec(paused=True)
    s = started(make_spec())
    d = run(paused_spec, s, 1)
    assert (d.status["phase"], d.status["pauseReason"]) == ("Paused", "Spec")
    still = run(paused_spec, d.status, 2, action="resume")
    assert still.status["phase"] == "Paused"
    back = run(make_spec(), still.status, 3)
    assert back.status["phase"] == "Progressing"


def test_a_new_canary_revision_restarts_the_ladder() -> None:
    spec = make_spec()
    s = started(spec)
    s = run(spec, s, 10, observation=GOOD, canary_revision="r1").status
    s = run(spec, s, 20, observation=GOOD, canary_revision="r1").status
    assert s["weight"] == 10
    d = run(spec, s, 21, canary_revision="r2")
    assert (d.status["step"], d.weight, d.status["canaryRevision"]) == (1, 1, "r2")
    assert "RevisionChanged" in [e.reason for e in d.events]


def test_a_missing_route_pauses_and_its_return_resumes() -> None:
    spec = make_spec()
    s = started(spec)
    gone = run(spec, s, 1, route=RouteState(None, "HTTPRoute llm/r not found"))
    assert (gone.status["phase"], gone.status["pauseReason"]) == ("Paused", "RouteMissing")
    assert gone.status["step"] == 1 and gone.status["weight"] == 1  # nothing lost
    back = run(spec, gone.status, 2, route=RouteState(0))
    assert back.status["phase"] == "Progressing"
    assert back.weight == 1


def test_weight_drift_is_reasserted() -> None:
    spec = make_spec()
    s = started(spec)
    d = run(spec, s, 1, route=RouteState(40))
    assert d.weight == 1
    assert [e.reason for e in d.events] == ["WeightDrift"]


def test_history_is_bounded() -> None:
    spec = make_spec()
    s = started(spec)
    for i in range(60):
        s = run(spec, s, i, action="pause" if i % 2 == 0 else "resume").status
    assert len(s["history"]) == 20


def test_tier_defaults() -> None:
    assert [(p.max_error_rate, p.rollback_error_rate) for p in make_spec().phases] == [
        (0.002, 0.008), (0.002, 0.008), (0.002, 0.008), (0.005, 0.015), (0.015, 0.03), (0.015, 0.03)]
    p = PhaseSpec.from_dict({"weight": 5})
    assert (p.max_latency_p95, p.rollback_latency_p95, p.min_confidence, p.rollback_confidence) == (5, 10, 0.7, 0.6)


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120
    with pytest.raises(ValueError):
        parse_duration("soon")


# ----- properties ------------------------------------------------------------------------------

observations = st.one_of(
    st.none(),
    st.builds(Observation, requests=st.one_of(st.none(), st.floats(0, 5000)),
              errors=st.one_of(st.none(), st.floats(0, 5000)),
              latency_p95=st.one_of(st.none(), st.floats(0, 30)), confidence=st.one_of(st.none(), st.floats(0, 1)),
              cost_per_request=st.one_of(st.none(), st.floats(0, 1))),
    st.just(Observation(error="down")),
)
steps = st.tuples(
    st.floats(0, 30),  # minutes since the previous tick
    observations,
    st.booleans(),  # canary available
    st.sampled_from([None, "pause", "resume", "promote", "abort", "retry", "promote-full"]),
    st.sampled_from(["r1", "r1", "r1", "r2"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, min_size=1, max_size=25), st.sampled_from(["Emergency", "Gradual"]))
def test_properties_of_any_walk(walk: list[tuple[Any, ...]], strategy: str) -> None:
    spec = make_spec(rollbackStrategy=strategy)
    ladder = [p.weight for p in spec.phases]
    status: dict[str, Any] = {}
    minute = 0.0
    for gap, obs, available, action, revision in walk:
        minute += gap
        before = dict(status)
        d = run(spec, status, minute, observation=obs, canary_available=available, action=action,
                canary_revision=revision, route=RouteState(int(status.get("weight") or 0)))
        after = d.status
        # weights only move along the ladder or to a rollback target (0, or the first weight)
        assert d.weight in ladder or d.weight == 0
        promoted = before and after["step"] > before.get("step", 1) and before.get("canaryRevision") == revision
        if promoted and action not in ("promote", "promote-full"):
            # never promote on anything but Pass, never before the dwell, never by more than one step
            assert d.verdict is Verdict.PASS
            assert after["step"] == before["step"] + 1
            started_at = dt.datetime.fromisoformat(before["stepStartedAt"].replace("Z", "+00:00"))
            assert (at(minute) - started_at).total_seconds() >= spec.phases[before["step"] - 1].duration
            assert available
        if d.verdict in (Verdict.NO_DATA, Verdict.ERROR, Verdict.HOLD) and action not in ("promote", "promote-full"):
            assert after["step"] <= before.get("step", 1) or before.get("canaryRevision") != revision
        if d.verdict is Verdict.FAIL:
            assert d.weight == (0 if strategy == "Emergency" else ladder[0])
        assert after["phase"] in {p.value for p in Phase}
        status = after


@given(st.integers(1, 100), st.integers(0, 30))
def test_a_breach_beyond_doubt_always_rolls_back(weight_index: int, extra: int) -> None:
    spec = make_spec()
    s = started(spec)
    n = 1000 + extra * 100
    d = run(spec, s, 1, observation=Observation(requests=n, errors=n * 0.2, latency_p95=1, confidence=0.9))
    assert d.verdict is Verdict.FAIL and d.weight == 0
