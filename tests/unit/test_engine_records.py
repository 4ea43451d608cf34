"""What the engine keeps of a rollout: everything it reads, nothing it never reads (memory at thousands)."""

from __future__ import annotations

import datetime as dt
import time

from wallbounce_operator import writes
from wallbounce_operator.engine import LAST_APPLIED, Record, _trimmed
from wallbounce_operator.model import ACTION_ANNOTATION, Phase, RolloutStatus
from wallbounce_operator.writes import HEARTBEAT


def test_a_rollout_is_kept_without_managed_fields_or_the_last_applied_copy() -> None:
    body = {"apiVersion": "wallbounce.dev/v1alpha1", "kind": "WallBounceRollout",
            "metadata": {"name": "r", "namespace": "n", "resourceVersion": "7", "generation": 2,
                         "annotations": {LAST_APPLIED: "{...}" * 500, ACTION_ANNOTATION: "abort"},
                         "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"phases": [{"weight": 1}]}, "status": {"phase": "Progressing"}}
    kept = _trimmed(body)
    assert kept["metadata"] == {"name": "r", "namespace": "n", "resourceVersion": "7", "generation": 2,
                                "annotations": {ACTION_ANNOTATION: "abort"}}
    assert kept["spec"] == body["spec"] and kept["status"] == body["status"]
    assert "managedFields" in body["metadata"]  # the event's own object is not changed
    plain = {"metadata": {"name": "r", "annotations": {ACTION_ANNOTATION: "pause"}}}
    assert _trimmed(plain) is plain


def test_a_restart_or_takeover_does_not_rewrite_every_rollout_at_once() -> None:
    """The heartbeat runs on from the stored status's last look: a rollout written a minute ago by the previous
    process (or replica) is not rewritten by this one until something visible changes or its heartbeat is due."""
    def record(seconds_ago: float) -> Record:
        at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)
        stored = RolloutStatus(phase=Phase.PROGRESSING, step=1, weight=1, desired_weight=1, last_analysis_at=at)
        return Record(("n", "r"), {"metadata": {"name": "r", "namespace": "n"}, "status": stored.to_dict()})

    recent, old = record(60), record(HEARTBEAT + 60)
    for r in (recent, old):
        base = r.base()
        assert r.written == r.status and base.phase is Phase.PROGRESSING
    assert writes.cause(recent.written, recent.base(), recent.last_write, time.time(), HEARTBEAT) is None
    assert writes.cause(old.written, old.base(), old.last_write, time.time(), HEARTBEAT) == "heartbeat"
