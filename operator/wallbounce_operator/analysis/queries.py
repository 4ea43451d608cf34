"""PromQL for the canary analysis, from the metrics contract (design.md).

Default queries are *batched*: five queries — requests by outcome, duration buckets, confidence buckets, confidence
sum, cost — answer every rollout of a Prometheus at once, so the number of queries does not grow with the number of
rollouts. Two sets:

- ``batched(window)``: ``increase()`` over the sliding window, grouped ``by (namespace, service, revision)`` — what
  the guard reads;
- ``instant()``: the counters themselves, grouped ``by (namespace, service, revision, instance)`` — each analysis
  look diffs them with the previous look's, pod by pod and reset-aware (a counter that went down restarted from 0),
  which gives the exact requests of the interval between the two looks: the step's evidence grows by them.

The operator reads the canary's current revision (``revision`` = the pod-template-hash of its current ReplicaSet)
and stable's series from them.

A rollout may override a metric with its own PromQL (when the operator allows it); placeholders ``{{namespace}}``,
``{{rollout}}``, ``{{canaryService}}``, ``{{stableService}}``, ``{{canaryRevision}}`` and ``{{window}}`` are
filled in, and the query must return one number.
"""

from __future__ import annotations

from ..model import RolloutSpec

BY = "namespace, service, revision"

BATCHED = ("outcomes", "duration", "confidence", "confidence_sum", "cost")


def batched(window: str) -> dict[str, str]:
    """The default queries for every canary and stable Service at once over ``window``, keyed by name."""
    w = window
    return {
        "outcomes": f"sum by ({BY}, outcome) (increase(wallbounce_requests_total[{w}]))",
        "duration": f"sum by ({BY}, le) (increase(wallbounce_request_duration_seconds_bucket[{w}]))",
        "confidence": f"sum by ({BY}, le) (increase(wallbounce_consensus_confidence_bucket[{w}]))",
        "confidence_sum": f"sum by ({BY}) (increase(wallbounce_consensus_confidence_sum[{w}]))",
        "cost": f"sum by ({BY}) (increase(wallbounce_cost_usd_total[{w}]))",
    }


def instant() -> dict[str, str]:
    """The counters of every pod (``instance``), for the looks' exact differences, keyed by name."""
    by = f"{BY}, instance"
    return {
        "outcomes": f"sum by ({by}, outcome) (wallbounce_requests_total)",
        "duration": f"sum by ({by}, le) (wallbounce_request_duration_seconds_bucket)",
        "confidence": f"sum by ({by}, le) (wallbounce_consensus_confidence_bucket)",
        "confidence_sum": f"sum by ({by}) (wallbounce_consensus_confidence_sum)",
        "cost": f"sum by ({by}) (wallbounce_cost_usd_total)",
    }


def render(template: str, namespace: str, rollout: str, spec: RolloutSpec, window: str, revision: str) -> str:
    values = {
        "namespace": namespace,
        "rollout": rollout,
        "canaryService": spec.canary.service,
        "stableService": spec.stable.service,
        "canaryRevision": revision,
        "window": window,
    }
    out = template
    for key, value in values.items():
        out = out.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return out


def overrides(spec: RolloutSpec) -> dict[str, str]:
    """The rollout's own query templates, keyed by the metric they replace."""
    q = spec.queries
    chosen = {
        "requests": q.requests,
        "error_rate": q.error_rate,
        "latency_p95": q.latency_p95,
        "confidence": q.consensus_confidence,
        "cost_per_request": q.cost_per_request,
    }
    return {k: v for k, v in chosen.items() if v}


def range_text(seconds: float) -> str:
    """A PromQL range for a number of seconds (whole milliseconds)."""
    ms = max(1, round(seconds * 1000))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
