"""The ladder: ``decide(spec, status, inputs) → Decision``, a pure function (no I/O, no clock).

Given the rollout's spec, its current status and what was observed this tick (the analysis
observation, the canary Deployment's availability and revision, the route's weight, a requested
action), it returns the complete new status, the canary weight the route must carry, and the
events to emit. Every rule of the rollout lives here:

- a new rollout waits for an available canary, then shifts the first phase's weight;
- Pass after the phase's dwell (from ``stepStartedAt``) promotes one step; Pass on the last step
  completes; NoData/Error/Hold never promote; ``errorLimit`` consecutive NoData/Error pause;
- Fail rolls back: Emergency → weight 0 and RolledBack; Gradual → the first phase's weight, Paused;
- a new canary revision restarts the ladder; a missing route pauses (and resumes when it is back);
- actions (pause, resume, abort, promote, promote-full, retry) and ``spec.paused``;
- a route whose weight differs from ours is re-asserted (WeightDrift).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .analysis.verdict import judge
from .model import (
    HISTORY_LIMIT,
    TERMINAL,
    Action,
    Decision,
    Event,
    Inputs,
    PauseReason,
    Phase,
    RolloutSpec,
    Verdict,
    format_time,
    parse_time,
)


class _Draft:
    """The status being rewritten, with the events and history that go with it."""

    def __init__(self, spec: RolloutSpec, status: Mapping[str, Any], inputs: Inputs) -> None:
        self.spec = spec
        self.inputs = inputs
        self.now = format_time(inputs.now)
        self.st: dict[str, Any] = copy.deepcopy(dict(status))
        self.events: list[Event] = []

    # --- accessors ---
    @property
    def phase(self) -> Phase | None:
        raw = self.st.get("phase")
        return Phase(str(raw)) if raw in Phase._value2member_map_ else None

    @property
    def step(self) -> int:
        return int(self.st.get("step") or 1)

    @property
    def weight(self) -> int:
        return int(self.st.get("weight") or 0)

    def step_weight(self, step: int) -> int:
        return self.spec.phases[step - 1].weight

    # --- changes ---
    def emit(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event(reason, message, "Warning" if warning else "Normal"))

    def go(self, phase: Phase, reason: str, message: str, *, step: int | None = None, weight: int | None = None,
           pause_reason: PauseReason | None = None, restart_dwell: bool = False, warning: bool = False,
           event: bool = True, record: bool = True) -> None:
        before = self.phase
        if step is not None:
            self.st["step"] = step
        if weight is not None:
            self.st["weight"] = weight
        if restart_dwell:
            self.st["stepStartedAt"] = self.now
        self.st["phase"] = str(phase)
        if phase is Phase.PAUSED and pause_reason is not None:
            self.st["pauseReason"] = str(pause_reason)
        elif phase is not Phase.PAUSED:
            self.st.pop("pauseReason", None)
        self.st["message"] = message
        if event:
            self.emit(reason, message, warning)
        if record:
            history = list(self.st.get("history") or [])
            history.append({"time": self.now, "from": str(before) if before else "", "to": str(phase),
                            "step": self.step, "weight": self.weight, "reason": reason, "message": message})
            self.st["history"] = history[-HISTORY_LIMIT:]

    def start_step(self, step: int, reason: str, message: str, *, event: bool = True) -> None:
        """Shift to ``step``'s weight, Progressing, with a fresh dwell."""
        self.st["consecutiveErrors"] = 0
        self.go(Phase.PROGRESSING, reason, message, step=step, weight=self.step_weight(step), restart_dwell=True,
                event=event)


def decide(spec: RolloutSpec, status: Mapping[str, Any], inputs: Inputs) -> Decision:
    d = _Draft(spec, status, inputs)
    st = d.st
    steps = len(spec.phases)
    st["steps"] = steps
    if inputs.generation is not None:
        st["observedGeneration"] = inputs.generation
    if d.step > steps:
        st["step"] = steps
    previous_weight = d.weight

    if d.phase is None:
        _begin(d)

    action_handled = False
    if inputs.action:
        _apply_action(d, inputs.action)
        action_handled = True

    _follow_revision(d)
    _follow_spec_pause(d)
    _follow_route(d, previous_weight)
    _wait_for_canary(d)
    verdict = _analyse(d) if inputs.observation is not None else None

    _set_conditions(d)
    return Decision(status=st, weight=d.weight, events=d.events, verdict=verdict, action_handled=action_handled)


# ----- the rules, in the order decide() applies them -------------------------------------------


def _begin(d: _Draft) -> None:
    d.st.update(step=1, weight=0, consecutiveErrors=0)
    if d.inputs.canary_revision:
        d.st["canaryRevision"] = d.inputs.canary_revision
    if d.inputs.canary_available:
        d.start_step(1, "Started", f"rollout started: {d.step_weight(1)}% of traffic to the canary")
    else:
        d.go(Phase.HOLDING, "Holding", "waiting for the canary Deployment to report available replicas",
             weight=0, restart_dwell=True)


def _apply_action(d: _Draft, raw: Action | str) -> None:
    try:
        action = Action(raw)
    except ValueError:
        d.emit("ActionIgnored", f"unknown action {raw!r} (pause, resume, abort, promote, promote-full, retry)",
               warning=True)
        return
    phase = d.phase
    terminal = phase in TERMINAL
    steps = len(d.spec.phases)
    if action is Action.ABORT:
        if terminal:
            d.emit("ActionIgnored", f"abort ignored: the rollout is already {phase}")
        else:
            d.go(Phase.ABORTED, "Aborted", "aborted by request: all traffic back to stable", weight=0,
                 warning=True)
    elif action is Action.RETRY:
        if phase in (Phase.ROLLED_BACK, Phase.ABORTED):
            if d.inputs.canary_available:
                d.start_step(1, "Retried", f"retry: ladder restarted at step 1 ({d.step_weight(1)}%)")
            else:
                d.go(Phase.HOLDING, "Retried", "retry: waiting for the canary Deployment to be available",
                     step=1, weight=0, restart_dwell=True)
        else:
            d.emit("ActionIgnored", f"retry ignored: only a RolledBack or Aborted rollout can be retried ({phase})")
    elif terminal:
        d.emit("ActionIgnored", f"{action} ignored: the rollout is {phase}")
    elif action is Action.PAUSE:
        if phase is Phase.PAUSED:
            d.emit("ActionIgnored", "pause ignored: already paused")
        else:
            d.go(Phase.PAUSED, "Paused", "paused by request", pause_reason=PauseReason.MANUAL)
    elif action is Action.RESUME:
        if phase is not Phase.PAUSED:
            d.emit("ActionIgnored", f"resume ignored: the rollout is {phase}, not Paused")
        elif d.spec.paused:
            d.emit("ActionIgnored", "resume ignored: spec.paused is true (set it to false in the manifest)",
                   warning=True)
        else:
            d.st["consecutiveErrors"] = 0
            d.go(Phase.PROGRESSING, "Resumed", f"resumed at step {d.step} ({d.weight}%)", restart_dwell=True)
    elif action in (Action.PROMOTE, Action.PROMOTE_FULL):
        if d.spec.paused:
            d.emit("ActionIgnored", f"{action} ignored: spec.paused is true", warning=True)
        elif not d.inputs.canary_available:
            d.emit("ActionIgnored", f"{action} refused: the canary Deployment has no available replicas",
                   warning=True)
        elif action is Action.PROMOTE_FULL or d.step >= steps:
            last = d.step_weight(steps)
            d.st["consecutiveErrors"] = 0
            d.go(Phase.COMPLETED, "Completed", f"promoted by request to the last phase ({last}%): completed",
                 step=steps, weight=last, restart_dwell=True)
        else:
            nxt = d.step + 1
            d.start_step(nxt, "PhasePromoted", f"promoted by request to step {nxt} ({d.step_weight(nxt)}%)")


def _follow_revision(d: _Draft) -> None:
    new = d.inputs.canary_revision
    old = d.st.get("canaryRevision")
    if not new:
        return
    if not old:
        d.st["canaryRevision"] = new
        return
    if new == old:
        return
    d.st["canaryRevision"] = new
    d.emit("RevisionChanged", f"canary revision changed ({old} → {new}): the ladder restarts at step 1")
    if d.inputs.canary_available:
        d.start_step(1, "RevisionChanged", f"new canary revision: step 1 ({d.step_weight(1)}%)", event=False)
    else:
        d.st["consecutiveErrors"] = 0
        d.go(Phase.HOLDING, "Holding", "new canary revision: waiting for it to report available replicas",
             step=1, weight=0, restart_dwell=True)


def _follow_spec_pause(d: _Draft) -> None:
    phase = d.phase
    if phase in TERMINAL:
        return
    if d.spec.paused and phase is not Phase.PAUSED:
        d.go(Phase.PAUSED, "Paused", "paused by spec.paused", pause_reason=PauseReason.SPEC)
    elif (not d.spec.paused and phase is Phase.PAUSED
          and d.st.get("pauseReason") == PauseReason.SPEC):
        d.go(Phase.PROGRESSING, "Resumed", f"spec.paused cleared: resumed at step {d.step} ({d.weight}%)",
             restart_dwell=True)


def _follow_route(d: _Draft, previous_weight: int) -> None:
    route = d.inputs.route
    if route is None:
        return
    phase = d.phase
    if route.weight is None:
        if phase not in TERMINAL and phase is not Phase.PAUSED:
            d.go(Phase.PAUSED, "Paused", f"route unusable: {route.problem}; paused until it is back",
                 pause_reason=PauseReason.ROUTE_MISSING, warning=True)
        return
    if phase is Phase.PAUSED and d.st.get("pauseReason") == PauseReason.ROUTE_MISSING:
        d.go(Phase.PROGRESSING, "Resumed", f"route is back: resumed at step {d.step} ({d.weight}%)",
             restart_dwell=True)
    if route.weight != previous_weight:
        d.emit("WeightDrift", f"route carried {route.weight}% to the canary instead of {previous_weight}%: "
                              f"re-asserting {d.weight}%", warning=True)


def _wait_for_canary(d: _Draft) -> None:
    """A rollout holding at weight 0 for its canary starts the step once the canary is available."""
    if d.phase is Phase.HOLDING and d.weight == 0 and d.inputs.canary_available:
        d.start_step(d.step, "Started", f"canary available: step {d.step} ({d.step_weight(d.step)}%) to the canary")


def _analyse(d: _Draft) -> Verdict | None:
    obs = d.inputs.observation
    assert obs is not None
    if d.phase not in (Phase.PROGRESSING, Phase.HOLDING) or d.weight == 0:
        return None
    spec = d.spec
    phase_spec = spec.phases[d.step - 1]
    j = judge(phase_spec, obs, spec.confidence_level)
    analysis: dict[str, Any] = {"time": d.now, "verdict": str(j.verdict), "reason": j.reason}
    for key, value in (("requests", obs.requests), ("errorRate", j.error_rate), ("errorRateLower", j.lower),
                       ("errorRateUpper", j.upper), ("latencyP95", obs.latency_p95),
                       ("consensusConfidence", obs.confidence), ("costPerRequest", obs.cost_per_request)):
        if value is not None:
            analysis[key] = round(float(value), 6)
    d.st["analysis"] = analysis
    d.st["lastAnalysisAt"] = d.now

    if j.verdict is Verdict.FAIL:
        _rollback(d, j.reason)
    elif j.verdict is Verdict.PASS:
        d.st["consecutiveErrors"] = 0
        started = parse_time(d.st.get("stepStartedAt")) or d.inputs.now
        dwelt = (d.inputs.now - started).total_seconds()
        if dwelt < phase_spec.duration:
            left = phase_spec.duration - dwelt
            _hold_or_progress(d, Phase.PROGRESSING, f"step {d.step} ({d.weight}%) passing; "
                                                    f"promotion after the dwell, in {left:.0f}s")
        elif not d.inputs.canary_available:
            _hold_or_progress(d, Phase.HOLDING, "analysis passes but the canary Deployment has no available "
                                                "replicas: not promoting")
        elif d.step >= len(spec.phases):
            d.go(Phase.COMPLETED, "Completed", f"every phase passed: completed at {d.weight}%")
        else:
            nxt = d.step + 1
            d.start_step(nxt, "PhasePromoted", f"step {d.step} passed ({j.reason}): step {nxt} "
                                               f"({d.step_weight(nxt)}%)")
    elif j.verdict is Verdict.HOLD:
        d.st["consecutiveErrors"] = 0
        _hold_or_progress(d, Phase.HOLDING, f"holding at step {d.step} ({d.weight}%): {j.reason}")
    else:
        errors = int(d.st.get("consecutiveErrors") or 0) + 1
        d.st["consecutiveErrors"] = errors
        if errors >= max(spec.error_limit, 1) or spec.error_limit == 0:
            d.go(Phase.PAUSED, "Paused", f"{errors} consecutive {j.verdict} verdicts ({j.reason}): paused for a "
                                         f"human (resume to continue)", pause_reason=PauseReason.ANALYSIS_ERRORS,
                 warning=True)
        else:
            if errors == 1:
                d.emit("AnalysisError", f"{j.verdict}: {j.reason}", warning=True)
            _hold_or_progress(d, Phase.HOLDING, f"holding at step {d.step} ({d.weight}%): {j.verdict} "
                                                f"{errors}/{spec.error_limit}: {j.reason}")
    return j.verdict


def _hold_or_progress(d: _Draft, phase: Phase, message: str) -> None:
    """Progressing ↔ Holding flips: the message changes; an event only when entering Holding; no history."""
    entering_hold = phase is Phase.HOLDING and d.phase is not Phase.HOLDING
    d.go(phase, "Holding" if phase is Phase.HOLDING else "Progressing", message, event=entering_hold,
         record=False)


def _rollback(d: _Draft, reason: str) -> None:
    d.st["consecutiveErrors"] = 0
    if d.spec.rollback_strategy == "Gradual":
        first = d.step_weight(1)
        d.go(Phase.PAUSED, "RolledBack", f"rolled back (Gradual) to step 1 ({first}%) and paused: {reason}",
             step=1, weight=first, pause_reason=PauseReason.ROLLED_BACK, restart_dwell=True, warning=True)
    else:
        d.go(Phase.ROLLED_BACK, "RolledBack", f"rolled back (Emergency): canary weight 0: {reason}", weight=0,
             warning=True)


def _set_conditions(d: _Draft) -> None:
    phase = d.phase
    pause = d.st.get("pauseReason", "")
    wanted = {
        "Ready": (phase in (Phase.PROGRESSING, Phase.HOLDING, Phase.COMPLETED), str(phase)),
        "Progressing": (phase in (Phase.PROGRESSING, Phase.HOLDING), str(phase)),
        "Paused": (phase is Phase.PAUSED, pause or "NotPaused"),
        "Completed": (phase is Phase.COMPLETED, "Completed" if phase is Phase.COMPLETED else "NotCompleted"),
        "RolledBack": (phase is Phase.ROLLED_BACK or pause == PauseReason.ROLLED_BACK,
                       "RolledBack" if phase is Phase.ROLLED_BACK or pause == PauseReason.ROLLED_BACK
                       else "NotRolledBack"),
    }
    old = {c.get("type"): c for c in d.st.get("conditions") or []}
    conditions = []
    for ctype, (truth, reason) in wanted.items():
        status = "True" if truth else "False"
        prev = old.get(ctype)
        since = prev.get("lastTransitionTime") if prev and prev.get("status") == status else d.now
        conditions.append({"type": ctype, "status": status, "reason": reason,
                           "message": d.st.get("message", ""), "lastTransitionTime": since})
    d.st["conditions"] = conditions

