"""The metrics source: asks Prometheus (through prometheus-api-client, off the event loop) about the canaries of many
rollouts at once and turns the answers into Observations: the canary's current revision and stable over the
sliding ``window`` (the guard) and, on an analysis tick, over the last interval (the step's evidence).

Faults are values: a failed, slow or malformed query gives ``Observation(error=...)`` for the rollouts it concerns,
with a fixed reason and at most an HTTP status code (never a response body); a revision without series gives an
observation without counts (NoData). Nothing here ever turns a missing number into 0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from .. import metrics
from ..model import Counts, Observation, PhaseSpec, RolloutSpec
from . import histogram, queries

log = logging.getLogger("wallbounce.prometheus")

SeriesKey = tuple[str, str, str]  # (namespace, service, revision)
SERVED = ("success", "error", "low_consensus")


class QueryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    """One rollout to observe, at the Prometheus the operator allowed for it, with its canary's current revision."""

    namespace: str
    name: str
    spec: RolloutSpec
    address: str
    revision: str | None
    step: int = 1

    @property
    def phase(self) -> PhaseSpec:
        return self.spec.phases[min(max(self.step, 1), len(self.spec.phases)) - 1]


def _number(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise QueryError("a sample value is not a number") from exc
    return None if math.isnan(value) or math.isinf(value) else value


def _samples(result: Any) -> list[tuple[dict[str, str], float | None]]:
    if not isinstance(result, list):
        raise QueryError("the answer is not an instant vector")
    out = []
    for sample in result:
        value = sample.get("value") if isinstance(sample, dict) else None
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise QueryError("the answer is not an instant vector")
        out.append(({str(k): str(v) for k, v in (sample.get("metric") or {}).items()}, _number(sample["value"][1])))
    return out


def parse_scalar(result: Any) -> float | None:
    """One number from a query result: a scalar, or a vector of exactly one sample (empty → None)."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return _number(result[1])  # resultType scalar: [time, "value"]
    samples = _samples(result)
    if not samples:
        return None
    if len(samples) > 1:
        raise QueryError(f"query returned {len(samples)} series, expected one")
    return samples[0][1]


def _le(text: str) -> float:
    return math.inf if text in ("+Inf", "Inf", "inf") else float(text)


@dataclass
class Batch:
    """The answers of one set of batched queries (one Prometheus, one range), indexed by series."""

    outcomes: dict[SeriesKey, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))
    duration: dict[SeriesKey, histogram.Buckets] = field(default_factory=lambda: defaultdict(dict))
    confidence: dict[SeriesKey, histogram.Buckets] = field(default_factory=lambda: defaultdict(dict))
    confidence_sum: dict[SeriesKey, float] = field(default_factory=dict)
    cost: dict[SeriesKey, float] = field(default_factory=dict)
    revisions: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, name: str, result: Any) -> None:
        for labels, value in _samples(result):
            key = (labels.get("namespace", ""), labels.get("service", ""), labels.get("revision", ""))
            self.revisions[key[:2]].add(key[2])
            v = value or 0.0
            if name == "outcomes":
                self.outcomes[key][labels.get("outcome", "")] = v
            elif name == "duration":
                self.duration[key][_le(labels.get("le", "+Inf"))] = v
            elif name == "confidence":
                self.confidence[key][_le(labels.get("le", "+Inf"))] = v
            elif name == "confidence_sum":
                self.confidence_sum[key] = v
            else:
                self.cost[key] = v

    def counts(self, namespace: str, service: str, revision: str | None, phase: PhaseSpec) -> Counts | None:
        """The sum over the service's series of ``revision`` (all revisions when None); None without series."""
        revisions = self.revisions.get((namespace, service)) or set()
        keys = [(namespace, service, r) for r in revisions if revision is None or r == revision]
        if not keys:
            return None
        outcomes: dict[str, float] = defaultdict(float)
        duration: histogram.Buckets = defaultdict(float)
        confidence: histogram.Buckets = defaultdict(float)
        for key in keys:
            for outcome, v in self.outcomes.get(key, {}).items():
                outcomes[outcome] += v
            for le, v in self.duration.get(key, {}).items():
                duration[le] += v
            for le, v in self.confidence.get(key, {}).items():
                confidence[le] += v
        return Counts(
            served=sum(outcomes[o] for o in SERVED), errors=outcomes["error"],
            client_errors=outcomes["client_error"], timed=histogram.total(duration),
            slow_gate=histogram.slower_than(duration, phase.max_latency_p95, count_doubtful=True),
            slow_limit=histogram.slower_than(duration, phase.rollback_latency_p95, count_doubtful=False),
            scored=histogram.total(confidence), confidence_sum=sum(self.confidence_sum.get(k, 0.0) for k in keys),
            confidence_squares=histogram.sum_of_squares(confidence), cost=sum(self.cost.get(k, 0.0) for k in keys),
            latency_p95=histogram.quantile(duration, 0.95))


class PrometheusSource:
    """Batched observations; one client per Prometheus address."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._clients: dict[str, PrometheusConnect] = {}

    def _client(self, address: str) -> PrometheusConnect:
        if address not in self._clients:
            # one attempt per tick (the next tick is the retry); read=False surfaces a read timeout as such
            self._clients[address] = PrometheusConnect(url=address, disable_ssl=False,
                                                       retry=Retry(total=0, read=False), timeout=self.timeout)
        return self._clients[address]

    async def _query(self, address: str, promql: str, at: float) -> Any:
        metrics.PROM_QUERIES.inc()
        client = self._client(address)
        try:
            return await asyncio.wait_for(
                asyncio.to_thread(client.custom_query, promql, {"time": f"{at:.3f}"}, self.timeout),
                self.timeout + 1,
            )
        except Exception as exc:  # every failure of the source becomes an Error verdict
            metrics.PROM_QUERY_ERRORS.inc()
            raise QueryError(_describe(exc, address)) from exc

    async def _batch(self, address: str, window: str, at: float) -> Batch:
        texts = queries.batched(window)
        answers = await asyncio.gather(*(self._query(address, texts[n], at) for n in queries.BATCHED),
                                       return_exceptions=True)
        batch = Batch()
        for name, answer in zip(queries.BATCHED, answers, strict=True):
            if isinstance(answer, BaseException):
                raise answer if isinstance(answer, QueryError) else QueryError(_describe(answer, address))
            batch.add(name, answer)
        return batch

    async def observe(self, targets: Iterable[Target], at: float, *, analysis: bool) -> dict[tuple[str, str],
                                                                                             Observation]:
        """Observations for every target, keyed by (namespace, name): the window (and, for an analysis tick, the
        interval that ends at ``at``)."""
        targets = list(targets)
        ranges: dict[tuple[str, str], list[Target]] = defaultdict(list)
        for t in targets:
            ranges[(t.address, t.spec.window_text)].append(t)
            if analysis:
                ranges[(t.address, queries.range_text(t.spec.interval))].append(t)
        keys = list(ranges)
        answers = await asyncio.gather(*(self._batch(addr, window, at) for addr, window in keys),
                                       return_exceptions=True)
        batches = dict(zip(keys, answers, strict=True))
        return {(t.namespace, t.name): self._observation(t, batches, at, analysis) for t in targets}

    @staticmethod
    def _observation(t: Target, batches: dict[tuple[str, str], Batch | BaseException], at: float,
                     analysis: bool) -> Observation:
        window = batches[(t.address, t.spec.window_text)]
        step = batches.get((t.address, queries.range_text(t.spec.interval))) if analysis else None
        for b in (window, step):
            if isinstance(b, BaseException):
                return Observation(error=str(b) if isinstance(b, QueryError) else "metrics source failed")
        assert isinstance(window, Batch)
        ns, canary, stable = t.namespace, t.spec.canary.service, t.spec.stable.service
        if t.revision is None:
            return Observation(error="the canary's current revision is not known yet")
        fields: dict[str, Any] = {
            "window": window.counts(ns, canary, t.revision, t.phase),
            "stable_window": window.counts(ns, stable, None, t.phase),
        }
        if isinstance(step, Batch):
            end = dt.datetime.fromtimestamp(at, dt.UTC)
            fields.update(increase=step.counts(ns, canary, t.revision, t.phase) or Counts(),
                          stable_increase=step.counts(ns, stable, None, t.phase) or Counts(),
                          span=(end - dt.timedelta(seconds=t.spec.interval), end))
        return Observation(**fields)

    async def observe_own(self, t: Target, at: float, *, analysis: bool) -> Observation:
        """A rollout with its own queries (scalars): mapped into counts; latency and confidence compared as points
        (the query's author owns its sample size)."""
        own = queries.overrides(t.spec)
        revision = t.revision or ""

        async def scalars(window: str) -> Counts:
            values: dict[str, float | None] = {}
            for metric, template in own.items():
                promql = queries.render(template, t.namespace, t.name, t.spec, window, revision)
                values[metric] = parse_scalar(await self._query(t.address, promql, at))
            return _counts_from_scalars(values, t.phase)

        try:
            window = await scalars(t.spec.window_text)
            if not analysis:
                return Observation(window=window)
            increase = await scalars(queries.range_text(t.spec.interval))
        except QueryError as exc:
            return Observation(error=str(exc))
        end = dt.datetime.fromtimestamp(at, dt.UTC)
        return Observation(window=window, increase=increase, span=(end - dt.timedelta(seconds=t.spec.interval), end))


def _counts_from_scalars(values: dict[str, float | None], phase: PhaseSpec) -> Counts:
    n = values.get("requests") or 0.0
    rate, p95 = values.get("error_rate"), values.get("latency_p95")
    confidence, cost = values.get("confidence"), values.get("cost_per_request")
    return Counts(served=n, errors=(rate or 0.0) * n, timed=n if p95 is not None else 0.0,
                  slow_gate=n if p95 is not None and p95 > phase.max_latency_p95 else 0.0,
                  slow_limit=n if p95 is not None and p95 > phase.rollback_latency_p95 else 0.0,
                  scored=n if confidence is not None else 0.0, confidence_sum=(confidence or 0.0) * n,
                  confidence_squares=(confidence or 0.0) ** 2 * n, cost=(cost or 0.0) * n, latency_p95=p95)


_STATUS = re.compile(r"HTTP Status Code (\d{3})")


def _describe(exc: BaseException, address: str) -> str:
    """A short, fixed reason and at most an HTTP status code: never the response body, which comes from a server a
    rollout named and may say anything (the full exception goes to the operator's log at debug level)."""
    log.debug("query to %s failed", address, exc_info=exc)
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | requests.Timeout):
        return f"Prometheus at {address} did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return f"Prometheus at {address} is unreachable (connection failed)"
    if isinstance(exc, PrometheusApiClientException):
        code = _STATUS.search(str(exc))
        return f"Prometheus at {address} refused the query (HTTP {code.group(1) if code else 'error'})"
    if isinstance(exc, ValueError):  # a body that is not the JSON of the Prometheus API
        return f"Prometheus at {address} answered something that is not a Prometheus API response"
    return f"Prometheus at {address} failed ({type(exc).__name__})"
