"""``wallbounce-operator``: the console script that runs the WallBounceRollout operator (``python -m
wallbounce_operator.cli`` too). The service has its own, ``wallbounce-service``, in its own distribution."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from pathlib import Path


def _operator(args: argparse.Namespace) -> int:
    from . import memory

    memory.limit_arenas()  # before any thread starts

    import kopf

    from . import handlers  # noqa: F401 - registers the handlers

    notifications = None
    if args.notifications:
        from .notifications import Config

        try:
            notifications = Config.load(args.notifications)
        except ValueError as exc:
            print(f"wallbounce-operator: {exc}", file=sys.stderr)
            return 2
    json_logs = args.log_format == "json"
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat.JSON if json_logs else kopf.LogFormat.FULL)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    if not args.verbose:  # Kopf reports every watch event's handler at INFO: too loud for thousands
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    memo = kopf.Memo(metrics_port=args.metrics_port, metrics_host=args.metrics_host, tick=args.tick,
                     query_timeout=args.query_timeout, prometheus=args.prometheus,
                     prometheus_allow=tuple(args.prometheus_allow or ()),
                     allow_query_overrides=args.allow_query_overrides, guard_period=args.guard_period,
                     heartbeat=args.heartbeat, shards=args.shards, replica_id=args.replica_id,
                     lease_namespace=args.lease_namespace, lease_duration=args.lease_duration,
                     namespaced=bool(args.namespace), namespaces=tuple(args.namespace or ()),
                     notifications=notifications)
    namespaces = args.namespace or []
    kopf.run(standalone=True, clusterwide=not namespaces, namespaces=namespaces, memo=memo)
    return 0


def build_parser() -> argparse.ArgumentParser:
    op = argparse.ArgumentParser(prog="wallbounce-operator", description="Run the WallBounceRollout operator.")
    scope = op.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", action="append", help="watch only this namespace (repeatable)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch every namespace (default)")
    op.add_argument("--metrics-port", type=int, default=8080, help="port of /metrics and /healthz (default 8080)")
    op.add_argument("--metrics-host", default="0.0.0.0", help="address of /metrics and /healthz")  # noqa: S104
    op.add_argument("--log-format", choices=["json", "text"], default="text")
    op.add_argument("--verbose", "-v", action="store_true")
    op.add_argument("--tick", type=float, default=1.0, help=argparse.SUPPRESS)
    op.add_argument("--query-timeout", type=float, default=5.0, help="Prometheus query timeout in seconds")
    op.add_argument("--prometheus", default="",
                    help="the Prometheus of rollouts that name none (spec.analysis.prometheus.address), and the only "
                         "one allowed unless --prometheus-allow adds others")
    op.add_argument("--prometheus-allow", action="append", metavar="URL",
                    help="another Prometheus base URL rollouts may name (repeatable)")
    op.add_argument("--guard-period", type=float, default=2.0,
                    help="seconds between guard looks (a hard breach is rolled back within about this long of being "
                         "visible in Prometheus, whatever a rollout's analysis interval)")
    op.add_argument("--shards", type=int, default=0,
                    help="partition the rollouts into this many shards held on Leases, so several replicas share "
                         "them and take over a dead one's (0: one replica acts on every rollout)")
    op.add_argument("--replica-id", default=os.environ.get("POD_NAME") or socket.gethostname(),
                    help="this replica's identity in the Leases (default $POD_NAME, else the host name)")
    op.add_argument("--lease-namespace", default=os.environ.get("POD_NAMESPACE", "default"),
                    help="the namespace of the shard Leases (default $POD_NAMESPACE)")
    op.add_argument("--lease-duration", type=float, default=15.0,
                    help="seconds a shard's Lease lasts without renewal (a dead replica's shards are taken over "
                         "after about this long)")
    op.add_argument("--heartbeat", type=float, default=720.0,
                    help="seconds between status writes of a rollout whose visible state does not change")
    op.add_argument("--allow-query-overrides", action="store_true",
                    help="let rollouts run their own PromQL (spec.analysis.queries), each within its time budget")
    op.add_argument("--notifications", type=Path, metavar="FILE",
                    help="notify rollout events through Apprise URLs: targets, routes, per-namespace ConfigMap (YAML)")
    return op


def main(argv: list[str] | None = None) -> int:
    return _operator(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
