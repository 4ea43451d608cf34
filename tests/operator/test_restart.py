"""Restart safety: the operator SIGKILLed at random moments and restarted, again and again, during a
ladder finishes it with no phase skipped or repeated and no dwell shortened (checked from the status
history and the events). ``CHAOS_KILLS`` (default 4) sets how many kills; ``make chaos`` uses 50."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
import time

import pytest

from wallbounce_api import GROUP, PLURAL, VERSION
from wallbounce_local.components import Operator
from wallbounce_local.procs import WaitTimeout, wait_for

from .conftest import Driver

pytestmark = pytest.mark.integration

KILLS = int(os.environ.get("CHAOS_KILLS", "4"))


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.timeout(max(300, KILLS * 40))
def test_sigkill_mid_ladder(driver: Driver, operator: Operator) -> None:
    driver.healthy()
    dwell = max(3, KILLS * 3 // 6 + 1)  # long enough that every kill lands inside the ladder
    ladder = [{"weight": w, "duration": f"{dwell}s", "minRequests": 20} for w in (1, 2, 10, 20, 35, 50)]
    driver.apply("phoenix", phases=ladder)
    rng = random.Random(KILLS)
    kills = 0

    def kill_at_random() -> bool:
        nonlocal kills
        time.sleep(rng.uniform(0.3, 2.5))
        if driver.status("phoenix").get("phase") == "Completed":
            return True
        operator.kill()
        kills += 1
        time.sleep(rng.uniform(0, 1))
        operator.start()
        return kills >= KILLS

    try:
        wait_for(f"{KILLS} kills of the operator", kill_at_random, timeout=dwell * 6 * 4 + 60, every=0)
    except WaitTimeout:
        pass  # the asserts below say how many landed
    status = driver.wait_phase("phoenix", "Completed", timeout=dwell * 6 * 3 + 60)
    assert kills >= min(KILLS, 3)
    promotions = [h for h in status["history"] if h["reason"] in ("StepStarted", "PhasePromoted", "Completed")]
    assert [h["weight"] for h in promotions] == [1, 2, 10, 20, 35, 50, 50]  # none skipped, none repeated
    for before, after in itertools.pairwise(promotions):
        assert (ts(after["time"]) - ts(before["time"])).total_seconds() >= dwell  # dwell never shortened
    reasons = driver.wait_reason("phoenix", "Completed")
    assert reasons.count("PhasePromoted") == 5
    assert reasons.count("Completed") == 1
    driver.wait_weight(50)


def test_events_decided_before_a_crash_are_posted_after_the_restart_once(driver: Driver, operator: Operator) -> None:
    """The state a SIGKILL leaves between the status write and the Event posts (too narrow a window to hit
    on demand with a real kill, so the test writes that state itself): status.pendingEvents holds two events,
    the first already posted (its status clear was lost), the second not. The restarted operator posts the
    second, leaves the first alone (no twin), and empties the outbox."""
    driver.healthy()
    driver.apply("outbox", paused=True)
    rollout = driver.get("outbox")
    driver.wait_phase("outbox", "Paused")
    operator.kill()
    stamp = time.time_ns()
    entries = [{"name": f"outbox.{stamp:x}", "time": "2026-01-01T00:00:00.000Z", "reason": "PhasePromoted",
                "message": "step 1 passed: step 2 (2%)", "type": "Normal"},
               {"name": f"outbox.{stamp + 1:x}", "time": "2026-01-01T00:00:00.000Z", "reason": "Completed",
                "message": "every phase passed", "type": "Normal"}]
    ns = driver.namespace
    driver.core.create_namespaced_event(ns, {
        "metadata": {"name": entries[0]["name"]}, "reason": entries[0]["reason"], "message": entries[0]["message"],
        "type": "Normal", "involvedObject": {"apiVersion": rollout["apiVersion"], "kind": rollout["kind"],
                                             "name": "outbox", "namespace": ns,
                                             "uid": rollout["metadata"]["uid"]}})
    driver.objects.patch_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, "outbox",
                                                         {"status": {"pendingEvents": entries}})
    assert driver.status("outbox")["pendingEvents"] == entries  # the CRD schema keeps the outbox
    operator.start()
    driver.wait_status("outbox", "outbox emptied", lambda s: not s.get("pendingEvents"), timeout=30)
    listed = driver.core.list_namespaced_event(ns, field_selector="involvedObject.name=outbox").items
    by_name = {e.metadata.name: e for e in listed}
    assert {e["name"] for e in entries} <= set(by_name)
    posted = by_name[entries[1]["name"]]
    assert (posted.reason, posted.message, posted.type) == ("Completed", "every phase passed", "Normal")
    assert posted.involved_object.uid == rollout["metadata"]["uid"]
    assert [e.reason for e in listed].count("PhasePromoted") == 1
    assert [e.reason for e in listed].count("Completed") == 1


def test_an_action_consumed_before_a_crash_is_not_applied_again(driver: Driver, operator: Operator) -> None:
    """The state a SIGKILL leaves between the status write that applied an action and the removal of its
    annotation (written by the test: too narrow a window to hit with a real kill): the restarted operator sees the
    annotation again, does not promote a second time, removes it and marks it cleared."""
    driver.healthy()
    driver.apply("once", phases=[{"weight": w, "duration": "1h", "minRequests": 20} for w in (1, 2, 10)])
    driver.wait_status("once", "1 %", lambda s: s.get("weight") == 1)
    operator.kill()
    ns = driver.namespace
    driver.objects.patch_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, "once", {"status": {
        "step": 2, "desiredWeight": 2, "stepStartedAt": None, "lastAction": {
            "action": "promote", "seq": 1, "time": "2026-01-01T00:00:00.000Z", "result": "Applied",
            "message": "step 2 (2%)", "annotationCleared": False}}})
    driver.action("once", "promote")  # the annotation that was consumed and not yet removed
    operator.start()
    status = driver.wait_status("once", "the annotation cleared",
                                lambda s: (s.get("lastAction") or {}).get("annotationCleared"), timeout=30)
    assert (status["step"], status["lastAction"]["seq"]) == (2, 1)  # applied once, not twice
    driver.wait_weight(2)
    assert "wallbounce.dev/action" not in (driver.get("once")["metadata"].get("annotations") or {})
    time.sleep(2)
    assert driver.status("once")["step"] == 2
    driver.action("once", "promote")  # a new request with the same verb is a new action
    driver.wait_weight(10)
    assert driver.status("once")["lastAction"]["seq"] == 2
