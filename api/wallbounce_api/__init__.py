"""``wallbounce-api``: the names of the WallBounceRollout API and of the service's metrics contract, shared
by the operator, the service, the kubectl plugin and the development stack. No dependencies, no behaviour.

    from wallbounce_api import GROUP, VERSION, PLURAL, Phase
    from wallbounce_api import metrics
"""

from . import metrics
from .resource import (
    ACTION_ANNOTATION,
    API_VERSION,
    CRD_NAME,
    FIELD_MANAGER,
    GROUP,
    KIND,
    PLURAL,
    ROLLOUT_ANNOTATION,
    SHORT_NAME,
    SINGULAR,
    VERSION,
    Action,
    ConditionType,
    EventReason,
    PauseReason,
    Phase,
    Verdict,
)

__all__ = [
    "ACTION_ANNOTATION",
    "API_VERSION",
    "CRD_NAME",
    "FIELD_MANAGER",
    "GROUP",
    "KIND",
    "PLURAL",
    "ROLLOUT_ANNOTATION",
    "SHORT_NAME",
    "SINGULAR",
    "VERSION",
    "Action",
    "ConditionType",
    "EventReason",
    "PauseReason",
    "Phase",
    "Verdict",
    "metrics",
]
