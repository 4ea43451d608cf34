"""decide(): every rule of the state machine, example by example and as hypothesis properties.

``Walk`` plays the engine's part without I/O: after each decision the route carries the desired weight (unless a
test makes the write fail), and the next tick reads it back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallbounce_operator.ladder import decide
from wallbounce_operator.model import (
    Counts,
    Decision,
    Inputs,
    Observation,
    Phase,
    PhaseSpec,
    RolloutSpec,
    RolloutStatus,
    RouteProblem,
    RouteState,
    Verdict,
    WorkloadState,
    parse_duration,
)

T0 = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
CANARY = WorkloadState(revision="r1", available=True, template_key="canary-template")
STABLE = WorkloadState(revision="s1", available=True, template_key="stable-template")


@dataclass(frozen=True)
class Traffic:
    """A canary's steady traffic, per minute; ``Walk`` turns it into the window and the interval's increase."""

    per_minute: float = 1000.0
    error_rate: float = 0.0
    slow_gate: float = 0.0  # share slower than the promotion latency gate
    slow_limit: float = 0.0  # share slower than the rollback latency limit
    confidence: float = 0.9
    client_errors: float = 0.0  # share of 4xx

    def counts(self, minutes: float) -> Counts:
        n = self.per_minute * minutes
        served = n * (1 - self.client_errors)
        return Counts(served=served, errors=served * self.error_rate, client_errors=n * self.client_errors,
                      timed=n, slow_gate=n * self.slow_gate, slow_limit=n * self.slow_limit, scored=served,
                      confidence_sum=served * self.confidence, confidence_squares=served * self.confidence ** 2,
                      cost=served * 0.001, latency_p95=45.0 if self.slow_limit > 0.05 else 1.0)


GOOD = Traffic()
BURST = Traffic(error_rate=0.2)
SLOW = Traffic(slow_gate=1.0, slow_limit=0.5)  # p95 45 s
HEALTHY_STABLE = Traffic()
NO_DATA = Traffic(per_minute=0)


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


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


class Walk:
    """One rollout driven through decide(), the route following each decision like the engine makes it."""

    def __init__(self, spec: RolloutSpec, *, canary: WorkloadState = CANARY, route: int = 0) -> None:
        self.spec = spec
        self.status = RolloutStatus()
        self.route = route
        self.canary = canary
        self.stable = STABLE
        self.minute = 0.0
        self.writes_fail = False
        self.write_error: str | None = None  # what the engine would pass after a failed write
        self.route_problem: RouteState | None = None
        self.generation = 1
        self.last: Decision | None = None
        self.analysed_at = 0.0  # the minute the last analysis interval ended
        self.stable_traffic = HEALTHY_STABLE

    def observe(self, traffic: Traffic | Observation) -> Observation:
        """The window (2 minutes) and the increase since the last analysis, as the engine reads them."""
        if isinstance(traffic, Observation):
            return traffic
        span = (at(self.analysed_at), at(self.minute))
        gap = max(self.minute - self.analysed_at, 0.0)
        self.analysed_at = self.minute
        return Observation(window=traffic.counts(2), stable_window=self.stable_traffic.counts(2),
                           increase=traffic.counts(gap), stable_increase=self.stable_traffic.counts(gap), span=span)

    def tick(self, minute: float | None = None, **inputs: Any) -> Decision:
        if minute is not None:
            self.minute = minute
        if inputs.get("observation") is not None:
            inputs["observation"] = self.observe(inputs["observation"])
        route = self.route_problem or RouteState(self.route)
        fields: dict[str, Any] = {"now": at(self.minute), "canary": self.canary, "stable": self.stable,
                                  "route": route, "generation": self.generation, "route_write_error": self.write_error}
        fields.update(inputs)
        d = decide(self.spec, self.status, Inputs(**fields))
        self.status = d.status
        if self.route_problem is None and d.weight != self.route:
            if self.writes_fail:
                self.write_error = "writing HTTPRoute x/r: HTTP 403 Forbidden"
            else:
                self.route, self.write_error = d.weight, None
        self.last = d
        return d

    def settle(self) -> Decision:
        """A tick without analysis at the same time: the route's new weight is read back."""
        return self.tick()

    def start(self) -> Walk:
        self.tick(0)
        self.settle()
        assert (self.status.phase, self.status.weight, self.status.step_started_at) == \
            ("Progressing", self.spec.weight_of(1), at(0))
        return self

    def walk_to(self, step: int) -> Walk:
        while self.status.step < step:
            self.tick(self.minute + 10, observation=GOOD)
            self.settle()
        return self

    @property
    def reasons(self) -> list[str]:
        return [e.reason for e in (self.last.events if self.last else [])]

    def condition(self, ctype: str) -> tuple[str, str]:
        c = self.status.condition(ctype)
        assert c is not None
        return c.status, c.reason


# ----- starting -------------------------------------------------------------------------------


def test_a_new_rollout_shifts_the_first_weight_and_starts_the_dwell_when_the_route_carries_it() -> None:
    w = Walk(make_spec())
    d = w.tick(0)
    assert (d.status.phase, d.weight, d.status.weight, d.status.step_started_at) == ("Progressing", 1, 0, None)
    assert [e.reason for e in d.events] == ["Started", "StepStarted"]
    w.settle()
    assert (w.status.weight, w.status.step_started_at) == (1, at(0))


def test_a_rollout_created_before_its_canary_is_available_waits_at_zero_then_stalls_then_starts() -> None:
    w = Walk(make_spec(progressDeadline="5m"), canary=replace(CANARY, available=False))
    w.tick(0)
    assert (w.status.phase, w.status.desired_weight) == ("Progressing", 0)
    assert w.condition("Stalled")[0] == "False"
    w.tick(6)
    assert (w.status.phase, w.status.desired_weight) == ("Progressing", 0)
    assert w.condition("Stalled") == ("True", "ProgressDeadlineExceeded")
    assert w.condition("Reconciling")[0] == "False"
    w.canary = CANARY
    w.tick(7)
    w.settle()
    assert (w.status.weight, w.status.step_started_at) == (1, at(7))
    assert w.condition("Stalled")[0] == "False" and w.condition("Reconciling")[0] == "True"


# ----- promotion ------------------------------------------------------------------------------


def test_pass_before_the_dwell_does_not_promote_and_after_it_does() -> None:
    w = Walk(make_spec()).start()
    early = w.tick(9.9, observation=GOOD)
    assert (early.status.phase, early.weight, early.verdict) == ("Progressing", 1, Verdict.PASS)
    assert early.events == []
    due = w.tick(10, observation=GOOD)
    assert (due.status.step, due.weight, due.status.weight) == (2, 2, 1)  # asked for, not yet carried
    assert due.status.step_started_at is None
    assert [e.reason for e in due.events] == ["PhasePromoted"]
    w.tick(10.5)
    assert (w.status.weight, w.status.step_started_at) == (2, at(10.5))  # the dwell starts at the read-back


def test_the_dwell_is_measured_from_when_the_route_carried_the_weight() -> None:
    w = Walk(make_spec()).start()
    w.writes_fail = True
    w.tick(10, observation=GOOD)  # promoted to step 2, the write fails
    w.writes_fail = False
    w.tick(15)  # the retry lands
    w.tick(15.1)  # and is read back
    assert w.status.step_started_at == at(15.1)
    w.tick(20, observation=GOOD)  # (the interval 10–20 began before the step: not evidence for it)
    assert w.status.evidence is not None and w.status.evidence.looks == 0
    assert w.tick(25, observation=GOOD).status.step == 2  # 15 minutes after the decision, 9.9 after the route
    assert w.tick(25.1, observation=GOOD).status.step == 3


def test_the_whole_ladder_walks_to_completed_and_is_ready() -> None:
    w = Walk(make_spec()).start()
    weights = [w.status.weight]
    while w.status.phase != "Completed":
        w.tick(w.minute + 10, observation=GOOD)
        w.settle()
        weights.append(w.status.weight)
    assert weights == [1, 2, 10, 20, 35, 50, 50]
    assert w.condition("Ready") == ("True", "Completed")
    assert w.condition("Reconciling")[0] == "False" and w.condition("Stalled")[0] == "False"
    assert w.status.observed_generation == 1


def test_a_final_step_of_100_is_a_full_cut_over() -> None:
    w = Walk(make_spec(phases=[{"weight": 50, "duration": "1m"}, {"weight": 100, "duration": "1m"}])).start()
    w.tick(2, observation=GOOD)
    w.settle()
    w.tick(4, observation=GOOD)
    assert (w.status.phase, w.status.weight) == ("Completed", 100)


def test_promotion_needs_an_available_canary() -> None:
    w = Walk(make_spec()).start()
    w.canary = replace(CANARY, available=False)
    d = w.tick(11, observation=GOOD)
    assert (d.status.phase, d.weight) == ("Holding", 1)


@pytest.mark.parametrize("obs", [
    Traffic(per_minute=3),  # too few requests
    Traffic(error_rate=0.004),  # 0.4% > 0.2% gate
    Traffic(slow_gate=0.5),  # p95 between gate and limit
    Traffic(confidence=0.65),  # confidence between
])
def test_hold_never_promotes(obs: Traffic) -> None:
    w = Walk(make_spec()).start()
    d = w.tick(30, observation=obs)
    assert (d.verdict, d.status.phase, d.weight) == (Verdict.HOLD, "Holding", 1)
    assert [e.reason for e in d.events] == ["Holding"]


def test_a_step_that_neither_passes_nor_fails_stalls_after_the_progress_deadline_and_keeps_guarding() -> None:
    w = Walk(make_spec(progressDeadline="5m")).start()
    hold = Traffic(per_minute=3)
    w.tick(10, observation=hold)
    w.tick(14, observation=hold)
    assert w.condition("Stalled")[0] == "False"
    w.tick(15, observation=hold)
    assert w.condition("Stalled") == ("True", "ProgressDeadlineExceeded")
    w.tick(16, observation=BURST)
    assert (w.status.phase, w.status.desired_weight) == ("RolledBack", 0)


def test_nodata_and_error_hold_then_pause_after_error_limit_and_the_guard_stays_on() -> None:
    w = Walk(make_spec()).start()  # errorLimit 3
    for i, obs in enumerate([NO_DATA, Observation(error="connection refused"), NO_DATA], start=1):
        d = w.tick(10 + i, observation=obs)
        assert d.weight == 1 and w.status.consecutive_errors == i
    assert (w.status.phase, w.status.pause_reason) == ("Paused", "AnalysisErrors")
    assert w.tick(30, observation=GOOD).status.phase == "Paused"  # no promotion while paused
    d = w.tick(31, observation=BURST)
    assert (d.status.phase, d.weight) == ("RolledBack", 0)


# ----- the guard in every state that carries traffic ------------------------------------------


@pytest.mark.parametrize("how", ["manual", "spec", "errors", "route-missing", "gradual-stop"])
def test_paused_for_any_reason_a_breach_still_rolls_back(how: str) -> None:
    strategy = "Gradual" if how == "gradual-stop" else "Emergency"
    w = Walk(make_spec(rollbackStrategy=strategy)).start().walk_to(5)  # 35 %
    if how == "manual":
        w.tick(action="pause")
    elif how == "spec":
        w.spec = make_spec(paused=True)
        w.tick()
    elif how == "errors":
        for _ in range(3):
            w.tick(w.minute + 0.5, observation=Observation(error="down"))
    elif how == "route-missing":
        w.route_problem = RouteState.unusable(RouteProblem.MISSING, "HTTPRoute x/r not found")
        w.tick()
        w.route_problem = None  # it is back (an SRE restored it) but the rollout stays where it was
    else:
        w.tick(w.minute + 0.5, observation=BURST)
        w.settle()
        w.tick(w.minute + 0.5, observation=GOOD)  # the breach cleared at 20 %: stopped and paused
        assert (w.status.phase, w.status.weight) == ("Paused", 20)
    if how != "route-missing":
        assert w.status.phase == "Paused"
    d = w.tick(w.minute + 0.5, observation=SLOW)
    assert d.verdict is Verdict.FAIL
    assert d.weight < 35 and d.status.phase in ("RolledBack", "RollingBack")
    if strategy == "Emergency":
        assert d.weight == 0


def test_completed_below_100_is_guarded_and_can_be_aborted() -> None:
    w = Walk(make_spec()).start().walk_to(6)
    w.tick(w.minute + 10, observation=GOOD)
    assert (w.status.phase, w.status.weight) == ("Completed", 50)
    d = w.tick(w.minute + 60, observation=BURST)
    assert (d.status.phase, d.weight) == ("RolledBack", 0)

    w2 = Walk(make_spec()).start().walk_to(6)
    w2.tick(w2.minute + 10, observation=GOOD)
    d = w2.tick(w2.minute + 60, action="abort")
    assert (d.status.phase, d.weight, d.clear_action) == ("Aborted", 0, True)
    assert d.status.last_action is not None and d.status.last_action.result == "Applied"
    assert w2.condition("Stalled") == ("True", "Aborted") and w2.condition("Ready")[0] == "False"


def test_completed_at_100_is_not_rolled_back_on_metrics() -> None:
    w = Walk(make_spec(phases=[{"weight": 100, "duration": "1m"}])).start()
    w.tick(2, observation=GOOD)
    assert (w.status.phase, w.status.weight) == ("Completed", 100)
    d = w.tick(3, observation=BURST)
    assert (d.status.phase, d.weight, d.verdict) == ("Completed", 100, None)


# ----- availability -----------------------------------------------------------------------------


def test_a_canary_whose_pods_die_loses_its_traffic_after_the_progress_deadline() -> None:
    w = Walk(make_spec(progressDeadline="5m")).start().walk_to(4)  # 20 %
    w.canary = replace(CANARY, available=False, message="revision r1 has no available replica")
    d = w.tick(w.minute + 1, observation=NO_DATA)
    assert d.weight == 20 and "CanaryUnavailable" in [e.reason for e in d.events]
    d = w.tick(w.minute + 4.9, observation=NO_DATA)
    assert d.weight == 20
    d = w.tick(w.minute + 0.2, observation=NO_DATA)
    assert (d.status.phase, d.weight) == ("RolledBack", 0)
    assert [e.reason for e in d.events] == ["ProgressDeadlineExceeded"]
    assert w.condition("Stalled") == ("True", "RolledBack")


def test_a_canary_that_recovers_before_the_deadline_keeps_its_step() -> None:
    w = Walk(make_spec(progressDeadline="5m")).start().walk_to(3)
    w.canary = replace(CANARY, available=False)
    w.tick(w.minute + 1)
    w.canary = CANARY
    w.tick(w.minute + 1)
    assert w.status.unavailable_since is None
    w.canary = replace(CANARY, available=False)
    d = w.tick(w.minute + 4)
    assert (d.status.phase, d.weight) == ("Progressing", 10)  # the clock started again


def test_a_deployment_reporting_progress_deadline_exceeded_is_unavailable() -> None:
    w = Walk(make_spec(progressDeadline="1m")).start()
    w.canary = replace(CANARY, deadline_exceeded=True)
    w.tick(1)
    d = w.tick(2.1)
    assert (d.status.phase, d.weight) == ("RolledBack", 0)


def test_an_image_pull_backoff_revision_while_old_pods_serve_gets_no_traffic_and_stalls() -> None:
    w = Walk(make_spec(progressDeadline="5m")).start().walk_to(3)
    # the new revision's ReplicaSet has no available replica; the Deployment counts the old pods as available
    w.canary = WorkloadState(revision="r2", available=False, template_key="canary-template-2",
                             message="revision r2 of x/c has no available replica")
    d = w.tick(w.minute + 1)
    assert (d.status.step, d.weight, d.status.canary_revision) == (1, 0, "r2")
    assert "RevisionChanged" in [e.reason for e in d.events]
    for _ in range(3):
        w.tick(w.minute + 2, observation=GOOD)
        assert w.status.desired_weight == 0
    assert w.condition("Stalled") == ("True", "ProgressDeadlineExceeded")


# ----- rollback ---------------------------------------------------------------------------------


def test_emergency_rollback_goes_to_weight_zero() -> None:
    w = Walk(make_spec()).start().walk_to(2)
    d = w.tick(w.minute + 1, observation=BURST)
    assert (d.verdict, d.status.phase, d.weight) == (Verdict.FAIL, "RolledBack", 0)
    assert [e.reason for e in d.events] == ["RolledBack"] and d.events[0].type == "Warning"
    assert w.condition("Stalled") == ("True", "RolledBack")


def test_gradual_steps_down_one_rung_per_interval_while_the_breach_lasts() -> None:
    w = Walk(make_spec(rollbackStrategy="Gradual")).start().walk_to(5)  # 35 %
    weights = []
    for _ in range(6):
        d = w.tick(w.minute + 0.5, observation=BURST)  # one interval
        w.settle()
        weights.append(d.weight)
    assert weights == [20, 10, 2, 1, 0, 0]
    assert w.status.phase == "RolledBack"


def test_gradual_does_not_step_twice_within_an_interval() -> None:
    w = Walk(make_spec(rollbackStrategy="Gradual")).start().walk_to(5)
    w.tick(w.minute + 0.5, observation=BURST)
    d = w.tick(w.minute + 0.1, observation=BURST)  # 6 s later: a faster look must not take another rung
    assert d.weight == 20


def test_gradual_stops_where_the_breach_clears_and_pauses_for_a_human() -> None:
    w = Walk(make_spec(rollbackStrategy="Gradual")).start().walk_to(5)
    w.tick(w.minute + 0.5, observation=BURST)
    w.settle()
    w.tick(w.minute + 0.5, observation=BURST)
    w.settle()
    d = w.tick(w.minute + 0.5, observation=GOOD)
    assert (d.status.phase, d.status.pause_reason, d.weight) == ("Paused", "RolledBack", 10)
    assert w.tick(w.minute + 30, observation=GOOD).status.step == 3  # paused: no promotion
    resumed = w.tick(w.minute + 1, action="resume")
    assert (resumed.status.phase, resumed.weight) == ("Progressing", 10)


def test_gradual_at_step_one_goes_to_zero() -> None:
    w = Walk(make_spec(rollbackStrategy="Gradual")).start()
    d = w.tick(1, observation=BURST)
    assert (d.status.phase, d.weight) == ("RolledBack", 0)
    retried = w.tick(2, action="retry")
    assert (retried.status.phase, retried.weight) == ("Progressing", 1)


def test_one_unlucky_error_at_low_traffic_does_not_roll_back() -> None:
    w = Walk(make_spec()).start()
    d = w.tick(2, observation=Traffic(per_minute=25, error_rate=0.02))  # 1 error in 50 requests
    assert d.verdict is Verdict.HOLD
    assert d.status.analysis is not None
    assert (d.status.analysis.error_rate_lower or 0) < 0.008 < (d.status.analysis.error_rate or 0)


# ----- route writes -------------------------------------------------------------------------------


def test_a_refused_route_write_stops_the_ladder_with_one_event_and_a_stalled_condition() -> None:
    w = Walk(make_spec()).start()
    w.writes_fail = True
    d = w.tick(10, observation=GOOD)  # promotion decided; the write will fail
    assert (d.status.desired_weight, d.status.weight) == (2, 1)
    events = []
    for minute in range(11, 60):
        d = w.tick(minute, observation=GOOD)
        events += [e.reason for e in d.events]
        assert (d.status.step, d.status.weight, d.status.phase) == (2, 1, "Progressing")
    assert events.count("RouteWriteFailed") == 1 and "PhasePromoted" not in events
    assert w.condition("Stalled") == ("True", "RouteWriteFailed")
    w.writes_fail = False
    w.tick(60)  # the retry lands
    d = w.tick(60.1)
    assert (d.status.weight, d.status.route_error) == (2, None)
    assert [e.reason for e in d.events] == ["RouteRecovered"]
    assert w.condition("Stalled")[0] == "False"


def test_weight_drift_is_reported_and_reasserted() -> None:
    w = Walk(make_spec()).start()
    w.route = 40
    d = w.tick(1)
    assert (d.weight, d.status.weight) == (1, 40)  # the status says what the route carries
    assert [e.reason for e in d.events] == ["WeightDrift"]
    w.tick(1.1)
    assert w.status.weight == 1


@pytest.mark.parametrize("problem", [RouteProblem.NOT_OWNED, RouteProblem.INVALID])
def test_a_route_that_is_not_ours_or_not_exactly_the_pair_pauses_and_stalls(problem: RouteProblem) -> None:
    w = Walk(make_spec())
    w.route_problem = RouteState.unusable(problem, f"the route: {problem}")
    d = w.tick(0)
    assert (d.status.phase, d.status.pause_reason) == ("Paused", str(problem))
    assert w.condition("Stalled") == ("True", str(problem))
    w.route_problem = None
    w.tick(1)
    w.settle()
    assert (w.status.phase, w.status.weight) == ("Progressing", 1)


# ----- actions ----------------------------------------------------------------------------------


def test_actions() -> None:
    w = Walk(make_spec()).start()
    paused = w.tick(1, action="pause")
    assert (paused.status.phase, paused.status.pause_reason, paused.clear_action) == ("Paused", "Manual", True)
    w.tick(1.1)  # the annotation is gone: lastAction.annotationCleared
    assert w.status.last_action is not None and w.status.last_action.annotation_cleared
    resumed = w.tick(2, action="resume")
    assert resumed.status.phase == "Progressing"
    w.tick(2.1)
    promoted = w.tick(3, action="promote")
    assert (promoted.status.step, promoted.weight) == (2, 2)
    w.tick(3.1)
    full = w.tick(4, action="promote-full")
    assert (full.status.phase, full.status.step, full.weight) == ("Completed", 6, 50)
    ignored = w.tick(5, action="retry")
    assert ignored.status.phase == "Completed" and [e.reason for e in ignored.events] == ["ActionIgnored"]
    assert ignored.status.last_action is not None and ignored.status.last_action.result == "Ignored"
    assert "only a RolledBack or Aborted" in ignored.status.last_action.message
    unknown = Walk(make_spec()).start().tick(7, action="explode")
    assert unknown.events[0].type == "Warning" and unknown.clear_action


def test_an_action_seen_again_after_a_crash_between_consume_and_removal_is_not_applied_twice() -> None:
    w = Walk(make_spec()).start()
    first = w.tick(1, action="promote")
    assert (first.status.step, first.clear_action) == (2, True)
    # the operator died before removing the annotation: the next reconcile sees it again
    again = w.tick(1.2, action="promote")
    assert (again.status.step, again.clear_action) == (2, True)
    assert again.status.last_action is not None and again.status.last_action.seq == 1
    w.tick(1.3)  # removed
    third = w.tick(2, action="promote")  # a new request with the same verb is a new action
    assert third.status.step == 3 and third.status.last_action is not None and third.status.last_action.seq == 2


def test_spec_paused_pauses_and_resume_cannot_override_it() -> None:
    w = Walk(make_spec()).start()
    w.spec = make_spec(paused=True)
    d = w.tick(1)
    assert (d.status.phase, d.status.pause_reason) == ("Paused", "Spec")
    still = w.tick(2, action="resume")
    assert still.status.phase == "Paused" and "ActionIgnored" in [e.reason for e in still.events]
    w.spec = make_spec()
    assert w.tick(3).status.phase == "Progressing"


def test_a_manual_pause_survives_a_new_revision_and_the_new_revision_gets_no_traffic() -> None:
    w = Walk(make_spec()).start().walk_to(3)
    w.tick(action="pause")
    w.canary = replace(CANARY, revision="r2")
    d = w.tick(w.minute + 1)
    assert (d.status.phase, d.status.step, d.weight, d.status.pause_reason) == ("Paused", 1, 0, "Manual")
    w.tick(w.minute + 1, action="resume")
    w.settle()
    assert (w.status.phase, w.status.weight) == ("Progressing", 1)


def test_a_pause_survives_route_loss_and_return() -> None:
    w = Walk(make_spec()).start()
    w.route_problem = RouteState.unusable(RouteProblem.MISSING, "HTTPRoute x/r not found")
    w.tick(1)
    assert w.status.pause_reasons == ("RouteMissing",)
    # no route carries canary traffic: the status says 0 %, and keeps the step's weight to re-assert
    assert (w.status.weight, w.status.desired_weight, w.status.step) == (0, 1, 1)
    w.tick(2, action="pause")
    assert set(w.status.pause_reasons) == {"Manual", "RouteMissing"}
    w.route_problem = None
    w.tick(3)
    assert (w.status.phase, w.status.pause_reason) == ("Paused", "Manual")


def test_spec_paused_survives_the_route_coming_back() -> None:
    w = Walk(make_spec()).start()
    w.spec = make_spec(paused=True)
    w.route_problem = RouteState.unusable(RouteProblem.MISSING, "gone")
    w.tick(1)
    w.route_problem = None
    d = w.tick(2)
    assert (d.status.phase, d.status.pause_reason) == ("Paused", "Spec")


def test_a_new_canary_revision_restarts_the_ladder() -> None:
    w = Walk(make_spec()).start().walk_to(3)
    w.canary = replace(CANARY, revision="r2")
    d = w.tick(w.minute + 1)
    assert (d.status.step, d.weight, d.status.canary_revision) == (1, 1, "r2")
    assert "RevisionChanged" in [e.reason for e in d.events]


# ----- ladder edits -------------------------------------------------------------------------------


def test_a_ladder_edit_moves_the_route_at_once_and_observed_generation_waits_for_it() -> None:
    w = Walk(make_spec()).start().walk_to(3)  # 10 %
    w.spec = make_spec(phases=[{"weight": x, "duration": "10m"} for x in (5, 15, 25)])
    w.generation = 2
    d = w.tick(w.minute + 0.1)
    assert (d.weight, d.status.step, d.status.observed_generation) == (25, 3, 1)
    assert "LadderChanged" in [e.reason for e in d.events]
    w.settle()
    assert (w.status.weight, w.status.observed_generation) == (25, 2)
    w.spec = make_spec(phases=[{"weight": 5, "duration": "10m"}])
    w.generation = 3
    w.tick()
    w.settle()
    assert (w.status.step, w.status.weight, w.status.observed_generation) == (1, 5, 3)


# ----- the end ------------------------------------------------------------------------------------


def test_convergence_moves_all_traffic_to_stable_and_a_new_revision_starts_again() -> None:
    w = Walk(make_spec()).start().walk_to(4)
    w.stable = replace(STABLE, template_key=CANARY.template_key, available=False)  # the user promoted stable
    d = w.tick(w.minute + 1)
    assert (d.status.phase, d.weight) == ("Promoting", 20)
    w.stable = replace(STABLE, template_key=CANARY.template_key, available=True)
    d = w.tick(w.minute + 1)
    assert (d.status.phase, d.weight) == ("Promoted", 0)
    w.settle()
    assert w.condition("Ready") == ("True", "Promoted")
    assert w.tick(w.minute + 1, observation=BURST).weight == 0  # nothing left to guard
    w.canary = replace(CANARY, revision="r2", template_key="canary-template-2")
    w.tick(w.minute + 1)
    w.settle()
    assert (w.status.phase, w.status.step, w.status.weight) == ("Progressing", 1, 1)


def test_promote_stable_copies_the_template_then_promotes() -> None:
    spec = make_spec(phases=[{"weight": 10, "duration": "1m"}], completion={"promoteStable": True})
    w = Walk(spec).start()
    d = w.tick(2, observation=GOOD)
    assert d.status.phase == "Completed"
    d = w.tick(2.1)
    assert (d.status.phase, d.apply_stable_template, d.weight) == ("Promoting", True, 10)
    w.stable = replace(STABLE, template_key=CANARY.template_key, available=False)
    d = w.tick(2.2)
    assert (d.status.phase, d.apply_stable_template) == ("Promoting", False)
    w.stable = replace(w.stable, available=True)
    assert w.tick(3).status.phase == "Promoted"


def test_a_rollout_whose_stable_already_runs_the_canary_is_promoted_at_once() -> None:
    w = Walk(make_spec())
    w.stable = replace(STABLE, template_key=CANARY.template_key)
    d = w.tick(0)
    assert (d.status.phase, d.weight) == ("Promoted", 0)


# ----- the analysis source ------------------------------------------------------------------------


def test_a_refused_analysis_source_never_starts_and_stalls() -> None:
    w = Walk(make_spec())
    d = w.tick(0, source_refused="spec.analysis.prometheus.address http://evil is not allowed")
    assert (d.status.phase, d.weight) == ("Progressing", 0)
    assert w.condition("Stalled") == ("True", "AnalysisSourceRefused")


# ----- conditions (kstatus) -----------------------------------------------------------------------


def test_conditions_follow_kstatus() -> None:
    w = Walk(make_spec()).start()
    assert (w.condition("Ready")[0], w.condition("Reconciling")[0], w.condition("Stalled")[0]) == \
        ("False", "True", "False")
    for c in w.status.conditions:
        assert c.observed_generation == 1
    w.tick(1, action="pause")
    assert (w.condition("Reconciling")[0], w.condition("Paused")) == ("False", ("True", "Manual"))


# ----- the model ----------------------------------------------------------------------------------


def test_tier_defaults() -> None:
    assert [(p.max_error_rate, p.rollback_error_rate) for p in make_spec().phases] == [
        (0.002, 0.008), (0.002, 0.008), (0.002, 0.008), (0.005, 0.015), (0.015, 0.03), (0.015, 0.03)]
    p = PhaseSpec.model_validate({"weight": 5})
    assert (p.max_latency_p95, p.rollback_latency_p95, p.min_confidence, p.rollback_confidence) == (5, 10, 0.7, 0.6)


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration("2m") == 120
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_a_status_round_trips_and_an_unreadable_field_does_not_lose_the_rest() -> None:
    w = Walk(make_spec()).start().walk_to(2)
    raw = w.status.to_dict()
    assert RolloutStatus.from_dict(raw) == w.status
    raw["holdingSince"] = "yesterday"
    back = RolloutStatus.from_dict(raw)
    assert (back.step, back.weight, back.holding_since) == (2, 2, None)


# ----- properties ---------------------------------------------------------------------------------

observations = st.one_of(
    st.none(),
    st.builds(Traffic, per_minute=st.floats(0, 2000), error_rate=st.floats(0, 1), slow_gate=st.floats(0, 1),
              slow_limit=st.floats(0, 1), confidence=st.floats(0, 1), client_errors=st.floats(0, 1)),
    st.just(Observation(error="down")),
    st.just(Observation()),
    st.just(BURST),
)
moves = st.tuples(
    st.floats(0, 30),  # minutes since the previous tick
    observations,
    st.booleans(),  # canary available
    st.sampled_from([None, None, None, "pause", "resume", "promote", "abort", "retry", "promote-full"]),
    st.sampled_from(["r1", "r1", "r1", "r2"]),
    st.sampled_from([None, None, None, None, RouteProblem.MISSING, RouteProblem.NOT_OWNED]),
    st.booleans(),  # the route write fails
)


@settings(max_examples=300, deadline=None)
@given(st.lists(moves, min_size=1, max_size=30), st.sampled_from(["Emergency", "Gradual"]))
def test_properties_of_any_walk(walk: list[tuple[Any, ...]], strategy: str) -> None:
    spec = make_spec(rollbackStrategy=strategy)
    ladder = [p.weight for p in spec.phases]
    w = Walk(spec)
    for gap, obs, available, action, revision, problem, fails in walk:
        before = w.status.model_copy()
        w.canary = replace(CANARY, revision=revision, available=available)
        w.route_problem = RouteState.unusable(problem, "x") if problem else None
        w.writes_fail = fails
        route_before = w.route
        d = w.tick(w.minute + gap, observation=obs, action=action)
        after = d.status
        # the status never claims a weight the route does not carry
        if problem is None:
            assert after.weight == route_before
        # weights only move along the ladder or to 0
        assert d.weight in ladder or d.weight == 0
        promoted = after.step > before.step and before.canary_revision == revision and before.phase is not None
        if promoted and action not in ("promote", "promote-full") and after.phase is not Phase.PROMOTED:
            # never promote on anything but Pass, never before the dwell on a weight the route carried
            assert d.verdict is Verdict.PASS and after.step == before.step + 1 and available
            assert before.step_started_at is not None and before.weight == before.desired_weight
            assert (at(w.minute) - before.step_started_at).total_seconds() >= spec.phases[before.step - 1].duration
        # a Fail always takes traffic away (Gradual: one rung per interval)
        if d.verdict is Verdict.FAIL and before.canary_revision == revision and action is None:
            if before.phase is Phase.ROLLING_BACK:
                assert d.weight <= before.desired_weight
            else:
                assert d.weight < max(before.desired_weight, 1)
        # a manual pause is never dropped but by resume, promote or retry
        if "Manual" in before.pause_reasons and action not in ("resume", "promote", "promote-full", "retry"):
            assert "Manual" in after.pause_reasons
        assert after.phase in set(Phase)


@given(st.integers(0, 30))
def test_a_breach_beyond_doubt_always_rolls_back(extra: int) -> None:
    w = Walk(make_spec()).start()
    d = w.tick(1, observation=Traffic(per_minute=500 + extra * 50, error_rate=0.2))
    assert d.verdict is Verdict.FAIL and d.weight == 0
