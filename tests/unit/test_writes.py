"""When a status is written: a steady look writes nothing, a visible change or the heartbeat does."""

from __future__ import annotations

import datetime as dt

from wallbounce_operator.model import AnalysisStatus, Counts, Evidence, PendingEvent, Phase, RolloutStatus
from wallbounce_operator.writes import EVENTS_LINGER, HEARTBEAT, cause, due, heartbeat_of, visible

T = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)


def status(**over: object) -> RolloutStatus:
    base = RolloutStatus(phase=Phase.PROGRESSING, step=2, weight=2, desired_weight=2, message="step 2 (2%) passing; "
                         "promotion after the dwell, in 300s",
                         analysis=AnalysisStatus(time=T, verdict="Pass", reason="passing so far", requests=3170.7,
                                                 error_rate=0.00012, latency_p95=0.97, consensus_confidence=0.901),
                         evidence=Evidence(since=T, until=T, canary=Counts(served=100)), last_analysis_at=T)
    return base.model_copy(update=over)


def test_a_steady_look_writes_nothing() -> None:
    written = status().to_dict()
    later = status(message="step 2 (2%) passing; promotion after the dwell, in 270s", last_analysis_at=T
                   + dt.timedelta(seconds=30), evidence=Evidence(since=T, until=T, canary=Counts(served=900)),
                   analysis=AnalysisStatus(time=T + dt.timedelta(seconds=30), verdict="Pass", reason="passing so far",
                                           requests=3168.2, error_rate=0.00031, latency_p95=0.99,
                                           consensus_confidence=0.898))
    assert not due(written, later, last_write=1000.0, now=1030.0)
    assert visible(written) == visible(later.to_dict())


def test_a_visible_change_or_the_heartbeat_writes() -> None:
    written = status().to_dict()
    assert due(written, status(phase=Phase.HOLDING), 1000.0, 1030.0)
    assert due(written, status(weight=10, desired_weight=10), 1000.0, 1030.0)
    shown = status(analysis=AnalysisStatus(time=T, verdict="Pass", reason="passing so far", requests=3170.7,
                                           error_rate=0.0021, latency_p95=0.97, consensus_confidence=0.901))
    assert due(written, shown, 1000.0, 1030.0)  # the ERROR-RATE column changes after rounding
    assert due(written, status(message="holding at step 2 (2%): 5 canary requests, 20 needed"), 1000.0, 1030.0)
    assert due(written, status(), 1000.0, 1000.0 + 720.0)  # the heartbeat
    assert due(None, status(), 1000.0, 1000.0)  # never written by this process


def test_a_write_says_why() -> None:
    written = status().to_dict()
    assert cause(written, status(), 1000.0, 1030.0) is None
    assert cause(None, status(), 1000.0, 1030.0) == "first"
    assert cause(written, status(), 1000.0, 1000.0 + 720.0) == "heartbeat"
    assert cause(written, status(phase=Phase.HOLDING), 1000.0, 1030.0) == "phase"
    assert cause(written, status(pause_reasons=("Manual",)), 1000.0, 1030.0) == "pauseReasons"


def test_events_are_written_before_they_are_posted_and_dropped_by_the_next_write() -> None:
    started = PendingEvent(name="r.1", reason="StepStarted", time=T)
    promoted = PendingEvent(name="r.2", reason="Promoted", time=T)
    assert cause(status().to_dict(), status(pending_events=(started,)), 1000.0, 1001.0) == "pendingEvents"
    outbox = status(pending_events=(started,)).to_dict()
    assert cause(outbox, status(pending_events=(started,)), 1000.0, 1001.0) is None  # not posted yet: kept
    assert cause(outbox, status(pending_events=(started, promoted)), 1000.0, 1001.0) == "pendingEvents"
    # posted: no write of its own at once; the next write for any cause drops it, or one of its own after a while
    assert cause(outbox, status(), 1000.0, 1001.0) is None
    assert cause(outbox, status(weight=10, desired_weight=10), 1000.0, 1001.0) == "weight"
    assert cause(outbox, status(), 1000.0, 1000.0 + EVENTS_LINGER) == "events"
    assert not status().to_dict().get("pendingEvents")  # so that write empties the outbox


def test_heartbeats_of_rollouts_started_together_are_spread() -> None:
    beats = [heartbeat_of("team", f"r{i}") for i in range(1000)]
    assert all(HEARTBEAT <= b < 1.25 * HEARTBEAT for b in beats)
    assert heartbeat_of("team", "r1") == heartbeat_of("team", "r1")  # the same in every replica, after a restart
    buckets = {int((b - HEARTBEAT) // 30) for b in beats}  # 30 s ticks over the 180 s spread
    assert len(buckets) == 6
