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


class Phase(StrEnum):
    """``status.phase``."""

    PROGRESSING = "Progressing"
    HOLDING = "Holding"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"


class Verdict(StrEnum):
    """``status.analysis.verdict``: what one analysis of the canary concluded."""

    PASS = "Pass"
    HOLD = "Hold"
    FAIL = "Fail"
    NO_DATA = "NoData"
    ERROR = "Error"


class PauseReason(StrEnum):
    """``status.pauseReason`` while the phase is Paused."""

    SPEC = "Spec"
    MANUAL = "Manual"
    ANALYSIS_ERRORS = "AnalysisErrors"
    ROUTE_MISSING = "RouteMissing"
    ROLLED_BACK = "RolledBack"


class Action(StrEnum):
    """Values of the action annotation."""

    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    PROMOTE = "promote"
    PROMOTE_FULL = "promote-full"
    RETRY = "retry"


class EventReason(StrEnum):
    """Reasons of the Events the operator posts (and of ``status.history`` entries)."""

    STARTED = "Started"
    PHASE_PROMOTED = "PhasePromoted"
    PROGRESSING = "Progressing"
    HOLDING = "Holding"
    PAUSED = "Paused"
    RESUMED = "Resumed"
    RETRIED = "Retried"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"
    COMPLETED = "Completed"
    REVISION_CHANGED = "RevisionChanged"
    WEIGHT_DRIFT = "WeightDrift"
    ANALYSIS_ERROR = "AnalysisError"
    ACTION_IGNORED = "ActionIgnored"


class ConditionType(StrEnum):
    """``status.conditions[].type`` (``kubectl wait --for=condition=Completed``)."""

    READY = "Ready"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    ROLLED_BACK = "RolledBack"
