"""The rollout's state machine: ``decide(spec, status, inputs) → Decision``, a pure function (no I/O, no clock).

Given the spec, the status and what was observed this tick (the route's weight, the canary's and the stable's
current revisions, an analysis, an action annotation), it returns the complete new status, the canary weight the
route must carry (``desiredWeight``) and the events to emit. The rules, in the order they apply:

1. **The route is the truth.** ``status.weight`` is what the route carries when read; the dwell of a step starts
   when the route first carries the step's weight (``stepStartedAt``), and nothing promotes before that. A route
   changed by hand is reported (``WeightDrift``) and re-asserted by the engine.
2. **Actions** (``wallbounce.dev/action``) are applied at most once: the status records what was consumed
   (``lastAction``) and the engine removes the annotation only after that status is written.
3. **A new canary revision** restarts the ladder at step 1 (at weight 0 while a human or the spec pauses).
4. **A ladder edit** moves the route at once (same step index, clamped to the new end).
5. **Convergence**: when stable runs the canary's pod template (the user promoted stable, or
   ``completion.promoteStable`` copied it), all traffic goes to stable once it is available: ``Promoted``.
6. **Pauses** (spec, manual, analysis errors, a stopped Gradual rollback, route problems) stop promotion, never the
   guard.
7. **Availability**: a canary whose current revision has no available replica for ``progressDeadline`` while it
   carries traffic is rolled back to 0; before the first shift the rollout waits at 0 (``Stalled`` after the
   deadline).
8. **The guard**: in every state in which the canary carries traffic (the ladder, Promoting, Completed below
   100 %) a Fail verdict rolls back: Emergency → 0; Gradual → one rung down per interval while the breach lasts.
9. **Promotion**: Pass after the dwell, on a confirmed weight, with an available canary, promotes one step; the
   last step completes.
10. **Conditions** follow kstatus: ``Ready`` (Completed, Promoted), ``Reconciling``, ``Stalled``, and ``Paused``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import replace
from typing import Literal

from .analysis.verdict import Judgement, judge
from .model import (
    FINISHED,
    HISTORY_LIMIT,
    ROUTE_PAUSES,
    STICKY_PAUSES,
    Action,
    AnalysisStatus,
    Condition,
    Counts,
    Decision,
    Event,
    Evidence,
    HistoryEntry,
    Inputs,
    LastAction,
    Observation,
    PauseReason,
    Phase,
    Reason,
    RolloutSpec,
    RolloutStatus,
    RouteProblem,
    Verdict,
)

ON_LADDER = frozenset({Phase.PROGRESSING, Phase.HOLDING, Phase.PAUSED})


class _Draft:
    """The status being rewritten, with the events and side effects that go with it."""

    def __init__(self, spec: RolloutSpec, status: RolloutStatus, inputs: Inputs) -> None:
        self.spec = spec
        self.inputs = inputs
        self.now = inputs.now
        self.s = status.model_copy()  # nested values are frozen: only top-level fields are reassigned
        self.events: list[Event] = []
        self.verdict: Verdict | None = None
        self.clear_action = False
        self.apply_stable_template = False

    # --- helpers ---
    @property
    def steps(self) -> int:
        return len(self.spec.phases)

    def weight_of(self, step: int) -> int:
        return self.spec.weight_of(step)

    @property
    def confirmed(self) -> bool:
        """The route carries what we want, and the dwell of this step has started."""
        return self.s.weight == self.s.desired_weight and self.s.step_started_at is not None

    @property
    def stable_available(self) -> bool:
        return self.inputs.stable is not None and self.inputs.stable.available

    def emit(self, reason: Reason, message: str, warning: bool = False) -> None:
        self.events.append(Event(str(reason), message, "Warning" if warning else "Normal"))

    def go(self, phase: Phase, reason: Reason, message: str, *, warning: bool = False, event: bool = True) -> None:
        """Enter ``phase`` (recorded in history when the phase, step or weight changes)."""
        before = self.s.phase
        self.s.phase = phase
        self.s.message = message
        if phase is not Phase.HOLDING:
            self.s.holding_since = None
        if event:
            self.emit(reason, message, warning)
            entry = HistoryEntry.model_validate({"time": self.now, "from": str(before or ""), "to": str(phase),
                                                 "step": self.s.step, "weight": self.s.desired_weight,
                                                 "reason": str(reason), "message": message})
            history = [*self.s.history, entry]
            self.s.history = tuple(history[-HISTORY_LIMIT:])

    def shift_to(self, step: int, weight: int | None = None) -> None:
        """Ask for ``step``'s weight; its dwell starts when the route carries it."""
        self.s.step = step
        self.s.desired_weight = self.weight_of(step) if weight is None else weight
        self.s.step_started_at = None
        self.s.evidence = None
        self.s.consecutive_errors = 0
        self.s.holding_since = None

    def set_reasons(self, reasons: Iterable[PauseReason]) -> None:
        ordered = [r for r in PauseReason if r in set(reasons)]
        self.s.pause_reasons = tuple(ordered)

    @property
    def paused_by(self) -> frozenset[PauseReason]:
        return frozenset(self.s.pause_reasons)


def decide(spec: RolloutSpec, status: RolloutStatus, inputs: Inputs) -> Decision:
    d = _Draft(spec, status, inputs)
    _prepare(d)
    _confirm_route(d)
    _apply_action(d)
    _follow_revision(d)
    _follow_ladder_edit(d)
    _follow_pauses(d)
    _follow_convergence(d)
    _guard_availability(d)
    _analyse(d)
    _start_when_available(d)
    _follow_route_errors(d)
    _finish(d)
    return Decision(status=d.s, weight=d.s.desired_weight, events=d.events, verdict=d.verdict,
                    clear_action=d.clear_action, apply_stable_template=d.apply_stable_template)


# ----- the rules, in the order decide() applies them -------------------------------------------


def _prepare(d: _Draft) -> None:
    d.s.steps = d.steps
    if d.s.step > d.steps:
        d.s.step = d.steps
    if d.s.step < 1:
        d.s.step = 1
    if d.s.phase is not None:
        return
    d.s.canary_revision = d.inputs.canary.revision
    d.s.step, d.s.desired_weight = 1, 0
    if d.inputs.route is not None and d.inputs.route.weight is not None:
        d.s.weight = d.inputs.route.weight
    d.go(Phase.PROGRESSING, Reason.STARTED,
         f"rollout started: waiting for the canary to take step 1 ({d.weight_of(1)}%)")


def _confirm_route(d: _Draft) -> None:
    """``status.weight`` follows the route; the dwell starts at the first read that shows the wanted weight."""
    route = d.inputs.route
    s = d.s
    if route is not None and route.problem is RouteProblem.MISSING:
        s.weight = 0  # no route, no canary traffic; desiredWeight keeps the step's weight for when it is back
    if route is None or route.weight is None:
        return
    if route.weight != s.weight and route.weight != s.desired_weight:
        d.emit(Reason.WEIGHT_DRIFT, f"the route carried {route.weight}% to the canary instead of {s.weight}%: "
                                    f"re-asserting {s.desired_weight}%", warning=True)
    s.weight = route.weight
    if route.weight == s.desired_weight and s.step_started_at is None and s.desired_weight > 0:
        s.step_started_at = d.now


# --- actions ---


def _apply_action(d: _Draft) -> None:
    raw = d.inputs.action
    last = d.s.last_action
    if raw is None:
        if last is not None and not last.annotation_cleared:
            d.s.last_action = last.model_copy(update={"annotation_cleared": True})
        return
    d.clear_action = True
    if last is not None and not last.annotation_cleared and last.action == raw:
        return  # applied before a crash, not yet removed: not twice
    applied, message = _perform(d, raw)
    if not applied:
        d.emit(Reason.ACTION_IGNORED, message, warning=True)
    d.s.last_action = LastAction(action=raw, seq=(last.seq + 1) if last else 1, time=d.now,
                                 result="Applied" if applied else "Ignored", message=message)


def _perform(d: _Draft, raw: str) -> tuple[bool, str]:
    try:
        action = Action(raw)
    except ValueError:
        return False, f"unknown action {raw!r} (pause, resume, abort, promote, promote-full, retry)"
    return {
        Action.ABORT: _abort,
        Action.RETRY: _retry,
        Action.PAUSE: _pause,
        Action.RESUME: _resume,
        Action.PROMOTE: _promote,
        Action.PROMOTE_FULL: _promote,
    }[action](d, action)


def _abort(d: _Draft, _action: Action) -> tuple[bool, str]:
    if d.s.phase in FINISHED:
        return False, f"abort ignored: the rollout is {d.s.phase} and the canary carries no traffic"
    d.s.desired_weight = 0
    d.go(Phase.ABORTED, Reason.ABORTED, "aborted by request: all traffic back to stable", warning=True)
    return True, "aborted: all traffic back to stable"


def _retry(d: _Draft, _action: Action) -> tuple[bool, str]:
    if d.s.phase not in (Phase.ROLLED_BACK, Phase.ABORTED):
        return False, f"retry ignored: only a RolledBack or Aborted rollout can be retried (it is {d.s.phase})"
    d.set_reasons(r for r in d.paused_by if r not in STICKY_PAUSES)
    d.s.unavailable_since = None
    d.shift_to(1, weight=0)
    d.go(Phase.PROGRESSING, Reason.RETRIED, f"retry: the ladder restarts at step 1 ({d.weight_of(1)}%)")
    return True, "retried: the ladder restarts at step 1"


def _pause(d: _Draft, _action: Action) -> tuple[bool, str]:
    if d.s.phase not in ON_LADDER:
        return False, f"pause ignored: the rollout is {d.s.phase} (nothing is being promoted)"
    if PauseReason.MANUAL in d.paused_by:
        return False, "pause ignored: already paused by request"
    d.set_reasons([*d.paused_by, PauseReason.MANUAL])
    return True, "paused by request: no promotion until resumed (rollback limits still apply)"


def _resume(d: _Draft, _action: Action) -> tuple[bool, str]:
    sticky = d.paused_by & STICKY_PAUSES
    if d.spec.paused:
        return False, "resume ignored: spec.paused is true (set it to false in the manifest)"
    if not sticky:
        why = ", ".join(d.s.pause_reasons) or "not paused"
        return False, f"resume ignored: nothing a resume can clear ({d.s.phase}; {why})"
    d.set_reasons(d.paused_by - STICKY_PAUSES)
    d.s.consecutive_errors = 0
    rest = d.paused_by
    return True, "resumed" + (f"; still paused: {', '.join(rest)}" if rest else "")


def _promote(d: _Draft, action: Action) -> tuple[bool, str]:
    if d.s.phase not in ON_LADDER:
        return False, f"{action} ignored: the rollout is {d.s.phase}"
    blocked = d.paused_by - STICKY_PAUSES
    if blocked:
        return False, f"{action} ignored: paused for {', '.join(blocked)}"
    if not d.inputs.canary.available:
        return False, f"{action} refused: the canary's current revision has no available replica"
    d.set_reasons(d.paused_by - STICKY_PAUSES)
    if action is Action.PROMOTE_FULL or d.s.step >= d.steps:
        d.shift_to(d.steps)
        d.go(Phase.COMPLETED, Reason.COMPLETED, f"promoted by request to the last step ({d.s.desired_weight}%): "
                                                "completed")
        return True, f"completed at {d.s.desired_weight}%"
    nxt = d.s.step + 1
    d.shift_to(nxt)
    d.go(Phase.PROGRESSING, Reason.PHASE_PROMOTED, f"promoted by request to step {nxt} ({d.weight_of(nxt)}%)")
    return True, f"step {nxt} ({d.weight_of(nxt)}%)"


# --- the canary and the ladder ---


def _follow_revision(d: _Draft) -> None:
    new, old = d.inputs.canary.revision, d.s.canary_revision
    if not new or new == old:
        return
    d.s.canary_revision = new
    if not old:
        return
    d.set_reasons(d.paused_by - {PauseReason.ANALYSIS_ERRORS, PauseReason.ROLLED_BACK})
    d.s.unavailable_since = None
    d.s.rollback_step_at = None
    d.shift_to(1, weight=0)
    d.go(Phase.PROGRESSING, Reason.REVISION_CHANGED,
         f"canary revision changed ({old} → {new}): the ladder restarts at step 1 ({d.weight_of(1)}%)")


def _follow_ladder_edit(d: _Draft) -> None:
    s = d.s
    if s.phase is Phase.COMPLETED and s.step < d.steps:
        d.shift_to(s.step + 1)
        d.go(Phase.PROGRESSING, Reason.LADDER_CHANGED, f"the ladder grew: step {s.step} ({s.desired_weight}%)")
        return
    if s.phase not in (*ON_LADDER, Phase.COMPLETED) or s.desired_weight == 0:
        return
    wanted = d.weight_of(s.step)
    if s.desired_weight != wanted:
        old = s.desired_weight
        d.shift_to(s.step)
        d.emit(Reason.LADDER_CHANGED, f"spec.phases changed: step {s.step} is now {wanted}% (was {old}%)")


def _follow_pauses(d: _Draft) -> None:
    reasons = set(d.paused_by & STICKY_PAUSES)
    if d.spec.paused:
        reasons.add(PauseReason.SPEC)
    route = d.inputs.route
    if route is None:
        reasons |= d.paused_by & ROUTE_PAUSES
    elif route.weight is None and route.problem is not None:
        reasons.add(PauseReason(str(route.problem)))
    before = d.paused_by
    d.set_reasons(reasons)
    if d.s.phase not in ON_LADDER:
        return
    if reasons and d.s.phase is not Phase.PAUSED:
        new = sorted(reasons - before) or sorted(reasons)
        warn = bool(reasons & ROUTE_PAUSES)
        detail = f": {route.message}" if route is not None and route.message and warn else ""
        d.go(Phase.PAUSED, Reason.PAUSED, f"paused ({', '.join(new)}){detail}; rollback limits still apply",
             warning=warn)
    elif not reasons and d.s.phase is Phase.PAUSED:
        if before & ROUTE_PAUSES:
            d.s.step_started_at = None  # evidence while the route was unusable does not count
        d.go(Phase.PROGRESSING, Reason.RESUMED, f"resumed at step {d.s.step} ({d.s.desired_weight}%)")
    elif reasons and d.s.phase is Phase.PAUSED and reasons - before:
        d.emit(Reason.PAUSED, f"also paused for {', '.join(sorted(reasons - before))}",
               warning=bool((reasons - before) & ROUTE_PAUSES))


def _follow_convergence(d: _Draft) -> None:
    """Stable runs the canary's pod template: traffic to stable once it is available (``Promoted``)."""
    s, stable, canary = d.s, d.inputs.stable, d.inputs.canary
    wants_copy = s.phase in (Phase.COMPLETED, Phase.PROMOTING) and d.spec.completion.promote_stable
    if stable is None or not stable.found or s.phase is Phase.PROMOTED:
        return
    same = stable.template_key is not None and stable.template_key == canary.template_key
    if not same:
        if wants_copy:
            d.apply_stable_template = True
            if s.phase is Phase.COMPLETED:
                d.go(Phase.PROMOTING, Reason.PROMOTING, "completed: copying the canary's pod template into "
                                                        "the stable Deployment (completion.promoteStable)")
        return
    if not stable.available:
        if s.phase is not Phase.PROMOTING:
            d.go(Phase.PROMOTING, Reason.PROMOTING, "stable runs the canary's pod template: waiting for its "
                                                    "current revision to be available")
        return
    s.desired_weight = 0
    s.unavailable_since = None
    d.go(Phase.PROMOTED, Reason.PROMOTED, "stable runs the canary's pod template and is available: all traffic "
                                          "to stable")


def _guard_availability(d: _Draft) -> None:
    s, canary = d.s, d.inputs.canary
    if canary.available and not canary.deadline_exceeded:
        s.unavailable_since = None
        return
    carries = s.weight > 0 or s.desired_weight > 0
    if s.unavailable_since is None:
        s.unavailable_since = d.now
        if carries and s.phase not in FINISHED:
            why = canary.message or "its current revision has no available replica"
            d.emit(Reason.CANARY_UNAVAILABLE, f"the canary is not available ({why}); traffic leaves it if this "
                                              f"lasts {d.spec.progress_deadline:g}s", warning=True)
    overdue = (d.now - s.unavailable_since).total_seconds() >= d.spec.progress_deadline
    if not (carries and overdue) or s.phase in FINISHED:
        return
    if s.phase is Phase.COMPLETED and s.weight >= 100 and not d.stable_available:
        return  # all traffic is on the canary and stable cannot take it
    s.desired_weight = 0
    d.go(Phase.ROLLED_BACK, Reason.PROGRESS_DEADLINE_EXCEEDED,
         f"the canary's current revision has had no available replica for {d.spec.progress_deadline:g}s: "
         "rolled back, canary weight 0", warning=True)


def _start_when_available(d: _Draft) -> None:
    """On the ladder at weight 0 (new rollout, new revision, retry): shift the step once the canary can serve."""
    s = d.s
    if s.phase not in (Phase.PROGRESSING, Phase.HOLDING) or s.desired_weight != 0:
        return
    if not d.inputs.canary.available or d.inputs.canary.deadline_exceeded or d.inputs.source_refused:
        s.message = (f"waiting for the canary's current revision to be available before step {s.step} "
                     f"({d.weight_of(s.step)}%)")
        if d.inputs.source_refused:
            s.message = f"not starting: {d.inputs.source_refused}"
        return
    d.shift_to(s.step)
    d.go(Phase.PROGRESSING, Reason.STEP_STARTED, f"the canary is available: step {s.step} "
                                                 f"({s.desired_weight}%) to the canary")


# --- analysis: the guard and the promotion ---


def _guarded(d: _Draft) -> bool:
    """Does the canary carry traffic in a state whose rollback limits apply?"""
    s = d.s
    if s.weight <= 0 and s.desired_weight <= 0:
        return False
    if s.phase in (*ON_LADDER, Phase.ROLLING_BACK, Phase.PROMOTING):
        return True
    return s.phase is Phase.COMPLETED and s.weight < 100


def _analyse(d: _Draft) -> None:
    obs = d.inputs.observation
    if obs is None or not _guarded(d) or d.s.weight <= 0:
        return
    if d.inputs.source_refused:
        obs = Observation(error=d.inputs.source_refused)
    phase_spec = d.spec.phases[d.s.step - 1]
    obs = _accumulate(d, obs)
    j = judge(phase_spec, obs, d.s.evidence, _dwell_over(d), d.spec.confidence_level)
    if j is None:
        return  # a guard look that found nothing: nothing to write
    d.verdict = j.verdict
    _record(d, j, obs)
    if j.verdict is Verdict.FAIL:
        _rollback(d, j.reason)
    elif d.s.phase is Phase.ROLLING_BACK:
        d.set_reasons([*d.paused_by, PauseReason.ROLLED_BACK])
        d.s.rollback_step_at = None
        d.go(Phase.PAUSED, Reason.PAUSED, f"the breach cleared at step {d.s.step} ({d.s.desired_weight}%): "
                                          f"stopped rolling back and paused for a human ({j.verdict}: {j.reason})",
             warning=True)
    elif d.s.phase in (Phase.PROGRESSING, Phase.HOLDING):
        _promote_or_hold(d, j)


def _dwell_over(d: _Draft) -> bool:
    s = d.s
    if not d.confirmed or s.step_started_at is None:
        return False
    return (d.now - s.step_started_at).total_seconds() >= d.spec.phases[s.step - 1].duration


def _accumulate(d: _Draft, obs: Observation) -> Observation:
    """The step's evidence grows by the last interval when that interval lies wholly inside the step and after what
    was counted (a restart or a late tick never counts an interval twice). An interval it cannot count makes this a
    guard-only look."""
    s = d.s
    if obs.increase is None or obs.span is None:
        return obs
    start = s.step_started_at
    if not d.confirmed or start is None:
        return replace(obs, increase=None)
    ev = s.evidence if s.evidence is not None and s.evidence.since == start else Evidence(since=start, until=start)
    span_start, span_end = obs.span
    slack = dt.timedelta(milliseconds=500)
    if span_start + slack < ev.until or span_start + slack < start:
        s.evidence = ev
        return replace(obs, increase=None)
    s.evidence = ev.model_copy(update={
        "canary": ev.canary + obs.increase,
        "stable": ev.stable + (obs.stable_increase or Counts()),
        "until": span_end,
        "looks": ev.looks + 1,
        "promotion_looks": ev.promotion_looks + (1 if _dwell_over(d) else 0),
    })
    return obs


def _record(d: _Draft, j: Judgement, obs: Observation) -> None:
    w = obs.window or Counts()
    values = {"requests": w.requests if obs.window else None, "error_rate": j.error_rate,
              "error_rate_lower": j.lower, "error_rate_upper": j.upper, "latency_p95": w.latency_p95,
              "consensus_confidence": w.confidence, "cost_per_request": w.cost_per_request}
    was_shared = bool(d.s.analysis and d.s.analysis.shared_breach)
    d.s.analysis = AnalysisStatus(time=d.now, verdict=str(j.verdict), reason=j.reason,
                                  shared_breach=j.shared_breach or None,
                                  **{k: round(float(v), 6) for k, v in values.items() if v is not None})
    d.s.last_analysis_at = d.now
    if j.shared_breach and not was_shared:
        d.emit(Reason.SHARED_BREACH, f"canary and stable breach together, so the canary is not blamed: {j.reason}",
               warning=True)


def _promote_or_hold(d: _Draft, j: Judgement) -> None:
    s, spec = d.s, d.spec
    if j.verdict is Verdict.PASS:
        s.consecutive_errors = 0
        if not d.confirmed:
            _progress(d, Phase.PROGRESSING, f"step {s.step}: waiting for the route to carry {s.desired_weight}%")
            return
        assert s.step_started_at is not None
        left = spec.phases[s.step - 1].duration - (d.now - s.step_started_at).total_seconds()
        if left > 0 or not j.promotable:
            _progress(d, Phase.PROGRESSING, f"step {s.step} ({s.weight}%) passing; promotion after the dwell, in "
                                            f"{left:.0f}s")
        elif not d.inputs.canary.available:
            _progress(d, Phase.HOLDING, "analysis passes but the canary's current revision has no available "
                                        "replica: not promoting")
        elif s.step >= d.steps:
            d.go(Phase.COMPLETED, Reason.COMPLETED, f"every step passed: completed at {s.weight}%")
        else:
            nxt = s.step + 1
            d.shift_to(nxt)
            d.go(Phase.PROGRESSING, Reason.PHASE_PROMOTED, f"step {nxt - 1} passed ({j.reason}): step {nxt} "
                                                           f"({s.desired_weight}%)")
    elif j.verdict is Verdict.HOLD:
        s.consecutive_errors = 0
        _progress(d, Phase.HOLDING, f"holding at step {s.step} ({s.weight}%): {j.reason}")
    else:
        s.consecutive_errors += 1
        errors, limit = s.consecutive_errors, spec.error_limit
        if errors >= max(limit, 1):
            d.set_reasons([*d.paused_by, PauseReason.ANALYSIS_ERRORS])
            d.go(Phase.PAUSED, Reason.PAUSED, f"{errors} consecutive {j.verdict} verdicts ({j.reason}): paused "
                                              "for a human (resume to continue; rollback limits still apply)",
                 warning=True)
            return
        if errors == 1:
            d.emit(Reason.ANALYSIS_ERROR, f"{j.verdict}: {j.reason}", warning=True)
        _progress(d, Phase.HOLDING, f"holding at step {s.step} ({s.weight}%): {j.verdict} {errors}/{limit}: "
                                    f"{j.reason}")


def _progress(d: _Draft, phase: Phase, message: str) -> None:
    """Progressing ↔ Holding: the message changes; an event (and history) only when entering Holding."""
    if phase is not Phase.HOLDING:
        d.go(Phase.PROGRESSING, Reason.PROGRESSING, message, event=False)
    elif d.s.phase is not Phase.HOLDING:
        d.go(Phase.HOLDING, Reason.HOLDING, message)
        d.s.holding_since = d.now
    else:
        d.s.message = message
        d.s.holding_since = d.s.holding_since or d.now


def _rollback(d: _Draft, reason: str) -> None:
    s = d.s
    gradual = d.spec.rollback_strategy == "Gradual"
    if gradual and s.phase is Phase.ROLLING_BACK and s.rollback_step_at is not None \
            and (d.now - s.rollback_step_at).total_seconds() < d.spec.interval * 0.5:
        return  # one rung per analysis interval (half of it: ticks on the interval's grid jitter)
    if gradual and s.step > 1:
        step = s.step - 1
        d.shift_to(step)
        s.rollback_step_at = d.now
        d.go(Phase.ROLLING_BACK, Reason.ROLLING_BACK, f"rolling back (Gradual): step {step} "
                                                      f"({s.desired_weight}%): {reason}", warning=True)
        return
    s.desired_weight = 0
    s.rollback_step_at = None
    how = "Gradual, from step 1" if gradual else "Emergency"
    d.go(Phase.ROLLED_BACK, Reason.ROLLED_BACK, f"rolled back ({how}): canary weight 0: {reason}", warning=True)


# --- the route's errors, the conditions ---


def _follow_route_errors(d: _Draft) -> None:
    s, error = d.s, d.inputs.route_write_error
    if error:
        if s.route_error is None:
            d.emit(Reason.ROUTE_WRITE_FAILED, f"could not set the route to {s.desired_weight}%: {error} "
                                              "(retrying with backoff; the ladder does not advance)", warning=True)
        s.route_error = error
    elif s.route_error is not None and s.weight == s.desired_weight:
        d.emit(Reason.ROUTE_RECOVERED, f"the route carries {s.weight}% again")
        s.route_error = None


def _stalled(d: _Draft) -> tuple[Reason, str] | None:
    s = d.s
    if s.phase in (Phase.ROLLED_BACK, Phase.ABORTED, Phase.ROLLING_BACK):
        return Reason(str(s.phase)), s.message
    if s.route_error:
        return Reason.ROUTE_WRITE_FAILED, s.route_error
    for problem in (PauseReason.ROUTE_NOT_OWNED, PauseReason.ROUTE_INVALID):
        if problem in d.paused_by:
            route = d.inputs.route
            return Reason(str(problem)), (route.message if route and route.message else str(problem))
    if d.inputs.source_refused:
        return Reason.ANALYSIS_SOURCE_REFUSED, d.inputs.source_refused
    deadline = d.spec.progress_deadline
    waiting = s.phase in ON_LADDER and s.desired_weight == 0 and s.unavailable_since is not None
    if waiting and (d.now - s.unavailable_since).total_seconds() >= deadline:  # type: ignore[operator]
        return Reason.PROGRESS_DEADLINE_EXCEEDED, (f"the canary's current revision has not been available for "
                                                   f"{deadline:g}s")
    dwell_end = (s.step_started_at + dt.timedelta(seconds=d.spec.phases[s.step - 1].duration)
                 if s.step_started_at is not None else None)
    stuck_since = max(s.holding_since, dwell_end) if s.holding_since and dwell_end else None
    if s.phase is Phase.HOLDING and stuck_since is not None and (d.now - stuck_since).total_seconds() >= deadline:
        return Reason.PROGRESS_DEADLINE_EXCEEDED, f"step {s.step} has neither passed nor failed for {deadline:g}s"
    return None


def _finish(d: _Draft) -> None:
    s = d.s
    s.pause_reason = s.pause_reasons[0] if s.phase is Phase.PAUSED and s.pause_reasons else None
    settled = s.weight == s.desired_weight or s.route_error is not None or bool(d.paused_by & ROUTE_PAUSES)
    if d.inputs.generation is not None and settled:
        s.observed_generation = d.inputs.generation
    stalled = _stalled(d)
    phase = s.phase
    wanted: dict[str, tuple[bool, str, str]] = {
        "Ready": (phase in (Phase.COMPLETED, Phase.PROMOTED), str(phase), s.message),
        "Reconciling": (phase in (Phase.PROGRESSING, Phase.HOLDING, Phase.PROMOTING) and stalled is None,
                        str(phase), s.message),
        "Stalled": (stalled is not None, str(stalled[0]) if stalled else str(Reason.NOT_STALLED),
                    stalled[1] if stalled else ""),
        "Paused": (phase is Phase.PAUSED, str(s.pause_reason or Reason.NOT_PAUSED),
                   ", ".join(s.pause_reasons) if phase is Phase.PAUSED else ""),
        "Completed": (phase in (Phase.COMPLETED, Phase.PROMOTED), str(phase), s.message),
        "SharedBreach": (bool(s.analysis and s.analysis.shared_breach),
                         "SharedBreach" if s.analysis and s.analysis.shared_breach else "NoSharedBreach",
                         (s.analysis.reason or "") if s.analysis and s.analysis.shared_breach else ""),
    }
    old = {c.type: c for c in s.conditions}
    conditions = []
    for ctype, (truth, reason, message) in wanted.items():
        status: Literal["True", "False"] = "True" if truth else "False"
        prev = old.get(ctype)
        since = prev.last_transition_time if prev is not None and prev.status == status else d.now
        conditions.append(Condition(type=ctype, status=status, reason=reason, message=message,
                                    last_transition_time=since, observed_generation=s.observed_generation))
    s.conditions = tuple(conditions)
