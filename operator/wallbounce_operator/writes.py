"""When the operator writes a rollout's status: only when something a user reads changes, and as a heartbeat.

A steady analysis look changes only figures that move every look — when it was taken, the step's growing evidence,
the numbers inside a message — and those are kept in memory between writes. A status is written when anything else
changes: the phase, step, weights, verdict, pause reasons, conditions, an Event to post, the kind of message, or a
figure shown by ``kubectl get wbr`` after rounding (error rate to 0.1 %, p95 to 0.1 s, confidence to 0.01); and at
least once per heartbeat, so users see the rollout is watched and a restarted operator finds recent evidence. The
window's request count, the error rate's bounds and the cost per request are refreshed with those writes.

``pendingEvents`` is the Events' outbox: an Event decided is written there before it is posted (a cause), and once
posted it is dropped from the status by the next write, whatever its cause (after a step, the route's confirmation
follows within seconds), or after ``EVENTS_LINGER`` by a write of its own. An operator restarted meanwhile posts it
again under its fixed name, which the API server refuses as a twin.
(docs/operator-contract.md, "When the status is written".)
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .model import RolloutStatus

HEARTBEAT = 720.0  # seconds: with a 30 s interval, under 5 % of the rollouts write per steady look
EVENTS_LINGER = 10.0  # seconds posted Events stay in status.pendingEvents waiting for a write that drops them
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?")
_SHOWN = {"errorRate": 3, "latencyP95": 1, "consensusConfidence": 2}  # kubectl get wbr's columns
_UNSHOWN = ("requests", "errorRateLower", "errorRateUpper", "costPerRequest")  # refreshed with the heartbeat


def _words(text: Any) -> Any:
    return _NUMBER.sub("#", text) if isinstance(text, str) else text


def visible(status: dict[str, Any]) -> dict[str, Any]:
    """What a user reads of a status (as stored): without the fields that move every look, with the numbers in its
    messages blanked and the shown figures rounded."""
    out = {k: v for k, v in status.items() if k not in ("lastAnalysisAt", "evidence", "pendingEvents")}
    out["message"] = _words(out.get("message"))
    analysis = dict(out.get("analysis") or {})
    if analysis:
        analysis.pop("time", None)
        analysis["reason"] = _words(analysis.get("reason"))
        for key in _UNSHOWN:
            analysis.pop(key, None)
        for key, digits in _SHOWN.items():
            if key in analysis:
                analysis[key] = round(float(analysis[key]), digits)
        out["analysis"] = analysis
    out["conditions"] = [{**c, "message": _words(c.get("message"))} for c in out.get("conditions") or []]
    return out


def heartbeat_of(namespace: str, name: str, heartbeat: float = HEARTBEAT) -> float:
    """A rollout's own heartbeat, spread over [heartbeat, 1.25 × heartbeat] by a stable hash of its name, so that
    rollouts started together (a restart, a bulk apply) do not all write in the same tick twelve minutes later."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return heartbeat * (1.0 + 0.25 * int.from_bytes(digest[:4], "big") / 2**32)


def cause(written: dict[str, Any] | None, new: RolloutStatus, last_write: float, now: float,
          heartbeat: float = HEARTBEAT, linger: float = EVENTS_LINGER) -> str | None:
    """Why ``new`` needs writing, given the status ``written`` last (None: never written by this process): "first",
    "heartbeat", the first status field (in its order) whose visible value changed, "pendingEvents" for Events not
    yet in the outbox, "events" for posted ones left there ``linger`` seconds; None when it need not be."""
    if written is None:
        return "first"
    if now - last_write >= heartbeat:
        return "heartbeat"
    shown, before = visible(new.to_dict()), visible(written)
    changed = next((key for key in (*shown, *before) if shown.get(key) != before.get(key)), None)
    if changed is not None:
        return changed
    outbox = {entry.get("name") for entry in written.get("pendingEvents") or []}
    if any(entry.name not in outbox for entry in new.pending_events):
        return "pendingEvents"
    if outbox and not new.pending_events and now - last_write >= linger:
        return "events"
    return None


def due(written: dict[str, Any] | None, new: RolloutStatus, last_write: float, now: float,
        heartbeat: float = HEARTBEAT) -> bool:
    """Does ``new`` need writing, given the status ``written`` last (None: never written by this process)?"""
    return cause(written, new, last_write, now, heartbeat) is not None
