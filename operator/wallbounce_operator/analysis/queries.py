"""PromQL for the canary analysis, from the metrics contract in design.md.

Default queries are *batched*: one query per metric per tick, grouped ``by (namespace, service)``,
answers every rollout that shares a Prometheus and a window — the query count does not grow with
the number of rollouts. A rollout may override any query with its own PromQL; placeholders
``{{namespace}}``, ``{{rollout}}``, ``{{canaryService}}``, ``{{stableService}}`` and ``{{window}}``
are filled in, and the query must return one number.
"""

from __future__ import annotations

from ..model import RolloutSpec

BY = "namespace, service"

METRICS = ("requests", "errors", "latency_p95", "confidence", "cost_per_request")


def batched(window: str) -> dict[str, str]:
    """The default queries for every canary and stable Service at once, keyed by metric."""
    w = window
    return {
        "requests": f"sum by ({BY}) (increase(wallbounce_requests_total[{w}]))",
        "errors": f'sum by ({BY}) (increase(wallbounce_requests_total{{outcome="error"}}[{w}]))',
        "latency_p95": f"histogram_quantile(0.95, sum by ({BY}, le) "
        f"(rate(wallbounce_request_duration_seconds_bucket[{w}])))",
        "confidence": f"sum by ({BY}) (rate(wallbounce_consensus_confidence_sum[{w}]))"
        f" / sum by ({BY}) (rate(wallbounce_consensus_confidence_count[{w}]))",
        "cost_per_request": f"sum by ({BY}) (increase(wallbounce_cost_usd_total[{w}]))"
        f" / sum by ({BY}) (increase(wallbounce_requests_total[{w}]))",
    }


def render(template: str, namespace: str, rollout: str, spec: RolloutSpec) -> str:
    values = {
        "namespace": namespace,
        "rollout": rollout,
        "canaryService": spec.canary.service,
        "stableService": spec.stable.service,
        "window": spec.window_text,
    }
    out = template
    for key, value in values.items():
        out = out.replace("{{" + key + "}}", value).replace("{{ " + key + " }}", value)
    return out


def overrides(namespace: str, rollout: str, spec: RolloutSpec) -> dict[str, str]:
    """The rollout's own queries, rendered, keyed by the metric they replace."""
    q = spec.queries
    chosen = {
        "requests": q.requests,
        "error_rate": q.error_rate,
        "latency_p95": q.latency_p95,
        "confidence": q.consensus_confidence,
        "cost_per_request": q.cost_per_request,
    }
    return {k: render(v, namespace, rollout, spec) for k, v in chosen.items() if v}
