"""Benchmark: reaction time — from the moment a canary's breach is queryable in Prometheus to the route showing
canary weight 0 (Emergency rollback), at analysis intervals of 5 s, 30 s and 5 minutes: the guard looks every
``--guard-period`` seconds (the operator's default, 2 s) whatever the interval.

A real kube-apiserver, a traffic exporter, a real Prometheus (1 s scrapes) and the operator process. Per analysis
interval, ``--trials`` rollouts sit healthy at the 1 % step; each one's canary starts failing (50 % errors) at a
random moment within a minute (the guard does not wait for the interval). A poller marks when Prometheus first shows
the canary's error ratio over the window above the 0.8 % rollback limit, and a watch on the HTTPRoutes marks when
the canary weight becomes 0. Target: p95 ≤ 5 s at every interval.

    .venv/bin/python bench/reaction.py [--intervals 5 30 300] [--trials 20] [--guard-period 2]
"""

from __future__ import annotations

import argparse
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

from wallbounce_api.metrics import NAMESPACE, OUTCOME, REQUESTS_TOTAL, SERVICE, Outcome
from wallbounce_local import thirdparty
from wallbounce_local.components import Exporter, Operator
from wallbounce_local.controlplane import ControlPlane
from wallbounce_local.crds import install_wallbounce_crd
from wallbounce_local.driver import GATEWAY_GROUP, GATEWAY_VERSION, RolloutDriver
from wallbounce_local.procs import WaitTimeout, wait_for
from wallbounce_local.prometheus import Prometheus
from wallbounce_local.traffic import ExporterTraffic

WINDOW = "10s"
SPREAD = 60  # seconds over which the breaches start
TARGET = 5.0  # seconds, p95
HEALTHY = {"rps": 100, "errorRatio": 0, "latency": 0.8, "confidence": 0.9}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def healthy_rollouts(api: client.ApiClient, prom: Prometheus, exporter: Exporter, interval: int,
                     trials: int) -> RolloutDriver[ExporterTraffic]:
    """``trials`` rollouts in a namespace of their own, healthy at the 1 % phase, each judged once."""
    ns = f"react-{interval}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": ns}})
    driver = RolloutDriver(api, ns, prometheus=prom.url, traffic=ExporterTraffic(exporter.url, ns, HEALTHY),
                           analysis={"interval": f"{interval}s", "window": WINDOW})
    for i in range(trials):
        name = f"t{i}"
        driver.healthy(prefix=name)
        driver.create_pair(name, image="x", services=False)
        driver.create_route(name, prefix=name)
        driver.apply(name, prefix=name, route=name,
                     phases=[{"weight": 1, "duration": "1h", "minRequests": 10}, {"weight": 50}])

    def carried() -> bool:
        return all(s.get("weight") == 1 for s in driver.statuses().values())

    try:
        wait_for("every route at 1 %", carried, 120, every=0.5)
    except WaitTimeout:
        pass  # measured anyway: the trials that never went healthy show as incomplete
    return driver


def run_interval(api: client.ApiClient, prom: Prometheus, exporter: Exporter, interval: int,
                 trials: int) -> list[float]:
    driver = healthy_rollouts(api, prom, exporter, interval, trials)
    ns = driver.namespace
    zero_at: dict[str, float] = {}
    broken: dict[str, float] = {}
    w = watch.Watch()

    def watch_routes() -> None:
        for event in w.stream(driver.objects.list_namespaced_custom_object, GATEWAY_GROUP, GATEWAY_VERSION, ns,
                              "httproutes", timeout_seconds=SPREAD * 4 + 60):
            obj = event["object"]
            if obj["spec"]["rules"][0]["backendRefs"][1]["weight"] == 0 and obj["metadata"]["name"] not in zero_at:
                if obj["metadata"]["name"] in broken:
                    zero_at[obj["metadata"]["name"]] = time.time()
            if len(zero_at) == trials:
                w.stop()

    watcher = threading.Thread(target=watch_routes, daemon=True)
    watcher.start()
    start = time.time()
    pending = sorted((random.uniform(0, SPREAD), f"t{i}") for i in range(trials))
    visible_at: dict[str, float] = {}
    errors = f'{REQUESTS_TOTAL}{{{NAMESPACE}="{ns}",{OUTCOME}="{Outcome.ERROR}"}}'
    query = (f"sum by ({SERVICE}) (increase({errors}[{WINDOW}]))"
             f' / sum by ({SERVICE}) (increase({REQUESTS_TOTAL}{{{NAMESPACE}="{ns}"}}[{WINDOW}])) > 0.008')

    def tick() -> bool:
        """Break the canaries whose moment has come; mark breaches as Prometheus first shows them."""
        now = time.time()
        while pending and now - start >= pending[0][0]:
            _, name = pending.pop(0)
            driver.traffic.set(f"{name}-canary", errorRatio=0.5)
            broken[name] = now
        for sample in prom.query(query):
            name = sample["metric"][SERVICE].removesuffix("-canary")
            if name in broken and name not in visible_at:
                visible_at[name] = time.time()
        return len(visible_at) == trials and len(zero_at) == trials

    try:
        wait_for("every breach seen and every route at 0", tick, SPREAD * 3 + 60, every=0.1)
    except WaitTimeout:
        pass  # reported below
    w.stop()
    delays = [zero_at[n] - visible_at[n] for n in visible_at if n in zero_at]
    if len(delays) < trials:
        print(f"warning: {trials - len(delays)} trials at {interval}s did not complete", file=sys.stderr)
    return delays


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: no orphan servers
    parser = argparse.ArgumentParser()
    parser.add_argument("--intervals", type=int, nargs="+", default=[5, 30, 300])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--guard-period", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-reaction-") as tmp:
        work = Path(tmp)
        plane = ControlPlane(work / "cp")
        parts: list[Any] = []
        try:
            plane.start()
            api = config.new_client_from_config(config_file=str(plane.kubeconfig))  # type: ignore[no-untyped-call]
            thirdparty.install(api, ["gateway-api"])
            install_wallbounce_crd(api)
            exporter = Exporter(work / "exporter.log").start()
            parts.append(exporter)
            prom = Prometheus(work / "prom", [exporter.scrape_job()]).start()
            parts.append(prom)
            parts.append(Operator(work / "operator.log", plane.kubeconfig, tick=None, query_timeout=3,
                                  args=("--prometheus", prom.url, "--guard-period", str(args.guard_period))).start())
            print(f"{'interval':>8} {'trials':>6} {'p50 s':>6} {'p95 s':>6} {'max s':>6} {'target (p95)':>13}")
            for interval in args.intervals:
                delays = run_interval(api, prom, exporter, interval, args.trials)
                p95 = percentile(delays, 0.95)
                verdict = "met" if p95 <= TARGET else "MISSED"
                print(f"{interval:>7}s {len(delays):>6} {statistics.median(delays):>6.2f} {p95:>6.2f} "
                      f"{max(delays):>6.2f} {'≤ ' + f'{TARGET:g}' + ' s ' + verdict:>13}", flush=True)
        finally:
            for part in reversed(parts):
                part.stop()
            plane.stop()


if __name__ == "__main__":
    main()
