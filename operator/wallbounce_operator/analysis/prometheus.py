"""The metrics source: asks Prometheus (through prometheus-api-client, off the event loop) for the
canary of every due rollout at once and turns the answers into Observations.

Faults are values: a failed, slow or malformed query gives ``Observation(error=...)`` for the
rollouts it concerns; an empty vector or NaN gives ``None`` for that metric. Nothing here ever
turns a missing number into 0.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from .. import metrics
from ..model import Observation, RolloutSpec
from . import queries

log = logging.getLogger("wallbounce.prometheus")

class QueryError(RuntimeError):
    pass


@dataclass(frozen=True)
class Target:
    """One rollout to observe, at the Prometheus the operator allowed for it."""

    namespace: str
    name: str
    spec: RolloutSpec
    address: str


Series = dict[tuple[str, str], float | None]  # (namespace, service) -> value


def _number(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise QueryError("a sample value is not a number") from exc
    return None if math.isnan(value) or math.isinf(value) else value


def parse_vector(result: Any) -> Series:
    """A query result grouped by (namespace, service); raises QueryError on anything but a vector."""
    if not isinstance(result, list):
        raise QueryError(f"unexpected result type {type(result).__name__}")
    out: Series = {}
    for sample in result:
        if not isinstance(sample, dict) or "value" not in sample:
            raise QueryError("expected an instant vector")
        labels = sample.get("metric") or {}
        key = (str(labels.get("namespace", "")), str(labels.get("service", "")))
        out[key] = _number(sample["value"][1])
    return out


def parse_scalar(result: Any) -> float | None:
    """One number from a query result: a scalar, or a vector of exactly one sample (empty → None)."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return _number(result[1])  # resultType scalar: [time, "value"]
    if not isinstance(result, list):
        raise QueryError(f"unexpected result type {type(result).__name__}")
    if not result:
        return None
    if len(result) > 1:
        raise QueryError(f"query returned {len(result)} series, expected one")
    sample = result[0]
    if not isinstance(sample, dict) or "value" not in sample:
        raise QueryError("expected an instant vector or a scalar")
    return _number(sample["value"][1])


class PrometheusSource:
    """Batched canary observations; one client per Prometheus address."""

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

    async def observe(self, targets: Iterable[Target]) -> dict[tuple[str, str], Observation]:
        """Observations for every target, keyed by (namespace, name)."""
        at = time.time()
        groups: dict[tuple[str, str], list[Target]] = {}
        for t in targets:
            groups.setdefault((t.address, t.spec.window_text), []).append(t)
        results = await asyncio.gather(*(self._observe_group(addr, window, members, at)
                                         for (addr, window), members in groups.items()))
        out: dict[tuple[str, str], Observation] = {}
        for part in results:
            out.update(part)
        return out

    async def _observe_group(self, address: str, window: str, members: list[Target],
                             at: float) -> dict[tuple[str, str], Observation]:
        # the batched queries are only needed for metrics some member does not override
        needed = set()
        for t in members:
            own = queries.overrides(t.namespace, t.name, t.spec)
            for metric in queries.METRICS:
                overridden = metric in own or (metric == "errors" and "error_rate" in own)
                if not overridden:
                    needed.add(metric)
        batch = queries.batched(window)
        series: dict[str, Series] = {}
        failure: str | None = None
        names = sorted(needed)
        answers = await asyncio.gather(*(self._query(address, batch[m], at) for m in names), return_exceptions=True)
        for metric, answer in zip(names, answers, strict=True):
            if isinstance(answer, BaseException):
                failure = str(answer)
                continue
            try:
                series[metric] = parse_vector(answer)
            except QueryError as exc:
                failure = f"{metric}: {exc}"
        out: dict[tuple[str, str], Observation] = {}
        for t in members:
            out[(t.namespace, t.name)] = await self._observe_one(address, t, series, failure, at)
        return out

    async def _observe_one(self, address: str, t: Target, series: dict[str, Series], failure: str | None,
                           at: float) -> Observation:
        own = queries.overrides(t.namespace, t.name, t.spec)
        key = (t.namespace, t.spec.canary.service)
        values: dict[str, float | None] = {}
        try:
            for metric in queries.METRICS:
                if metric in own:
                    values[metric] = parse_scalar(await self._query(address, own[metric], at))
                elif metric == "errors" and "error_rate" in own:
                    continue
                else:
                    if metric not in series:
                        return Observation(error=failure or f"{metric}: no answer")
                    values[metric] = series[metric].get(key)
                    if metric == "errors" and values[metric] is None and key in series.get("requests", {}):
                        # a counter label appears with its first increment: no error series = no errors yet
                        values[metric] = 0.0
            if "error_rate" in own:
                rate = parse_scalar(await self._query(address, own["error_rate"], at))
                n = values.get("requests")
                values["errors"] = None if rate is None or n is None else rate * n
        except QueryError as exc:
            return Observation(error=str(exc))
        return Observation(requests=values.get("requests"), errors=values.get("errors"),
                           latency_p95=values.get("latency_p95"), confidence=values.get("confidence"),
                           cost_per_request=values.get("cost_per_request"))


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
