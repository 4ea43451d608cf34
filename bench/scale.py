"""Benchmark: how many WallBounceRollouts the operator carries, on one replica or several sharing shard Leases.

For each N: a real kube-apiserver (fresh), N rollouts each with its own HTTPRoute and two Deployments, a traffic
exporter serving the metrics contract for the 2N Services, a real Prometheus scraping it, and R operator processes
(all namespaces; on ``--shards`` Leases when given). After every rollout has started and the start's transient
has passed (an interval with status writes under 5 % of N; how long that took is reported), it measures over a few
analysis intervals, per replica and in total: RSS and CPU, verdicts, status writes and Prometheus queries per
analysis tick, the API server's requests and writes per tick (its own counters, by verb and resource), and the age
of the oldest evaluation (every rollout must be judged at least once per interval). With ``--failover`` it then
SIGKILLs the replica holding the most shards and measures, under the same load, how long until every shard is held
by a survivor and every rollout is judged on time again. ``--replicas 1 3`` measures one replica, then adds two
(the shards rebalanced) and measures the three, on the same rollouts.

    .venv/bin/python bench/scale.py --n 3000 10000 --interval 30 [--replicas 1 3 --shards 8 --failover] [--json out]
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import datetime as dt
import functools
import json
import re
import signal
import sys
import tempfile
import time
import urllib.parse
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
from wallbounce_operator.shards import SHARD_PREFIX

NAMESPACES = 10
LEASE_NAMESPACE = "wallbounce-system"
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE")


def metric(text: str, name: str, *labels: str) -> float:
    """The sum of ``name``'s samples whose label set contains every one of ``labels`` (``key="value"`` text)."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.e+-]+)$", re.M)
    for match in pattern.finditer(text):
        if all(label in (match.group(1) or "") for label in labels):
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
                          analysis={"interval": f"{interval}s", "window": "2m"},
                          phases=[{"weight": w, "duration": "1h", "minRequests": 10} for w in (1, 2, 10, 20, 35, 50)])
            for i in range(NAMESPACES)]


def create_objects(api: client.ApiClient, spread: list[RolloutDriver[Any]], n: int) -> None:
    core = client.CoreV1Api(api)
    for driver in spread:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=driver.namespace)))

    def one(i: int) -> None:
        driver, name = spread[i % NAMESPACES], f"r{i}"
        driver.create_pair(name, image="x", services=False)
        driver.healthy(prefix=name)  # traffic for the revisions the pair has now
        driver.create_route(name, prefix=name)
        driver.apply(name, prefix=name, route=name)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(n)))


class Sample:
    """One replica's figures over the measured window."""

    def __init__(self, operator: Operator) -> None:
        self.operator, self.proc = operator, psutil.Process(operator.pid)
        self.before = http_text(f"{operator.url}/metrics")
        self.cpu0 = sum(self.proc.cpu_times()[:2])
        self.rss: list[int] = []
        self.lags: list[float] = []
        self.after = ""

    def look(self) -> None:
        self.lags.append(metric(http_text(f"{self.operator.url}/metrics"),
                                "wallbounce_operator_oldest_evaluation_age_seconds"))
        self.rss.append(self.proc.memory_info().rss)

    def finish(self, wall: float, ticks: float) -> dict[str, Any]:
        self.after = http_text(f"{self.operator.url}/metrics")

        def per_tick_of(name: str, *labels: str) -> float:
            return round((metric(self.after, name, *labels) - metric(self.before, name, *labels)) / ticks, 1)

        def per_tick(name: str) -> float:
            return per_tick_of(name)

        return {
            "rss_mib": round(max(self.rss) / 2**20, 1),
            "cpu_percent_of_one_core": round(100 * (sum(self.proc.cpu_times()[:2]) - self.cpu0) / wall, 1),
            "rollouts": int(metric(self.after, "wallbounce_operator_rollouts")),
            "shards_held": int(metric(self.after, "wallbounce_operator_shards_held")),
            "verdicts_per_tick": per_tick("wallbounce_operator_verdicts_total"),
            "status_writes_per_tick": per_tick("wallbounce_operator_status_writes_total"),
            "prometheus_queries_per_tick": per_tick("wallbounce_operator_prometheus_queries_total"),
            "prometheus_query_errors": metric(self.after, "wallbounce_operator_prometheus_query_errors_total")
            - metric(self.before, "wallbounce_operator_prometheus_query_errors_total"),
            "oldest_evaluation_age_s_max": round(max(self.lags), 1),
            "tick_mean_s": {part: self.mean('wallbounce_operator_tick_seconds', f'part="{part}"')
                            for part in ("tick", "analysis_queries", "guard")},
            "reconcile_mean_s": self.mean("wallbounce_operator_reconcile_duration_seconds"),
            "status_writes_per_tick_by_cause": {
                cause: per_tick_of("wallbounce_operator_status_writes_total", f'cause="{cause}"')
                for cause in sorted(set(re.findall(r'wallbounce_operator_status_writes_total\{[^}]*cause="([^"]+)"',
                                                   self.after)))},
        }

    def mean(self, histogram: str, *labels: str) -> float | None:
        """A histogram's mean over the measured window (None: nothing observed)."""
        count = metric(self.after, f"{histogram}_count", *labels) - metric(self.before, f"{histogram}_count", *labels)
        total = metric(self.after, f"{histogram}_sum", *labels) - metric(self.before, f"{histogram}_sum", *labels)
        return round(total / count, 3) if count else None


def status_writes(operators: list[Operator]) -> float:
    return sum(metric(http_text(f"{op.url}/metrics"), "wallbounce_operator_status_writes_total") for op in operators)


def writes_by_cause(operators: list[Operator]) -> dict[str, float]:
    """Status writes so far, summed over the replicas, by cause (the first status field that changed, "first",
    "heartbeat", "events")."""
    found: collections.Counter[str] = collections.Counter()
    pattern = re.compile(r'^wallbounce_operator_status_writes_total\{[^}]*cause="([^"]*)"[^}]*\} ([0-9.e+-]+)$', re.M)
    for op in operators:
        for match in pattern.finditer(http_text(f"{op.url}/metrics")):
            found[match.group(1)] += float(match.group(2))
    return dict(found)


def settle(operators: list[Operator], n: int, interval: int, timeout: float) -> float | None:
    """Wait out the start's transient — each rollout's first writes (started, its first step, the route confirmed,
    its first verdicts) — until three intervals pass with status writes under 5 % of the rollouts per interval (the
    steady state the targets are about; three, because a loaded tick lasts longer than an interval and its writes
    come in bursts); the seconds it took, or None when it did not settle within ``timeout`` (the figures that
    follow are then the transient's)."""
    t0 = time.monotonic()
    before = status_writes(operators)
    while time.monotonic() - t0 < timeout:
        time.sleep(3 * interval)
        after = status_writes(operators)
        if after - before < 0.05 * n * 3:
            return round(time.monotonic() - t0, 1)
        before = after
    return None


def api_counts(plane: ControlPlane) -> dict[str, float]:
    """The API server's own request counters: all requests, writes, writes of Leases, writes of rollout status."""
    text = http_text(f"{plane.server}/metrics", plane._ssl())  # the admin client certificate: /metrics needs it
    writes = sum(metric(text, "apiserver_request_total", f'verb="{v}"') for v in WRITE_VERBS)
    leases = sum(metric(text, "apiserver_request_total", f'verb="{v}"', 'resource="leases"') for v in WRITE_VERBS)
    status = metric(text, "apiserver_request_total", 'verb="PATCH"', 'resource="wallbouncerollouts"',
                    'subresource="status"')
    return {"requests": metric(text, "apiserver_request_total"), "writes": writes, "lease_writes": leases,
            "status_writes": status}


def measure(plane: ControlPlane, operators: list[Operator], interval: int, ticks: int) -> dict[str, Any]:
    """Over ``ticks`` analysis intervals: each replica's figures, their totals, and the API server's."""
    before_api = api_counts(plane)
    samples = [Sample(op) for op in operators]
    wall0 = time.monotonic()
    for _ in range(ticks * 4):
        time.sleep(interval / 4)
        for sample in samples:
            sample.look()
    wall = time.monotonic() - wall0
    measured_ticks = wall / interval
    replicas = [sample.finish(wall, measured_ticks) for sample in samples]
    after_api = api_counts(plane)
    api = {f"api_{k}_per_tick": round((after_api[k] - before_api[k]) / measured_ticks, 1) for k in after_api}
    return {
        "measured_s": round(wall, 1),
        "rss_mib": max(r["rss_mib"] for r in replicas),
        "cpu_percent_of_one_core": round(sum(r["cpu_percent_of_one_core"] for r in replicas), 1),
        "verdicts_per_tick": round(sum(r["verdicts_per_tick"] for r in replicas), 1),
        "status_writes_per_tick": round(sum(r["status_writes_per_tick"] for r in replicas), 1),
        "prometheus_queries_per_tick": round(sum(r["prometheus_queries_per_tick"] for r in replicas), 1),
        "prometheus_query_errors": sum(r["prometheus_query_errors"] for r in replicas),
        "oldest_evaluation_age_s_max": max(r["oldest_evaluation_age_s_max"] for r in replicas),
        **api,
        "per_replica": replicas,
    }


def holders(api: client.ApiClient) -> dict[str, str]:
    """Shard Lease name → holder, for the Leases still within their duration."""
    now = dt.datetime.now(dt.UTC)
    held: dict[str, str] = {}
    leases: Any = client.CoordinationV1Api(api).list_namespaced_lease(LEASE_NAMESPACE)
    for lease in leases.items:
        name, spec = str(lease.metadata.name), lease.spec
        if not name.startswith(SHARD_PREFIX) or not spec.holder_identity or spec.renew_time is None:
            continue
        if (now - spec.renew_time).total_seconds() < (spec.lease_duration_seconds or 15):
            held[name] = str(spec.holder_identity)
    return held


def failover(api: client.ApiClient, operators: list[Operator], interval: int, timeout: float = 300) -> dict[str, Any]:
    """SIGKILL the replica holding the most shards; seconds until every shard is held by a survivor, and until the
    survivors judge every rollout on time again (their oldest evaluation age back within the interval)."""
    held = holders(api)
    ids = [f"op-{i}" for i in range(len(operators))]
    victim = max(range(len(operators)), key=lambda i: sum(1 for h in held.values() if h == ids[i]))
    lost = sorted(name for name, holder in held.items() if holder == ids[victim])
    operators[victim].kill()
    t0 = time.monotonic()
    survivors = [op for i, op in enumerate(operators) if i != victim]
    taken = judged = None
    while time.monotonic() - t0 < timeout and judged is None:
        time.sleep(0.5)
        now = time.monotonic() - t0
        if taken is None:
            current = holders(api)
            if all(current.get(name) not in (None, ids[victim]) for name in lost):
                taken = now
        if taken is not None:
            lags = [metric(http_text(f"{op.url}/metrics"), "wallbounce_operator_oldest_evaluation_age_seconds")
                    for op in survivors]
            if max(lags) <= interval:
                judged = now
    return {"killed": ids[victim], "shards_lost": len(lost),
            "shards_taken_over_s": None if taken is None else round(taken, 1),
            "judged_on_time_again_s": None if judged is None else round(judged, 1)}


def balanced(api: client.ApiClient, count: int, shards: int) -> bool:
    """Every shard held, by exactly ``count`` replicas (each its fair share)."""
    held = holders(api)
    return len(held) == shards and len(set(held.values())) == count


def run(n: int, interval: int, ticks: int, replica_counts: list[int], shards: int, with_failover: bool,
        workdir: Path, query_timeout: float = 30.0, settle_timeout: float = 1200.0) -> list[dict[str, Any]]:
    """One environment of ``n`` rollouts, measured with each number of replicas in turn (replicas are added; with
    shards the Leases are rebalanced first), then the failover of the last measurement's replicas."""
    plane = ControlPlane(workdir / "cp")
    exporter: Exporter | None = None
    prom: Prometheus | None = None
    operators: list[Operator] = []
    # the exporter renders ~45 series per Service (270k at 3,000 rollouts, 900k at 10,000): seconds per scrape
    scrape = "15s" if n <= 3000 else "30s"
    try:
        plane.start()
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))  # type: ignore[no-untyped-call]
        thirdparty.install(api, ["gateway-api"])
        install_wallbounce_crd(api)
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=LEASE_NAMESPACE)))

        exporter = Exporter(workdir / "exporter.log", tick=5.0).start()  # 2N Services advanced every 5 s
        job = {**exporter.scrape_job(), "scrape_interval": scrape, "scrape_timeout": scrape}
        prom = Prometheus(workdir / "prom", [job], scrape_interval=scrape).start()
        spread = drivers(api, exporter, prom.url, interval)
        t0 = time.monotonic()
        create_objects(api, spread, n)
        created_in = time.monotonic() - t0

        def scraped() -> bool:  # the exporter's series are in Prometheus (a scrape of them all fits its timeout)
            query = urllib.parse.urlencode({"query": "count(wallbounce_requests_total)"})
            found = json.loads(http_text(f"{prom.url}/api/v1/query?{query}"))["data"]["result"]
            return bool(found) and float(found[0]["value"][1]) > 0

        wait_for("Prometheus to hold the exporter's series", scraped, timeout=600, every=5)
        sharding = ("--shards", str(shards), "--lease-namespace", LEASE_NAMESPACE) if shards else ()

        def started() -> bool:
            return sum(1 for s in spread[0].statuses(cluster_wide=True).values() if s.get("phase")) >= n

        results = []
        for count in replica_counts:
            t0 = time.monotonic()
            while len(operators) < count:
                i = len(operators)
                operators.append(Operator(workdir / f"operator-{i}.log", plane.kubeconfig, tick=None,
                                          query_timeout=query_timeout,
                                          args=("--prometheus", prom.url, *sharding, "--replica-id", f"op-{i}")))
                operators[-1].start()
            wait_for("every rollout to start", started, timeout=1800, every=15, tolerate=(client.ApiException,))
            if shards:
                wait_for(f"the shards spread over {count} replicas", functools.partial(balanced, api, count, shards),
                         timeout=300, every=2, tolerate=(client.ApiException,))
            ready = time.monotonic() - t0
            time.sleep(interval * 1.5)  # every rollout has been judged once at least by its current owner
            settled = settle(operators, n, interval, settle_timeout)
            causes = writes_by_cause(operators)
            result = {"n": n, "interval_s": interval, "shards": shards, "scrape": scrape,
                      "objects_created_s": round(created_in, 1), "all_started_s": round(ready, 1),
                      "settled_s": settled,
                      "start_writes_per_rollout": {cause: round(count / n, 2) for cause, count in
                                                   sorted(causes.items(), key=lambda kv: -kv[1])},
                      **measure(plane, operators, interval, ticks), "replicas": count}
            try:  # a LIST of every rollout: an API server saturated by the run may time it out
                result["phases"] = dict(collections.Counter(str(st.get("phase")) for st in
                                                            spread[0].statuses(cluster_wide=True).values()))
            except client.ApiException as exc:
                result["phases"] = f"not listed: HTTP {exc.status}"
            results.append(result)
            print(json.dumps(result), flush=True)
        if with_failover and len(operators) > 1:
            results[-1]["failover"] = failover(api, operators, interval)
            print(json.dumps({"failover": results[-1]["failover"]}), flush=True)
        return results
    finally:
        for part in (*operators, exporter, prom):
            if part is not None:
                part.stop()
        plane.stop()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks: no orphan servers
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--interval", type=int, default=30)
    parser.add_argument("--ticks", type=int, default=4, help="analysis intervals to measure over")
    parser.add_argument("--replicas", type=int, nargs="+", default=[1],
                        help="operator processes; several counts are measured in turn on one set of rollouts")
    parser.add_argument("--shards", type=int, default=0, help="shard Leases (0: one replica acts on every rollout)")
    parser.add_argument("--failover", action="store_true", help="then SIGKILL the replica holding the most shards")
    parser.add_argument("--query-timeout", type=float, default=30.0,
                        help="the operator's Prometheus query timeout (the batched answers grow with N)")
    parser.add_argument("--settle-timeout", type=float, default=1200.0,
                        help="seconds to wait for the start's transient to end before measuring")
    parser.add_argument("--json", type=Path, help="also append the results here")
    args = parser.parse_args()
    if max(args.replicas) > 1 and not args.shards:
        parser.error("several replicas need --shards")
    results = []
    for n in args.n:
        with tempfile.TemporaryDirectory(prefix=f"wb-scale-{n}-") as tmp:
            results += run(n, args.interval, args.ticks, sorted(args.replicas), args.shards, args.failover, Path(tmp),
                           args.query_timeout, args.settle_timeout)
    print()
    print(f"{'N':>6} {'R':>2} {'RSS MiB':>8} {'CPU %':>6} {'queries/tick':>12} {'API req/tick':>12} "
          f"{'API writes/tick':>15} {'verdicts/tick':>13} {'oldest eval s':>13}")
    for r in results:
        print(f"{r['n']:>6} {r['replicas']:>2} {r['rss_mib']:>8} {r['cpu_percent_of_one_core']:>6} "
              f"{r['prometheus_queries_per_tick']:>12} {r['api_requests_per_tick']:>12} "
              f"{r['api_writes_per_tick']:>15} {r['verdicts_per_tick']:>13} {r['oldest_evaluation_age_s_max']:>13}")
        for i, rep in enumerate(r["per_replica"]):
            print(f"{'':>6} op-{i} RSS {rep['rss_mib']} MiB, CPU {rep['cpu_percent_of_one_core']} %, "
                  f"{rep['rollouts']} rollouts on {rep['shards_held']} shards, {rep['verdicts_per_tick']} verdicts, "
                  f"{rep['status_writes_per_tick']} status writes, {rep['prometheus_queries_per_tick']} queries "
                  f"per tick, oldest evaluation {rep['oldest_evaluation_age_s_max']} s")
        print(f"{'':>6} settled after {r['settled_s']} s (None: not within --settle-timeout; the figures are the "
              "start's transient)")
        if "failover" in r:
            print(f"{'':>6} failover: {r['failover']}")
    if args.json:
        existing = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps(existing + results, indent=2))


if __name__ == "__main__":
    main()
