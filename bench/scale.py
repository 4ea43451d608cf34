"""Benchmark: how many WallBounceRollouts one operator process carries.

For each N: a real kube-apiserver (fresh), N rollouts each with its own HTTPRoute and two
Deployments, a traffic exporter serving the metrics contract for the 2N Services, a real Prometheus
scraping it, and the operator (one process, all namespaces). After every rollout has started, it
measures over a few analysis intervals: the operator's RSS and CPU, Prometheus queries per analysis
tick, API requests per tick (kube-apiserver's own request counter), and the age of the oldest
evaluation (every rollout must be judged at least once per interval).

    .venv/bin/python bench/scale.py --n 100 1000 [--interval 15] [--ticks 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from kubernetes import client, config

from wallbounce_local import thirdparty
from wallbounce_local.components import Exporter, Operator
from wallbounce_local.controlplane import ControlPlane
from wallbounce_local.crds import install_wallbounce_crd
from wallbounce_local.driver import RolloutDriver
from wallbounce_local.procs import wait_for
from wallbounce_local.prometheus import Prometheus
from wallbounce_local.traffic import ExporterTraffic

NAMESPACES = 10


def metric(text: str, name: str, labels: str = "") -> float:
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", re.M)
    for match in pattern.finditer(text):
        if labels in (match.group(1) or ""):
            total += float(match.group(2))
    return total


def http_text(url: str, ssl_context: Any = None) -> str:
    with urllib.request.urlopen(url, timeout=30, context=ssl_context) as resp:  # noqa: S310 - loopback
        return str(resp.read().decode())


def drivers(api: client.ApiClient, exporter: Exporter, prometheus: str, interval: int) -> list[RolloutDriver[Any]]:
    """One driver per namespace; rollouts are judged every ``interval`` over a minute, and stay at a phase for
    an hour (every rollout stays active, judged every interval, for the whole run)."""
    return [RolloutDriver(api, f"bench-{i}", prometheus=prometheus,
                          traffic=ExporterTraffic(exporter.url, f"bench-{i}", {"rps": 5, "latency": 0.8,
                                                                               "confidence": 0.9}),
                          analysis={"interval": f"{interval}s", "window": "1m"},
                          phases=[{"weight": w, "duration": "1h", "minRequests": 10} for w in (1, 2, 10, 20, 35, 50)])
            for i in range(NAMESPACES)]


def create_objects(api: client.ApiClient, spread: list[RolloutDriver[Any]], n: int) -> None:
    core = client.CoreV1Api(api)
    for driver in spread:
        core.create_namespace({"metadata": {"name": driver.namespace}})

    def one(i: int) -> None:
        driver, name = spread[i % NAMESPACES], f"r{i}"
        driver.create_pair(name, image="x", services=False)
        driver.create_route(name, prefix=name)
        driver.apply(name, prefix=name, route=name)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))


def measure(plane: ControlPlane, operator: Operator, interval: int, ticks: int) -> dict[str, Any]:
    """Over ``ticks`` analysis intervals: the operator's RSS and CPU, and per tick its Prometheus queries, query
    errors and verdicts, the API server's requests, and the oldest evaluation's age."""
    op_metrics = f"{operator.url}/metrics"
    ctx = plane._ssl()  # the admin client certificate: kube-apiserver's /metrics needs it
    proc = psutil.Process(operator.pid)
    before_api = metric(http_text(f"{plane.server}/metrics", ctx), "apiserver_request_total")
    before = http_text(op_metrics)
    cpu0, wall0 = sum(proc.cpu_times()[:2]), time.monotonic()
    lags, rss = [], []
    for _ in range(ticks * 4):
        time.sleep(interval / 4)
        text = http_text(op_metrics)
        lags.append(metric(text, "wallbounce_operator_oldest_evaluation_age_seconds"))
        rss.append(proc.memory_info().rss)
    after = http_text(op_metrics)
    after_api = metric(http_text(f"{plane.server}/metrics", ctx), "apiserver_request_total")
    wall = time.monotonic() - wall0
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    measured_ticks = wall / interval

    def per_tick(name: str) -> float:
        return round((metric(after, name) - metric(before, name)) / measured_ticks, 1)

    return {
        "measured_s": round(wall, 1),
        "rss_mib": round(max(rss) / 2**20, 1),
        "cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        "prometheus_queries_per_tick": per_tick("wallbounce_operator_prometheus_queries_total"),
        "prometheus_query_errors": metric(after, "wallbounce_operator_prometheus_query_errors_total") - metric(
            before, "wallbounce_operator_prometheus_query_errors_total"),
        "api_requests_per_tick": round((after_api - before_api) / measured_ticks, 1),
        "verdicts_per_tick": per_tick("wallbounce_operator_verdicts_total"),
        "oldest_evaluation_age_s_max": round(max(lags), 1),
    }


def run(n: int, interval: int, ticks: int, workdir: Path) -> dict[str, Any]:
    plane = ControlPlane(workdir / "cp")
    exporter: Exporter | None = None
    prom: Prometheus | None = None
    operator: Operator | None = None
    try:
        plane.start()
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))  # type: ignore[no-untyped-call]
        thirdparty.install(api, ["gateway-api"])
        install_wallbounce_crd(api)

        exporter = Exporter(workdir / "exporter.log").start()
        job = {**exporter.scrape_job(), "scrape_interval": "5s", "scrape_timeout": "5s"}
        prom = Prometheus(workdir / "prom", [job], scrape_interval="5s").start()
        spread = drivers(api, exporter, prom.url, interval)
        for i in range(n):
            spread[i % NAMESPACES].healthy(prefix=f"r{i}")
        t0 = time.monotonic()
        create_objects(api, spread, n)
        created_in = time.monotonic() - t0

        operator = Operator(workdir / "operator.log", plane.kubeconfig, tick=None, query_timeout=10).start()

        def started() -> bool:
            return sum(1 for s in spread[0].statuses(cluster_wide=True).values() if s.get("phase")) >= n

        t0 = time.monotonic()
        wait_for("every rollout to start", started, timeout=600, every=2)
        startup = time.monotonic() - t0
        time.sleep(interval * 1.5)  # every rollout has been judged once at least
        return {"n": n, "interval_s": interval, "objects_created_s": round(created_in, 1),
                "all_started_s": round(startup, 1), **measure(plane, operator, interval, ticks)}
    finally:
        for part in (operator, exporter, prom):
            if part is not None:
                part.stop()
        plane.stop()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: no orphan servers
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--interval", type=int, default=15)
    parser.add_argument("--ticks", type=int, default=4, help="analysis intervals to measure over")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = []
    for n in args.n:
        with tempfile.TemporaryDirectory(prefix=f"wb-scale-{n}-") as tmp:
            result = run(n, args.interval, args.ticks, Path(tmp))
        results.append(result)
        print(json.dumps(result), flush=True)
    print()
    print(f"{'N':>6} {'RSS MiB':>8} {'CPU %':>6} {'queries/tick':>12} {'API req/tick':>12} {'verdicts/tick':>13} "
          f"{'oldest eval s':>13}")
    for r in results:
        print(f"{r['n']:>6} {r['rss_mib']:>8} {r['cpu_percent_of_one_core']:>6} {r['prometheus_queries_per_tick']:>12} "
              f"{r['api_requests_per_tick']:>12} {r['verdicts_per_tick']:>13} {r['oldest_evaluation_age_s_max']:>13}")
    if args.json:
        existing = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps(existing + results, indent=2))


if __name__ == "__main__":
    main()
