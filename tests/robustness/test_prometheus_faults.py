"""Prometheus faults never promote: empty vectors, NaN, wrong result types, too many series, a
Prometheus slower than the query timeout, and one that flaps. Real Prometheus answers produce the
first four (through the rollout's own PromQL overrides); the slow and flapping ones are a small
proxy in front of the real server — a fault a real Prometheus cannot produce on demand."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.operator.conftest import Driver
from tests.operator.test_guard_suspects import spec
from wallbounce_local import procs
from wallbounce_local.components import Operator
from wallbounce_local.prometheus import Prometheus
from wallbounce_local.traffic import HEALTHY
from wallbounce_operator.analysis.prometheus import PrometheusSource, Target

pytestmark = pytest.mark.integration


class FaultProxy:
    """Forwards to Prometheus, but ``slow`` delays every answer and ``flap`` refuses every other one."""

    def __init__(self, upstream: str, mode: str, delay: float = 4.0) -> None:
        self.upstream, self.mode, self.delay = upstream, mode, delay
        self.port = procs.free_port()
        self.calls = itertools.count()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        n = next(self.calls)
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        elif self.mode == "flap" and (n // 5) % 2 == 1:  # five queries (one tick) up, five down
            return web.Response(status=503, text="flapping")
        async with aiohttp.ClientSession() as session, session.get(
                f"{self.upstream}{request.path_qs}") as resp:
            return web.Response(status=resp.status, body=await resp.read(), content_type="application/json")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.shutdown(), self.loop).result(10)
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def proxies(prometheus: Prometheus) -> Iterator[dict[str, FaultProxy]]:
    made = {mode: FaultProxy(prometheus.url, mode) for mode in ("slow", "flap")}
    yield made
    for proxy in made.values():
        proxy.stop()


OVERRIDES: dict[str, tuple[dict[str, str], str]] = {
    "empty": ({"latencyP95": 'wallbounce_no_such_metric{service="{{canaryService}}"}'}, "NoData"),
    "nan": ({"consensusConfidence": "0/0"}, "NoData"),
    "string": ({"latencyP95": '"fast"'}, "Error"),
    "many-series": ({"errorRate": 'vector(0) or label_replace(vector(0), "x", "y", "", "")'}, "Error"),
}


def test_faults_never_promote(driver: Driver, proxies: dict[str, FaultProxy], operator: Operator) -> None:
    operator.stop()  # rollouts may name these Prometheus proxies and run their own queries: the operator allows it
    operator.args += ["--allow-query-overrides", *(a for p in proxies.values() for a in ("--prometheus-allow", p.url))]
    operator.start()
    ladder = [{"weight": 1, "duration": "1s", "minRequests": 20}, {"weight": 2, "duration": "1s", "minRequests": 20}]
    names: dict[str, str] = {}
    cases: list[tuple[str, dict[str, Any], str]] = [
        (name, {"queries": queries}, verdict) for name, (queries, verdict) in OVERRIDES.items()]
    cases += [("slow", {"prometheus": {"address": proxies["slow"].url}}, "Error"),
              ("flap", {"prometheus": {"address": proxies["flap"].url}}, "")]
    for name, analysis, _ in cases:
        driver.create_pair(name)
        driver.create_route(name, prefix=name)
        driver.traffic.set(f"{name}-canary", variant="canary", **HEALTHY)
        names[name] = name
        driver.apply(name, phases=ladder, route=name, prefix=name, analysis={"errorLimit": 3, **analysis})
    for name, _, verdict in cases:
        if name == "flap":
            continue
        status = driver.wait_phase(name, "Paused", timeout=90)
        assert status["pauseReason"] == "AnalysisErrors", name
        assert status["analysis"]["verdict"] == verdict, (name, status["analysis"])
        assert (status["step"], status["weight"]) == (1, 1), name  # never promoted
        assert "PhasePromoted" not in driver.reasons(name)
    assert "did not answer in time" in driver.status("slow")["analysis"]["reason"]
    # flapping: it may pass on good ticks, but every promotion follows a Pass and Errors never promote
    driver.wait_status("flap", "the flapping rollout to finish or pause",
                       lambda s: s.get("phase") in ("Completed", "Paused"), timeout=90)
    history = driver.history("flap")
    for entry in history:
        if entry["reason"] == "PhasePromoted":
            assert "passed" in entry["message"]
    verdicts = operator.metrics()
    labels = f'namespace="{driver.namespace}",rollout="flap",verdict="Error"'
    assert f"wallbounce_operator_verdicts_total{{{labels}}}" in verdicts


def test_a_slow_prometheus_never_holds_back_anothers_answers(prometheus: Prometheus,
                                                            proxies: dict[str, FaultProxy]) -> None:
    """The operator bounds the big batched answers it has in flight per Prometheus: a rollout pointed at a slow one
    (every answer 4 s late) must not make the others' answers wait behind it."""
    source = PrometheusSource(timeout=10.0)
    slow_url = proxies["slow"].url
    fast = [Target("faults", "fast", spec("fast", prometheus.url), prometheus.url, "r1")]
    slow = [Target("faults", "slow", spec("slow", slow_url), slow_url, "r1")]
    finished: dict[str, float] = {}

    async def look(targets: list[Target], label: str) -> dict[tuple[str, str], Any]:
        out = await source.observe(targets, time.time(), analysis=False)
        finished[label] = time.monotonic()
        return out

    async def both() -> list[dict[tuple[str, str], Any]]:
        return list(await asyncio.gather(look(slow, "slow"), look(fast, "fast")))

    started = time.monotonic()
    slow_out, fast_out = asyncio.run(both())
    # waiting behind even one slow answer would take 4 s; five of them, two at a time, take 12 s
    assert finished["fast"] - started < 3.0 and finished["slow"] - started >= 12.0
    assert all(o.error is None for o in (*fast_out.values(), *slow_out.values()))
