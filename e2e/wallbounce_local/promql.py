"""The canary as the operator's default queries see it, read from Prometheus: its error ratio and its mean
consensus confidence over a window (None: no data), from the metrics contract's names."""

from __future__ import annotations

from wallbounce_api import metrics as m

from .prometheus import PrometheusAPI


class CanaryMetrics:
    """One canary Service (``namespace``, ``service``) in one Prometheus."""

    def __init__(self, prometheus: PrometheusAPI, namespace: str, service: str) -> None:
        self.prometheus = prometheus
        self.selector = f'{m.NAMESPACE}="{namespace}", {m.SERVICE}="{service}"'

    def error_rate(self, window: str = "6s") -> float | None:
        """Errors over all requests in the window (None: no requests)."""
        sel = self.selector
        return self.prometheus.scalar(
            f'sum(increase({m.REQUESTS_TOTAL}{{{sel}, {m.OUTCOME}="{m.Outcome.ERROR}"}}[{window}])) / '
            f"sum(increase({m.REQUESTS_TOTAL}{{{sel}}}[{window}]))")

    def confidence(self, window: str = "6s") -> float | None:
        """Mean consensus confidence of the answers in the window (None: no answers)."""
        sel, name = self.selector, m.CONSENSUS_CONFIDENCE
        return self.prometheus.scalar(f"sum(rate({name}_sum{{{sel}}}[{window}])) / "
                                      f"sum(rate({name}_count{{{sel}}}[{window}]))")

    def empty(self, window: str = "6s") -> bool:
        """No canary traffic in the window at all."""
        return self.error_rate(window) is None and self.confidence(window) is None
