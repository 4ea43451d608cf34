"""The Prometheus helper runs a real Prometheus that scrapes a real /metrics endpoint."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from wallbounce_local import procs
from wallbounce_local.prometheus import Prometheus, static_job

pytestmark = pytest.mark.integration


async def test_scrapes_an_aiohttp_metrics_endpoint(prometheus_factory: Callable[..., Prometheus]) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("wallbounce_selftest_value", "a value set by the test", ["variant"], registry=registry)
    gauge.labels("canary").set(42.5)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = procs.free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        prom = await asyncio.to_thread(
            prometheus_factory,
            [static_job("selftest", [f"127.0.0.1:{port}"], {"namespace": "llm", "service": "techsapo-canary"})],
        )
        result: list[dict[str, Any]] = await asyncio.to_thread(
            procs.wait_for, "the first scrape", lambda: prom.query('wallbounce_selftest_value{variant="canary"}'), 20)
        assert len(result) == 1
        labels = result[0]["metric"]
        assert isinstance(labels, dict)
        assert labels["namespace"] == "llm"
        assert labels["service"] == "techsapo-canary"
        value = result[0]["value"]
        assert isinstance(value, list)
        assert float(value[1]) == 42.5

        # a new value reaches Prometheus on the next scrape
        gauge.labels("canary").set(7)

        def seven() -> list[dict[str, Any]]:
            found = prom.query("wallbounce_selftest_value")
            return found if found and float(found[0]["value"][1]) == 7 else []

        result = await asyncio.to_thread(procs.wait_for, "the new value", seven, 20)
        assert float(result[0]["value"][1]) == 7
    finally:
        await runner.cleanup()


def test_a_missing_prometheus_binary_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLBOUNCE_PROMETHEUS", str(tmp_path / "no-such-prometheus"))
    server = Prometheus(tmp_path / "p", [])
    with pytest.raises(procs.StartError) as failure:
        server.start()
    assert failure.value.component == "prometheus"
    assert "no-such-prometheus" in str(failure.value)
    assert os.listdir(tmp_path / "p")  # the config was written, and nothing was left running
    assert procs.pids_mentioning(str(tmp_path / "p")) == []
