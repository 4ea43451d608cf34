"""The service's metrics contract (docs: design.md, "The metrics contract"): the metric names the service
exports, their label names and label values, and the target labels Prometheus adds. The operator's default
PromQL, the dashboards, the alerts, the traffic exporter and the tests all read these series.
"""

from __future__ import annotations

from enum import StrEnum

# ----- metric names --------------------------------------------------------------------------------------

REQUESTS_TOTAL = "wallbounce_requests_total"
REQUEST_DURATION_SECONDS = "wallbounce_request_duration_seconds"
CONSENSUS_CONFIDENCE = "wallbounce_consensus_confidence"
PROVIDER_REQUESTS_TOTAL = "wallbounce_provider_requests_total"
PROVIDER_DURATION_SECONDS = "wallbounce_provider_duration_seconds"
TOKENS_TOTAL = "wallbounce_tokens_total"
COST_USD_TOTAL = "wallbounce_cost_usd_total"
CACHE_REQUESTS_TOTAL = "wallbounce_cache_requests_total"
INFLIGHT_REQUESTS = "wallbounce_inflight_requests"

# ----- label names ---------------------------------------------------------------------------------------

VARIANT = "variant"
REVISION = "revision"
TASK_TYPE = "task_type"
OUTCOME = "outcome"
PROVIDER = "provider"
DIRECTION = "direction"  # input, output
CACHE = "cache"
RESULT = "result"  # hit, miss
#: Target labels: Prometheus attaches them to every scraped series (ServiceMonitor relabelling, or the scrape
#: configuration of the local stack and the tests); the operator selects a canary by them.
NAMESPACE = "namespace"
SERVICE = "service"


# ----- label values --------------------------------------------------------------------------------------


class Variant(StrEnum):
    STABLE = "stable"
    CANARY = "canary"


class Outcome(StrEnum):
    """``outcome`` of ``wallbounce_requests_total``; ``error`` is the service's own fault."""

    SUCCESS = "success"
    ERROR = "error"
    CLIENT_ERROR = "client_error"
    CANCELLED = "cancelled"
    LOW_CONSENSUS = "low_consensus"
    REJECTED = "rejected"
