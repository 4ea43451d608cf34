"""Text of the plugin: the status page of a rollout, the list table, ages, and ``-o yaml`` (a small block-style
YAML writer for JSON data, so the plugin needs no YAML library: strings are written as JSON strings, which YAML
reads as they are)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

# the operator's shard Leases (wallbounce_operator.shards): name prefix and labels
SHARD_PREFIX = "wallbounce-shard-"
SHARD_LABEL = "wallbounce.dev/shard"
SHARDS_LABEL = "wallbounce.dev/shards"


def parse_time(ts: str | None) -> dt.datetime | None:
    if not ts:
        return None
    try:
        return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(ts: str | None) -> str:
    when = parse_time(ts)
    if when is None:
        return "-"
    secs = int((dt.datetime.now(dt.UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def fmt(value: Any, pattern: str = "{}") -> str:
    return "-" if value is None else pattern.format(value)


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The operator's shard of a rollout (the same stable hash as ``wallbounce_operator.shards.shard_of``)."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % max(shards, 1)


def held(lease: dict[str, Any], now: dt.datetime) -> bool:
    """A Lease renewed within its duration (an expired one is left by a replica gone, or another install's)."""
    spec = lease.get("spec") or {}
    renewed = parse_time(spec.get("renewTime"))
    return bool(spec.get("holderIdentity")) and renewed is not None and (
        now - renewed).total_seconds() < float(spec.get("leaseDurationSeconds") or 15)


def shard_holders(leases: list[dict[str, Any]]) -> tuple[int, dict[int, str]]:
    """The shard count and each shard's holder, from the operator's shard Leases that are held (none: unsharded, or
    no replica alive)."""
    now = dt.datetime.now(dt.UTC)
    count, holders = 0, {}
    for lease in (lease for lease in leases if held(lease, now)):
        labels = lease["metadata"].get("labels") or {}
        count = int(labels.get(SHARDS_LABEL) or count)
        index = lease["metadata"]["name"].removeprefix(SHARD_PREFIX)
        if index.isdigit():
            holders[int(index)] = (lease.get("spec") or {}).get("holderIdentity") or "-"
    return count, holders


def list_rows(items: list[dict[str, Any]], all_namespaces: bool, leases: list[dict[str, Any]] | None = None) -> str:
    """The rollouts as a table; OWNER is the operator replica holding the rollout's shard ("-" unsharded)."""
    count, holders = shard_holders(leases or [])
    rows: list[tuple[str, ...]] = [("NAMESPACE", "NAME", "PHASE", "STEP", "WEIGHT", "VERDICT", "OWNER", "AGE")]
    for obj in items:
        st, meta = obj.get("status") or {}, obj["metadata"]
        owner = holders.get(shard_of(meta["namespace"], meta["name"], count), "-") if count else "-"
        rows.append((meta["namespace"], meta["name"], st.get("phase", "-"),
                     f"{st.get('step', '-')}/{st.get('steps', '-')}", fmt(st.get("weight"), "{}%"),
                     (st.get("analysis") or {}).get("verdict", "-"), owner, age(meta.get("creationTimestamp"))))
    return table(rows if all_namespaces else [r[1:] for r in rows])


def render_status(obj: dict[str, Any]) -> str:
    """``kubectl wallbounce status NAME``: the phase, step, weights, last analysis, action, conditions, history."""
    meta, spec, st = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    weight = st.get("weight")
    lines = [
        f"Name:        {meta['namespace']}/{meta['name']}",
        f"Phase:       {st.get('phase', 'Pending')}" + (f" ({', '.join(st['pauseReasons'])})"
                                                     if st.get("phase") == "Paused" and st.get("pauseReasons") else ""),
        f"Step:        {st.get('step', '-')}/{st.get('steps', len(spec.get('phases') or []))}"
        f"   dwell since {st.get('stepStartedAt', '-')} ({age(st.get('stepStartedAt'))} ago)",
        f"Weights:     canary {spec.get('canary', {}).get('service')} {fmt(weight, '{}%')}   "
        f"stable {spec.get('stable', {}).get('service')} {fmt(None if weight is None else 100 - weight, '{}%')}"
        + (f"   (asked for {st['desiredWeight']}%)" if st.get("desiredWeight", weight) != weight else ""),
        f"Ladder:      {' → '.join(str(p.get('weight')) + '%' for p in spec.get('phases') or [])}",
        f"Message:     {st.get('message', '-')}",
    ]
    a = st.get("analysis")
    if a:
        lines += [
            f"Analysis:    {a.get('verdict')} at {a.get('time')}: {a.get('reason', '')}",
            f"             requests {fmt(a.get('requests'), '{:.0f}')}   error rate "
            f"{fmt(a.get('errorRate'), '{:.3%}')} [{fmt(a.get('errorRateLower'), '{:.3%}')}, "
            f"{fmt(a.get('errorRateUpper'), '{:.3%}')}]   p95 {fmt(a.get('latencyP95'), '{:.3f}s')}   "
            f"confidence {fmt(a.get('consensusConfidence'), '{:.3f}')}   "
            f"cost/request {fmt(a.get('costPerRequest'), '${:.5f}')}",
        ]
    last = st.get("lastAction")
    if last:
        lines.append(f"Last action: {last.get('action')} at {last.get('time')}: {last.get('result')} — "
                     f"{last.get('message', '')}")
    if st.get("consecutiveErrors"):
        lines.append(f"Errors:      {st['consecutiveErrors']} consecutive NoData/Error verdicts")
    conditions = st.get("conditions") or []
    if conditions:
        lines.append("Conditions:  " + ", ".join(f"{c['type']}={c['status']}"
                                                  + (f" ({c['reason']})" if c.get("status") == "True" else "")
                                                  for c in conditions))
    history = st.get("history") or []
    if history:
        lines.append("History:")
        for h in history[-10:]:
            lines.append(f"  {h.get('time')}  {h.get('from') or '-':>11} → {h.get('to'):<11} step {h.get('step')} "
                         f"{h.get('weight')}%  {h.get('reason')}: {h.get('message')}")
    return "\n".join(lines)


def to_yaml(value: Any, indent: int = 0) -> str:
    """Block-style YAML of JSON data (what ``yaml.safe_load`` reads back as the same data)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        out = []
        for key, item in value.items():
            head = f"{pad}{json.dumps(str(key))}:"
            if isinstance(item, dict | list) and item:
                out.append(f"{head}\n{to_yaml(item, indent + 2)}")
            else:
                out.append(f"{head} {to_yaml(item)}")
        return "\n".join(out)
    if isinstance(value, list):
        if not value:
            return "[]"
        out = []
        for item in value:
            if isinstance(item, dict | list) and item:
                body = to_yaml(item, indent + 2)
                out.append(f"{pad}- {body.lstrip()}")
            else:
                out.append(f"{pad}- {to_yaml(item)}")
        return "\n".join(out)
    return "null" if value is None else json.dumps(value)
