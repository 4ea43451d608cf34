"""The WallBounceRollout resource's names: where it lives in the Kubernetes API (group, version, plural,
kind, short name), the annotations the operator reads, and the words its status speaks (phases, verdicts,
pause reasons, actions, event reasons, condition types). ``crds/wallbouncerollouts.yaml`` is the schema;
these are the names every distribution shares, so nothing else spells them.
"""

from __future__ import annotations

from enum import StrEnum

GROUP = "wallbounce.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "WallBounceRollout"
PLURAL = "wallbouncerollouts"
SINGULAR = "wallbouncerollout"
SHORT_NAME = "wbr"
CRD_NAME = f"{PLURAL}.{GROUP}"

#: ``kubectl wallbounce pause|resume|…`` writes this annotation; the operator performs it once and removes it.
ACTION_ANNOTATION = f"{GROUP}/action"
#: A route carrying this annotation (value: the rollout's name) is one the operator may change.
ROLLOUT_ANNOTATION = f"{GROUP}/rollout"


#: The field manager of the operator's writes (server-side apply of stable's pod template, route updates).
FIELD_MANAGER = "wallbounce-operator"


class Phase(StrEnum):
    """``status.phase`` (the PHASE column)."""

    PROGRESSING = "Progressing"  # on the ladder, judged every interval, promotes when the evidence allows
    HOLDING = "Holding"  # on the ladder, the evidence does not allow promotion (yet)
    PAUSED = "Paused"  # on the ladder, promotion stopped (spec, a human, analysis errors, the route); guard on
    ROLLING_BACK = "RollingBack"  # Gradual: stepping down one rung per interval while the breach lasts
    COMPLETED = "Completed"  # every step passed; the canary keeps the last step's weight
    PROMOTING = "Promoting"  # stable is taking the canary's pod template; traffic moves to stable when it is ready
    PROMOTED = "Promoted"  # stable runs the canary's template and carries all traffic
    ROLLED_BACK = "RolledBack"  # canary weight 0 after a breach or a dead canary
    ABORTED = "Aborted"  # canary weight 0 by request


class Verdict(StrEnum):
    """``status.analysis.verdict``: what one analysis of the canary concluded."""

    PASS = "Pass"
    HOLD = "Hold"
    FAIL = "Fail"
    NO_DATA = "NoData"
    ERROR = "Error"


class PauseReason(StrEnum):
    """``status.pauseReasons``: why promotion is stopped."""

    SPEC = "Spec"  # spec.paused: true
    MANUAL = "Manual"  # a pause action (cleared by resume or promote)
    ANALYSIS_ERRORS = "AnalysisErrors"  # errorLimit consecutive NoData/Error verdicts (cleared by resume)
    ROLLED_BACK = "RolledBack"  # a Gradual rollback stopped on the way down (cleared by resume)
    ROUTE_MISSING = "RouteMissing"  # the route cannot be read (clears itself when it is back)
    ROUTE_NOT_OWNED = "RouteNotOwned"  # the route does not carry wallbounce.dev/rollout: <this rollout>
    ROUTE_INVALID = "RouteInvalid"  # the route's rules are not exactly the stable and canary backends


class Action(StrEnum):
    """Values of the action annotation."""

    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    PROMOTE = "promote"
    PROMOTE_FULL = "promote-full"
    RETRY = "retry"


class EventReason(StrEnum):
    """Every Event reason and condition reason the operator writes (and of ``status.history`` entries)."""

    STARTED = "Started"
    WAITING_FOR_CANARY = "WaitingForCanary"
    STEP_STARTED = "StepStarted"
    PHASE_PROMOTED = "PhasePromoted"
    PROGRESSING = "Progressing"
    HOLDING = "Holding"
    PAUSED = "Paused"
    RESUMED = "Resumed"
    ABORTED = "Aborted"
    COMPLETED = "Completed"
    PROMOTING = "Promoting"
    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ROLLING_BACK = "RollingBack"
    RETRIED = "Retried"
    REVISION_CHANGED = "RevisionChanged"
    LADDER_CHANGED = "LadderChanged"
    WEIGHT_DRIFT = "WeightDrift"
    ANALYSIS_ERROR = "AnalysisError"
    ACTION_APPLIED = "ActionApplied"
    ACTION_IGNORED = "ActionIgnored"
    ROUTE_WRITE_FAILED = "RouteWriteFailed"
    ROUTE_RECOVERED = "RouteRecovered"
    ROUTE_MISSING = "RouteMissing"
    ROUTE_NOT_OWNED = "RouteNotOwned"
    ROUTE_INVALID = "RouteInvalid"
    CANARY_UNAVAILABLE = "CanaryUnavailable"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    STABLE_TEMPLATE_APPLIED = "StableTemplateApplied"
    ANALYSIS_SOURCE_REFUSED = "AnalysisSourceRefused"
    SHARED_BREACH = "SharedBreach"
    # condition-only reasons
    NOT_PAUSED = "NotPaused"
    NOT_STALLED = "NotStalled"


class ConditionType(StrEnum):
    """``status.conditions[].type``: kstatus' Ready, Reconciling and Stalled, and Paused and Completed
    (``kubectl wait --for=condition=Ready``)."""

    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    SHARED_BREACH = "SharedBreach"  # canary and stable breach together: held, the canary not blamed
