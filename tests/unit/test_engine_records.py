"""What the engine keeps of a rollout: everything it reads, nothing it never reads (memory at thousands)."""

from __future__ import annotations

from wallbounce_operator.engine import LAST_APPLIED, _trimmed
from wallbounce_operator.model import ACTION_ANNOTATION


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
