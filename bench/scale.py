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
import os
import re
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from benchkit import create_rollout, install_crds
from kubernetes import client, config

from wallbounce_local import procs
from wallbounce_local.controlplane import ControlPlane
from wallbounce_local.prometheus import Prometheus

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


def post(url: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",  # noqa: S310
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10):  # noqa: S310 - loopback
        pass


def create_objects(api: client.ApiClient, n: int, prometheus: str, interval: int) -> None:
    core = client.CoreV1Api(api)
    for i in range(NAMESPACES):
        core.create_namespace({"metadata": {"name": f"bench-{i}"}})
    analysis = {"prometheus": {"address": prometheus}, "interval": f"{interval}s", "window": "1m"}
    # long dwell: every rollout stays active (judged every interval) for the whole run
    phases = [{"weight": w, "duration": "1h", "minRequests": 10} for w in (1, 2, 10, 20, 35, 50)]

    def one(i: int) -> None:
        create_rollout(api, f"bench-{i % NAMESPACES}", f"r{i}", analysis, phases)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))


def run(n: int, interval: int, ticks: int, workdir: Path) -> dict[str, Any]:
    plane = ControlPlane(workdir / "cp")
    exporter: procs.Process | None = None
    prom: Prometheus | None = None
    operator: procs.Process | None = None
    try:
        plane.start()
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))  # type: ignore[no-untyped-call]
        install_crds(api)

        port = procs.free_port()
        exporter = procs.Process("exporter", [sys.executable, "-m", "wallbounce_local.exporter", "--port", str(port)],
                                 workdir / "exporter.log").start()
        exporter.wait_until(lambda: bool(http_text(f"http://127.0.0.1:{port}/metrics") is not None), 30, "serving")
        for i in range(n):
            for variant in ("stable", "canary"):
                post(f"http://127.0.0.1:{port}/profiles", {"namespace": f"bench-{i % NAMESPACES}",
                                                           "service": f"r{i}-{variant}", "variant": variant,
                                                           "rps": 5, "latency": 0.8, "confidence": 0.9})
        prom = Prometheus(workdir / "prom", [{"job_name": "traffic", "honor_labels": True, "scrape_interval": "5s",
                                              "scrape_timeout": "5s",
                                              "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}],
                          scrape_interval="5s").start()
        t0 = time.monotonic()
        create_objects(api, n, prom.url, interval)
        created_in = time.monotonic() - t0

        mport = procs.free_port()
        env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
        operator = procs.Process("operator", [str(Path(sys.executable).parent / "wallbounce"), "operator",
                                              "--all-namespaces", "--metrics-port", str(mport),
                                              "--metrics-host", "127.0.0.1", "--query-timeout", "10"],
                                 workdir / "operator.log", env=env).start()
        op_metrics = f"http://127.0.0.1:{mport}/metrics"
        operator.wait_until(lambda: "wallbounce_operator" in http_text(op_metrics), 60, "serving metrics")
        objects = client.CustomObjectsApi(api)

        def started() -> int:
            items = objects.list_cluster_custom_object("wallbounce.dev", "v1alpha1", "wallbouncerollouts")["items"]
            return sum(1 for o in items if (o.get("status") or {}).get("phase"))

        t0 = time.monotonic()
        while started() < n:
            if time.monotonic() - t0 > 600:
                raise RuntimeError("not every rollout started within 10 minutes")
            time.sleep(2)
        startup = time.monotonic() - t0
        time.sleep(interval * 1.5)  # every rollout has been judged once at least

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
        queries = metric(after, "wallbounce_operator_prometheus_queries_total") - metric(
            before, "wallbounce_operator_prometheus_queries_total")
        errors = metric(after, "wallbounce_operator_prometheus_query_errors_total") - metric(
            before, "wallbounce_operator_prometheus_query_errors_total")
        verdicts = metric(after, "wallbounce_operator_verdicts_total") - metric(
            before, "wallbounce_operator_verdicts_total")
        return {
            "n": n, "interval_s": interval, "measured_s": round(wall, 1), "objects_created_s": round(created_in, 1),
            "all_started_s": round(startup, 1),
            "rss_mib": round(max(rss) / 2**20, 1),
            "cpu_percent_of_one_core": round(100 * cpu / wall, 1),
            "prometheus_queries_per_tick": round(queries / measured_ticks, 1),
            "prometheus_query_errors": errors,
            "api_requests_per_tick": round((after_api - before_api) / measured_ticks, 1),
            "verdicts_per_tick": round(verdicts / measured_ticks, 1),
            "oldest_evaluation_age_s_max": round(max(lags), 1),
        }
    finally:
        for part in (operator, exporter):
            if part is not None:
                part.stop()
        if prom is not None:
            prom.stop()
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
