"""What the engine keeps of a rollout: everything it reads, nothing it never reads (memory at thousands)."""

from __future__ import annotations

import datetime as dt
import time

from prometheus_client import CollectorRegistry, generate_latest

from wallbounce_operator import metrics, writes
from wallbounce_operator.engine import LAST_APPLIED, Record, _trimmed
from wallbounce_operator.model import ACTION_ANNOTATION, HistoryEntry, PauseReason, Phase, RolloutSpec, RolloutStatus
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


SPEC = {"stable": {"deployment": "s", "service": "s"}, "canary": {"deployment": "c", "service": "c"},
        "trafficRouting": {"gatewayAPI": {"httpRoute": "r"}}}


def test_rollouts_with_the_same_ladder_share_one_parsed_copy_of_it() -> None:
    ladder = [{"weight": 1, "duration": "5m"}, {"weight": 10, "rollback": {"errorRate": 0.01}}]
    a = RolloutSpec.from_dict({**SPEC, "phases": ladder})
    b = RolloutSpec.from_dict({**SPEC, "canary": {"deployment": "d", "service": "d"}, "phases": ladder})
    assert a.phases is b.phases and a.canary != b.canary
    other = RolloutSpec.from_dict({**SPEC, "phases": [*ladder[:1], {"weight": 10, "rollback": {"errorRate": 0.02}}]})
    assert other.phases is not a.phases and other.phases[1].rollback_error_rate == 0.02
    assert a.phases[1].rollback_error_rate == 0.01 and a.phases[0].rollback_error_rate == 0.008  # tier default


def test_per_rollout_series_are_read_from_the_rollouts_at_scrape_time_and_go_with_them() -> None:
    """Weight, step, phase and pause reasons come from what the engine holds (no child metric per rollout kept in
    memory); the verdict and transition counters count, and a rollout forgotten takes its series with it."""
    status = RolloutStatus(phase=Phase.PAUSED, step=2, weight=2, desired_weight=2,
                           pause_reason=PauseReason.MANUAL, pause_reasons=(PauseReason.MANUAL,))
    held = Record(("n", "paused"), {"metadata": {"name": "paused", "namespace": "n"}, "status": status.to_dict()},
                  spec=RolloutSpec.from_dict(SPEC))
    registry = CollectorRegistry()
    registry.register(metrics.RolloutCollector(lambda: [held]))
    for _ in range(3):
        metrics.count("wallbounce_operator_verdicts", "n", "paused", "Pass")
    metrics.count("wallbounce_operator_transitions", "n", "paused", "Paused")
    text = generate_latest(registry).decode()
    assert 'wallbounce_operator_rollout_weight{namespace="n",rollout="paused"} 2.0' in text
    assert 'wallbounce_operator_rollout_step{namespace="n",rollout="paused"} 2.0' in text
    assert 'wallbounce_operator_rollout_phase{namespace="n",phase="Paused",rollout="paused"} 1.0' in text
    assert 'wallbounce_operator_rollout_phase{namespace="n",phase="Progressing",rollout="paused"} 0.0' in text
    assert 'wallbounce_operator_rollout_paused{namespace="n",reason="Manual",rollout="paused"} 1.0' in text
    assert 'wallbounce_operator_rollout_paused{namespace="n",reason="Spec",rollout="paused"} 0.0' in text
    assert 'wallbounce_operator_verdicts_total{namespace="n",rollout="paused",verdict="Pass"} 3.0' in text
    assert 'wallbounce_operator_transitions_total{namespace="n",reason="Paused",rollout="paused"} 1.0' in text
    metrics.forget("n", "paused")
    text = generate_latest(CollectorRegistry()).decode() + generate_latest(registry).decode()
    assert 'rollout="paused",verdict=' not in text and 'reason="Paused",rollout="paused"' not in text


def test_the_time_in_a_phase_is_observed_once_when_the_rollout_leaves_it() -> None:
    t0 = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)

    def entry(seconds: int, frm: str, to: str) -> HistoryEntry:
        return HistoryEntry(time=t0 + dt.timedelta(seconds=seconds), from_=frm, to=to, step=1, weight=1, reason="x")

    def observed() -> tuple[float, float]:
        labels = {"phase": "Holding"}
        return (metrics.REGISTRY.get_sample_value("wallbounce_rollout_phase_duration_seconds_count", labels) or 0.0,
                metrics.REGISTRY.get_sample_value("wallbounce_rollout_phase_duration_seconds_sum", labels) or 0.0)

    before = observed()
    found = (entry(0, "", "Progressing"), entry(10, "Progressing", "Holding"))
    metrics.observe_phase_durations("n", "durations", found)  # found at start-up: taken as seen
    metrics.observe_phase_durations("n", "durations", found)
    assert observed() == before
    left = (*found, entry(70, "Holding", "Progressing"))
    metrics.observe_phase_durations("n", "durations", left)
    metrics.observe_phase_durations("n", "durations", left)  # the same history again: nothing new
    assert observed() == (before[0] + 1, before[1] + 60)
    metrics.forget("n", "durations")
