"""PromQL for the canary analysis, from the metrics contract (design.md).

Default queries are *batched*: five queries — requests by outcome, duration buckets, confidence buckets, confidence
sum, cost — answer every rollout of a Prometheus at once, so the number of queries does not grow with the number of
rollouts. Two sets:

- ``batched(window)``: ``increase()`` over the sliding window, grouped ``by (namespace, service, revision)`` — what
  an analysis look and the guard read (the guard first asks ``suspects(window)`` which Services hold anything a
  rollback limit could be breached by, and fetches the window of those only: between analysis looks, a fleet of
  healthy canaries costs one small query every guard period, not every histogram bucket of every Service);
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

import re
from collections.abc import Iterable

from ..model import RolloutSpec

BY = "namespace, service, revision"

BATCHED = ("outcomes", "duration", "confidence", "confidence_sum", "cost")


DURATION = "wallbounce_request_duration_seconds_bucket"
CONFIDENCE = "wallbounce_consensus_confidence_bucket"
DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def batched(window: str, services: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """The default queries over ``window``, keyed by name: for every canary and stable Service at once, or only for
    ``services`` ((namespace, service) pairs; the selector may match more, never fewer)."""
    w, sel = window, selector(services)
    return {
        "outcomes": f"sum by ({BY}, outcome) (increase(wallbounce_requests_total{sel}[{w}]))",
        "duration": f"sum by ({BY}, le) (increase({DURATION}{sel}[{w}]))",
        "confidence": f"sum by ({BY}, le) (increase({CONFIDENCE}{sel}[{w}]))",
        "confidence_sum": f"sum by ({BY}) (increase(wallbounce_consensus_confidence_sum{sel}[{w}]))",
        "cost": f"sum by ({BY}) (increase(wallbounce_cost_usd_total{sel}[{w}]))",
    }


SELECTOR_LIMIT = 2000  # characters: a longer selector (many suspects, a shared outage) selects everything instead


def selector(services: Iterable[tuple[str, str]]) -> str:
    """A label selector that matches at least these (namespace, service) pairs ("" for all). Kubernetes names are
    DNS labels, so they go into the regular expressions as they are; anything else selects everything, and so do
    more names than fit a short query (a query is a URL: thousands of suspects must not make it too long to send)."""
    pairs = sorted(set(services))
    names = {n for pair in pairs for n in pair}
    if not pairs or not all(DNS_NAME.match(n) for n in names):
        return ""
    namespaces = "|".join(sorted({ns for ns, _ in pairs}))
    text = f'{{namespace=~"{namespaces}",service=~"{"|".join(sorted({s for _, s in pairs}))}"}}'
    return text if len(text) <= SELECTOR_LIMIT else ""


def suspects(window: str, slow_le: str | None, low_le: str) -> str:
    """Every Service whose window holds something a rollback limit could be breached by: an error or a 4xx, a request
    above the bucket ``slow_le`` (the first boundary at or above the lowest latency limit), an answer in the buckets
    up to ``low_le`` (the first boundary at or above the highest confidence limit, "+Inf" when none is). A Service
    without that boundary is a suspect too; with no boundary at or above the latency limit (``slow_le`` None) no
    request counts as slower than it, as the verdicts read a histogram. The guard fetches the full figures of these
    Services only: a healthy canary costs nothing in this answer, not its every histogram bucket."""
    w = window

    def summed(metric: str, le: str) -> str:
        return f'sum by ({BY}) (increase({metric}{{le="{le}"}}[{w}]))'

    terms = [f'sum by ({BY}) (increase(wallbounce_requests_total{{outcome=~"error|client_error"}}[{w}])) > 0']
    if slow_le is not None:
        total, fast = summed(DURATION, "+Inf"), summed(DURATION, slow_le)
        terms += [f"({total} - {fast}) > 0", f"({total} unless on ({BY}) {fast})"]
    low, scored = summed(CONFIDENCE, low_le), summed(CONFIDENCE, "+Inf")
    terms += [f"{low} > 0", f"({scored} unless on ({BY}) {low})"]
    return " or ".join(f"({t})" for t in terms)


def instant(services: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """The counters of every pod (``instance``), for the looks' exact differences, keyed by name: of every Service,
    or only of ``services`` (as ``batched``)."""
    by, sel = f"{BY}, instance", selector(services)
    return {
        "outcomes": f"sum by ({by}, outcome) (wallbounce_requests_total{sel})",
        "duration": f"sum by ({by}, le) ({DURATION}{sel})",
        "confidence": f"sum by ({by}, le) ({CONFIDENCE}{sel})",
        "confidence_sum": f"sum by ({by}) (wallbounce_consensus_confidence_sum{sel})",
        "cost": f"sum by ({by}) (wallbounce_cost_usd_total{sel})",
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
