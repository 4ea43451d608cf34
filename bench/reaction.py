"""Benchmark: reaction time — from the moment a canary's breach is queryable in Prometheus to the
route showing canary weight 0 (Emergency rollback).

A real kube-apiserver, a traffic exporter, a real Prometheus (1 s scrapes) and the operator process.
Per analysis interval, ``--trials`` rollouts sit healthy at the 1 % phase; each one's canary starts
failing (50 % errors) at a random moment within the interval. A poller marks when Prometheus first
shows the canary's error ratio over the window above the 0.8 % rollback limit, and a watch on the
HTTPRoutes marks when the canary weight becomes 0.

    .venv/bin/python bench/reaction.py [--intervals 5 30] [--trials 20]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchkit import create_rollout, install_crds
from kubernetes import client, config, watch

from wallbounce_local import procs
from wallbounce_local.controlplane import ControlPlane
from wallbounce_local.prometheus import Prometheus

WINDOW = "10s"


def post(url: str, body: dict[str, Any]) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",  # noqa: S310 - loopback
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10):  # noqa: S310
        pass


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_interval(api: client.ApiClient, prom: Prometheus, exporter: str, interval: int, trials: int) -> list[float]:
    ns = f"react-{interval}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    objects = client.CustomObjectsApi(api)
    analysis = {"prometheus": {"address": prom.url}, "interval": f"{interval}s", "window": WINDOW}
    for i in range(trials):
        name = f"t{i}"
        for variant in ("stable", "canary"):
            post(f"{exporter}/profiles", {"namespace": ns, "service": f"{name}-{variant}", "variant": variant,
                                          "rps": 100, "errorRatio": 0, "latency": 0.8, "confidence": 0.9})
        create_rollout(api, ns, name, analysis, [{"weight": 1, "duration": "1h", "minRequests": 10}, {"weight": 50}])
    # wait until every rollout has been judged healthy once
    deadline = time.monotonic() + interval * 3 + 60
    while time.monotonic() < deadline:
        items = objects.list_namespaced_custom_object("wallbounce.dev", "v1alpha1", ns, "wallbouncerollouts")["items"]
        if all((o.get("status") or {}).get("analysis", {}).get("verdict") in ("Pass", "Hold") for o in items):
            break
        time.sleep(0.5)

    zero_at: dict[str, float] = {}
    w = watch.Watch()

    def watch_routes() -> None:
        for event in w.stream(objects.list_namespaced_custom_object, "gateway.networking.k8s.io", "v1", ns,
                              "httproutes", timeout_seconds=interval * 4 + 60):
            obj = event["object"]
            if obj["spec"]["rules"][0]["backendRefs"][1]["weight"] == 0 and obj["metadata"]["name"] not in zero_at:
                if obj["metadata"]["name"] in broken:
                    zero_at[obj["metadata"]["name"]] = time.time()
            if len(zero_at) == trials:
                w.stop()

    broken: dict[str, float] = {}
    watcher = threading.Thread(target=watch_routes, daemon=True)
    watcher.start()
    start = time.time()
    offsets = sorted((random.uniform(0, interval), f"t{i}") for i in range(trials))
    visible_at: dict[str, float] = {}
    query = (f'sum by (service) (increase(wallbounce_requests_total{{namespace="{ns}",outcome="error"}}[{WINDOW}]))'
             f' / sum by (service) (increase(wallbounce_requests_total{{namespace="{ns}"}}[{WINDOW}])) > 0.008')
    pending = list(offsets)
    deadline = time.time() + interval * 3 + 60
    while (len(visible_at) < trials or len(zero_at) < trials) and time.time() < deadline:
        now = time.time()
        while pending and now - start >= pending[0][0]:
            _, name = pending.pop(0)
            post(f"{exporter}/profiles", {"namespace": ns, "service": f"{name}-canary", "errorRatio": 0.5})
            broken[name] = now
        for sample in prom.query(query):
            name = sample["metric"]["service"].removesuffix("-canary")
            if name in broken and name not in visible_at:
                visible_at[name] = time.time()
        time.sleep(0.1)
    w.stop()
    delays = [zero_at[n] - visible_at[n] for n in visible_at if n in zero_at]
    if len(delays) < trials:
        print(f"warning: {trials - len(delays)} trials at {interval}s did not complete", file=sys.stderr)
    return delays


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: no orphan servers
    parser = argparse.ArgumentParser()
    parser.add_argument("--intervals", type=int, nargs="+", default=[5, 30])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-reaction-") as tmp:
        work = Path(tmp)
        plane = ControlPlane(work / "cp")
        parts: list[Any] = []
        try:
            plane.start()
            api = config.new_client_from_config(config_file=str(plane.kubeconfig))  # type: ignore[no-untyped-call]
            install_crds(api)
            port = procs.free_port()
            exporter = procs.Process("exporter", [sys.executable, "-m", "wallbounce_local.exporter", "--port",
                                                  str(port)], work / "exporter.log").start()
            parts.append(exporter)
            exporter.wait_until(lambda: procs.pid_alive(exporter.pid or 0) and _up(port), 30, "serving")
            prom = Prometheus(work / "prom", [{"job_name": "traffic", "honor_labels": True,
                                               "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}]).start()
            parts.append(prom)
            mport = procs.free_port()
            operator = procs.Process("operator", [str(Path(sys.executable).parent / "wallbounce"), "operator",
                                                  "--all-namespaces", "--metrics-port", str(mport),
                                                  "--metrics-host", "127.0.0.1", "--query-timeout", "3"],
                                     work / "operator.log", env={**os.environ, "KUBECONFIG": str(plane.kubeconfig)})
            parts.append(operator.start())
            print(f"{'interval':>8} {'trials':>6} {'p50 s':>6} {'p95 s':>6} {'max s':>6} {'target (p95)':>13}")
            for interval in args.intervals:
                delays = run_interval(api, prom, f"http://127.0.0.1:{port}", interval, args.trials)
                target = interval + 2
                p95 = percentile(delays, 0.95)
                print(f"{interval:>7}s {len(delays):>6} {statistics.median(delays):>6.2f} {p95:>6.2f} "
                      f"{max(delays):>6.2f} {'≤ ' + str(target) + ' s ' + ('met' if p95 <= target else 'MISSED'):>13}",
                      flush=True)
        finally:
            for part in reversed(parts):
                part.stop()
            plane.stop()


def _up(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        return bool(resp.status == 200)


if __name__ == "__main__":
    main()
