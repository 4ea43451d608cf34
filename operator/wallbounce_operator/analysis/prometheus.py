"""The metrics source: asks Prometheus (through prometheus-api-client, off the event loop) about the canaries of many
rollouts at once and turns the answers into Observations: the canary's current revision and stable over the
sliding ``window`` (the guard) and, on an analysis look, what they served since the rollout's previous look (the
step's evidence grows by it): the counters of every pod, diffed with the previous look's in memory, reset-aware.

Faults are values: a failed, slow or malformed query gives ``Observation(error=...)`` for the rollouts it concerns,
with a fixed reason and at most an HTTP status code (never a response body); a revision without series gives an
observation without counts (NoData). Nothing here ever turns a missing number into 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from .. import metrics
from ..model import Counts, Observation, PhaseSpec, RolloutSpec
from . import histogram, queries

log = logging.getLogger("wallbounce.prometheus")

SERVED = ("success", "error", "low_consensus")
ANSWERS_AT_ONCE = 2  # big batched answers in flight per Prometheus (each can hold hundreds of thousands of series)


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


def _samples(result: Any) -> list[tuple[dict[str, Any], float | None]]:
    """The (labels, value) of each sample of an instant vector. The labels are the answer's own dict (not copied:
    the batched answers hold hundreds of thousands of samples); read them with ``_text``."""
    if not isinstance(result, list):
        raise QueryError("the answer is not an instant vector")
    out = []
    for sample in result:
        value = sample.get("value") if isinstance(sample, dict) else None
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise QueryError("the answer is not an instant vector")
        labels = sample.get("metric") or {}
        if not isinstance(labels, dict):
            raise QueryError("the answer is not an instant vector")
        out.append((labels, _number(value[1])))
    return out


def _text(value: Any) -> str:
    """A label's value as text ("" when absent; whatever else an odd answer holds, as text)."""
    return value if isinstance(value, str) else "" if value is None else str(value)


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
class Raw:
    """One group of series' numbers: counters (an instant query) or their increase (a range query)."""

    outcomes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    duration: histogram.Buckets = field(default_factory=lambda: defaultdict(float))
    confidence: histogram.Buckets = field(default_factory=lambda: defaultdict(float))
    confidence_sum: float = 0.0
    cost: float = 0.0

    def add(self, other: Raw) -> None:
        for k, v in other.outcomes.items():
            self.outcomes[k] += v
        for le, v in other.duration.items():
            self.duration[le] += v
        for le, v in other.confidence.items():
            self.confidence[le] += v
        self.confidence_sum += other.confidence_sum
        self.cost += other.cost

    def since(self, previous: Raw | None) -> Raw:
        """What these counters counted after ``previous`` (a counter below its previous value restarted from 0, as
        Prometheus' ``increase()`` reads a reset); all of them when there is no previous."""
        if previous is None:
            return self

        def delta(now: float, before: float) -> float:
            return now - before if now >= before else now

        out = Raw()
        for k, v in self.outcomes.items():
            out.outcomes[k] = delta(v, previous.outcomes.get(k, 0.0))
        for le, v in self.duration.items():
            out.duration[le] = delta(v, previous.duration.get(le, 0.0))
        for le, v in self.confidence.items():
            out.confidence[le] = delta(v, previous.confidence.get(le, 0.0))
        out.confidence_sum = delta(self.confidence_sum, previous.confidence_sum)
        out.cost = delta(self.cost, previous.cost)
        return out

    def counts(self, phase: PhaseSpec) -> Counts:
        o, duration, confidence = self.outcomes, self.duration, self.confidence
        return Counts(
            served=sum(o.get(k, 0.0) for k in SERVED), errors=o.get("error", 0.0),
            client_errors=o.get("client_error", 0.0), timed=histogram.total(duration),
            slow_gate=histogram.slower_than(duration, phase.max_latency_p95, count_doubtful=True),
            slow_limit=histogram.slower_than(duration, phase.rollback_latency_p95, count_doubtful=False),
            scored=histogram.total(confidence), confidence_sum=self.confidence_sum,
            confidence_squares=histogram.sum_of_squares(confidence), cost=self.cost,
            latency_p95=histogram.quantile(duration, 0.95))


SeriesGroup = tuple[str, str, str, str]  # (namespace, service, revision, instance)


@dataclass
class Layout:
    """The histogram bucket boundaries seen at one Prometheus (each as its ``le`` label text), for the guard's
    suspects query."""

    duration: dict[float, str] = field(default_factory=dict)
    confidence: dict[float, str] = field(default_factory=dict)

    def add(self, other: Layout) -> None:
        self.duration.update(other.duration)
        self.confidence.update(other.confidence)

    @staticmethod
    def at_or_above(bounds: dict[float, str], value: float) -> str | None:
        """The ``le`` text of the first finite boundary at or above ``value``; None when there is none."""
        above = [b for b in bounds if value <= b < math.inf]
        return bounds[min(above)] if above else None


@dataclass
class Batch:
    """The answers of one set of batched queries (one Prometheus; a range, or the counters themselves), indexed by
    (namespace, service, revision, instance) — instance "" when the queries do not group by it."""

    raw: dict[SeriesGroup, Raw] = field(default_factory=lambda: defaultdict(Raw))
    groups: dict[tuple[str, str], set[SeriesGroup]] = field(default_factory=lambda: defaultdict(set))
    layout: Layout = field(default_factory=Layout)

    def add(self, name: str, result: Any) -> None:
        for labels, value in _samples(result):
            key = (_text(labels.get("namespace")), _text(labels.get("service")), _text(labels.get("revision")),
                   _text(labels.get("instance")))
            self.groups[key[:2]].add(key)
            raw, v = self.raw[key], value or 0.0
            if name == "outcomes":
                raw.outcomes[_text(labels.get("outcome"))] += v
            elif name == "duration":
                le = _text(labels.get("le", "+Inf"))
                raw.duration[bound := _le(le)] += v
                self.layout.duration.setdefault(bound, le)
            elif name == "confidence":
                le = _text(labels.get("le", "+Inf"))
                raw.confidence[bound := _le(le)] += v
                self.layout.confidence.setdefault(bound, le)
            elif name == "confidence_sum":
                raw.confidence_sum += v
            else:
                raw.cost += v

    def by_instance(self, namespace: str, service: str, revision: str | None) -> dict[str, Raw] | None:
        """The service's series of ``revision`` (all revisions when None) by instance; None without series."""
        keys = [k for k in self.groups.get((namespace, service)) or () if revision is None or k[2] == revision]
        if not keys:
            return None
        out: dict[str, Raw] = defaultdict(Raw)
        for key in keys:
            out[key[3]].add(self.raw[key])
        return dict(out)

    def counts(self, namespace: str, service: str, revision: str | None, phase: PhaseSpec) -> Counts | None:
        """The sum over the service's series of ``revision`` (all revisions when None); None without series."""
        parts = self.by_instance(namespace, service, revision)
        if parts is None:
            return None
        total = Raw()
        for raw in parts.values():
            total.add(raw)
        return total.counts(phase)


@dataclass
class Snapshot:
    """A rollout's counters at its last analysis look, pod by pod, for the next look's difference."""

    at: float
    revision: str
    canary: dict[str, Raw]
    stable: dict[str, Raw]


def _since(now: dict[str, Raw], before: dict[str, Raw]) -> Raw:
    """Summed over pods: what each counted since the previous look (a pod new since then: all it counted)."""
    total = Raw()
    for instance, raw in now.items():
        total.add(raw.since(before.get(instance)))
    return total


class PrometheusSource:
    """Batched observations; one client per Prometheus address."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._clients: dict[str, PrometheusConnect] = {}
        self._snapshots: dict[tuple[str, str], Snapshot] = {}
        self._layouts: dict[str, Layout] = {}
        self._answers: tuple[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] | None = None  # per loop

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

    async def _batch(self, address: str, texts: dict[str, str], at: float, every: bool = True) -> Batch:
        """The batched queries' answers, each read into the batch as it arrives and dropped. Answers that hold every
        Service's series (``every``) are at most ``ANSWERS_AT_ONCE`` in flight per Prometheus (the operator's
        memory peak is a few of them, not every query of every batch at once); answers about a few Services (the
        guard's suspects, a rollout with its own queries) never wait for those."""
        loop = asyncio.get_running_loop()
        if self._answers is None or self._answers[0] is not loop:
            self._answers = (loop, {})
        limits = self._answers[1]  # one per Prometheus: a slow one never holds back another's answers
        answers = limits.setdefault(address, asyncio.Semaphore(ANSWERS_AT_ONCE)) if every else contextlib.nullcontext()
        batch = Batch()

        async def read(name: str) -> None:
            async with answers:
                batch.add(name, await self._query(address, texts[name], at))

        results = await asyncio.gather(*(read(n) for n in queries.BATCHED), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result if isinstance(result, QueryError) else QueryError(_describe(result, address))
        self._layouts.setdefault(address, Layout()).add(batch.layout)
        return batch

    async def observe(self, targets: Iterable[Target], at: float, *, analysis: bool,
                      services: Iterable[tuple[str, str]] = ()) -> dict[tuple[str, str], Observation]:
        """Observations for every target, keyed by (namespace, name): the window and, on an analysis look, what the
        canary's current revision and stable served since the rollout's previous look. ``services``: the window of
        these (namespace, service) pairs is enough (the guard's suspects); every Service's when empty."""
        targets, services = list(targets), list(services)
        every = not queries.selector(services)  # answers that hold every Service's series
        jobs: dict[tuple[str, str], dict[str, str]] = {}
        for t in targets:
            jobs[(t.address, t.spec.window_text)] = queries.batched(t.spec.window_text, services)
            if analysis:
                jobs[(t.address, "")] = queries.instant(services)
        keys = list(jobs)
        answers = await asyncio.gather(*(self._batch(addr, jobs[(addr, w)], at, every) for addr, w in keys),
                                       return_exceptions=True)
        batches = dict(zip(keys, answers, strict=True))
        return {(t.namespace, t.name): self._observation(t, batches, at, analysis) for t in targets}

    async def guard(self, targets: Iterable[Target], at: float) -> dict[tuple[str, str], Observation]:
        """The guard's look between analysis looks: the window of every target whose canary's current revision is a
        suspect (``queries.suspects``: it holds an error, a 4xx, a request slower than the lowest latency limit or
        an answer below the highest confidence limit among these targets); a target that is not gets no observation
        (nothing in its window could breach a limit). Before an answer showed this Prometheus' bucket boundaries,
        every target's window."""
        groups: dict[tuple[str, str], list[Target]] = defaultdict(list)
        for t in targets:
            groups[(t.address, t.spec.window_text)].append(t)
        out: dict[tuple[str, str], Observation] = {}
        for (address, window), members in groups.items():
            layout = self._layouts.get(address)
            if layout is None:
                out.update(await self.observe(members, at, analysis=False))
                continue
            slow = Layout.at_or_above(layout.duration, min(t.phase.rollback_latency_p95 for t in members))
            low = Layout.at_or_above(layout.confidence, max(t.phase.rollback_confidence for t in members))
            try:
                answer = await self._query(address, queries.suspects(window, slow, low or "+Inf"), at)
                found = {(_text(labels.get("namespace")), _text(labels.get("service")), _text(labels.get("revision")))
                         for labels, _ in _samples(answer)}
            except QueryError as exc:
                out.update({(t.namespace, t.name): Observation(error=str(exc)) for t in members})
                continue
            flagged = [t for t in members if (t.namespace, t.spec.canary.service, t.revision) in found]
            if flagged:
                services = [(t.namespace, s) for t in flagged for s in (t.spec.canary.service, t.spec.stable.service)]
                out.update(await self.observe(flagged, at, analysis=False, services=services))
        return out

    def forget(self, namespace: str, name: str) -> None:
        self._snapshots.pop((namespace, name), None)

    def _observation(self, t: Target, batches: dict[tuple[str, str], Batch | BaseException], at: float,
                     analysis: bool) -> Observation:
        window = batches[(t.address, t.spec.window_text)]
        counters = batches.get((t.address, "")) if analysis else None
        for b in (window, counters):
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
        if isinstance(counters, Batch):
            fields.update(self._increase(t, counters, at))
        return Observation(**fields)

    def _increase(self, t: Target, counters: Batch, at: float) -> dict[str, Any]:
        """The differences since this rollout's previous look (nothing on its first look, or after its canary's
        revision changed: a baseline is taken)."""
        key = (t.namespace, t.name)
        canary = counters.by_instance(t.namespace, t.spec.canary.service, t.revision) or {}
        stable = counters.by_instance(t.namespace, t.spec.stable.service, None) or {}
        previous = self._snapshots.get(key)
        self._snapshots[key] = Snapshot(at, t.revision or "", canary, stable)
        if previous is None or previous.revision != t.revision or at <= previous.at:
            return {}
        start, end = (dt.datetime.fromtimestamp(x, dt.UTC) for x in (previous.at, at))
        return {"increase": _since(canary, previous.canary).counts(t.phase),
                "stable_increase": _since(stable, previous.stable).counts(t.phase), "span": (start, end)}

    async def observe_own(self, t: Target, at: float, *, analysis: bool) -> Observation:
        """A rollout with its own queries: the default observation, with each overridden metric replaced by its
        query's number (over the window, and over the interval for the step's evidence). A latency or confidence
        override is a single number, compared as a point (the query's author owns its sample size)."""
        own = queries.overrides(t.spec)
        revision = t.revision or ""

        async def scalars(window: str) -> dict[str, float | None]:
            values: dict[str, float | None] = {}
            for metric, template in own.items():
                promql = queries.render(template, t.namespace, t.name, t.spec, window, revision)
                values[metric] = parse_scalar(await self._query(t.address, promql, at))
            return values

        mine = [(t.namespace, t.spec.canary.service), (t.namespace, t.spec.stable.service)]
        base = (await self.observe([t], at, analysis=analysis, services=mine))[(t.namespace, t.name)]
        if base.error:
            return base
        try:
            window = _override(base.window, await scalars(t.spec.window_text), t.phase)
            if not analysis or base.increase is None:
                return replace(base, window=window)
            increase = _override(base.increase, await scalars(queries.range_text(t.spec.interval)), t.phase)
        except QueryError as exc:
            return Observation(error=str(exc))
        return replace(base, window=window, increase=increase)


def _override(counts: Counts | None, values: dict[str, float | None], phase: PhaseSpec) -> Counts:
    """``counts`` with the metrics a rollout's own queries answered replaced by those numbers (a metric whose
    query answered nothing has no data: a gate that needs it says NoData)."""
    c = counts or Counts()
    n = (values["requests"] or 0.0) if "requests" in values else c.served
    rate = values["error_rate"] if "error_rate" in values else c.error_rate
    fields: dict[str, Any] = {"served": n, "errors": (rate or 0.0) * n}
    if "latency_p95" in values:
        p95 = values["latency_p95"]
        fields.update(timed=n if p95 is not None else 0.0, latency_p95=p95,
                      slow_gate=n if p95 is not None and p95 > phase.max_latency_p95 else 0.0,
                      slow_limit=n if p95 is not None and p95 > phase.rollback_latency_p95 else 0.0)
    if "confidence" in values:
        mean = values["confidence"]
        fields.update(scored=n if mean is not None else 0.0, confidence_sum=(mean or 0.0) * n,
                      confidence_squares=(mean or 0.0) ** 2 * n)
    if "cost_per_request" in values:
        fields["cost"] = (values["cost_per_request"] or 0.0) * n
    return c.model_copy(update=fields)


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
