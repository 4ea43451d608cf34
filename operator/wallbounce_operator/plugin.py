"""``kubectl wallbounce``: the kubectl plugin for WallBounceRollouts.

    kubectl wallbounce list [-A]
    kubectl wallbounce status NAME [--watch]
    kubectl wallbounce promote NAME [--full]
    kubectl wallbounce abort|retry|pause|resume NAME

Actions set the ``wallbounce.dev/action`` annotation (never the spec, so GitOps sees no drift); the
operator performs them, removes the annotation and records an event.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any

from kubernetes import client, config

from .model import ACTION_ANNOTATION, GROUP, PLURAL, VERSION, parse_time


def _clients(context: str | None) -> tuple[client.CustomObjectsApi, str]:
    try:
        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
        _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        namespace = "default"
    return client.CustomObjectsApi(), namespace


def _age(ts: str | None) -> str:
    when = parse_time(ts)
    if when is None:
        return "-"
    secs = int((dt.datetime.now(dt.UTC) - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if secs >= size:
            return f"{secs // size}{unit}"
    return f"{secs}s"


def _fmt(value: Any, pattern: str = "{}") -> str:
    return "-" if value is None else pattern.format(value)


def cmd_list(api: client.CustomObjectsApi, namespace: str, all_namespaces: bool) -> int:
    if all_namespaces:
        listed: Any = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    else:
        listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    items = listed["items"]
    rows: list[tuple[str, ...]] = [("NAMESPACE", "NAME", "PHASE", "STEP", "WEIGHT", "VERDICT", "AGE")]
    for obj in items:
        st = obj.get("status") or {}
        rows.append((obj["metadata"]["namespace"], obj["metadata"]["name"], st.get("phase", "-"),
                     f"{st.get('step', '-')}/{st.get('steps', '-')}", _fmt(st.get("weight"), "{}%"),
                     (st.get("analysis") or {}).get("verdict", "-"), _age(obj["metadata"].get("creationTimestamp"))))
    if not all_namespaces:
        rows = [r[1:] for r in rows]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("   ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def render_status(obj: dict[str, Any]) -> str:
    meta, spec, st = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
    weight = st.get("weight")
    lines = [
        f"Name:        {meta['namespace']}/{meta['name']}",
        f"Phase:       {st.get('phase', 'Pending')}" + (f" ({st['pauseReason']})" if st.get("pauseReason") else ""),
        f"Step:        {st.get('step', '-')}/{st.get('steps', len(spec.get('phases') or []))}"
        f"   dwell since {st.get('stepStartedAt', '-')} ({_age(st.get('stepStartedAt'))} ago)",
        f"Weights:     canary {spec.get('canary', {}).get('service')} {_fmt(weight, '{}%')}   "
        f"stable {spec.get('stable', {}).get('service')} {_fmt(None if weight is None else 100 - weight, '{}%')}",
        f"Ladder:      {' → '.join(str(p.get('weight')) + '%' for p in spec.get('phases') or [])}",
        f"Message:     {st.get('message', '-')}",
    ]
    a = st.get("analysis")
    if a:
        lines += [
            f"Analysis:    {a.get('verdict')} at {a.get('time')}: {a.get('reason', '')}",
            f"             requests {_fmt(a.get('requests'), '{:.0f}')}   error rate "
            f"{_fmt(a.get('errorRate'), '{:.3%}')} [{_fmt(a.get('errorRateLower'), '{:.3%}')}, "
            f"{_fmt(a.get('errorRateUpper'), '{:.3%}')}]   p95 {_fmt(a.get('latencyP95'), '{:.3f}s')}   "
            f"confidence {_fmt(a.get('consensusConfidence'), '{:.3f}')}   "
            f"cost/request {_fmt(a.get('costPerRequest'), '${:.5f}')}",
        ]
    if st.get("consecutiveErrors"):
        lines.append(f"Errors:      {st['consecutiveErrors']} consecutive NoData/Error verdicts")
    conditions = st.get("conditions") or []
    if conditions:
        lines.append("Conditions:  " + ", ".join(f"{c['type']}={c['status']}" for c in conditions))
    history = st.get("history") or []
    if history:
        lines.append("History:")
        for h in history[-10:]:
            lines.append(f"  {h.get('time')}  {h.get('from') or '-':>11} → {h.get('to'):<11} step {h.get('step')} "
                         f"{h.get('weight')}%  {h.get('reason')}: {h.get('message')}")
    return "\n".join(lines)


def cmd_status(api: client.CustomObjectsApi, namespace: str, name: str, watch: bool, interval: float) -> int:
    previous = None
    while True:
        obj: Any = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        text = render_status(obj)
        if text != previous:
            if previous is not None:
                print("\n" + "-" * 80)
            print(text, flush=True)
            previous = text
        if not watch:
            return 0
        time.sleep(interval)


def cmd_action(api: client.CustomObjectsApi, namespace: str, name: str, action: str) -> int:
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                       {"metadata": {"annotations": {ACTION_ANNOTATION: action}}})
    print(f"wallbouncerollout.{GROUP}/{name} {action} requested")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubectl wallbounce", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--namespace")
    parser.add_argument("--context")
    # -n/--context also after the subcommand, as kubectl users type them
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=argparse.SUPPRESS)
    common.add_argument("--context", default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list rollouts", parents=[common])
    ls.add_argument("-A", "--all-namespaces", action="store_true")
    status = sub.add_parser("status", help="show a rollout", parents=[common])
    status.add_argument("name")
    status.add_argument("-w", "--watch", action="store_true")
    status.add_argument("--interval", type=float, default=2.0, help=argparse.SUPPRESS)
    promote = sub.add_parser("promote", help="skip to the next phase (--full: to the end)", parents=[common])
    promote.add_argument("name")
    promote.add_argument("--full", action="store_true")
    for verb, text in (("abort", "weights back to stable, phase Aborted"), ("retry", "restart a RolledBack or "
                       "Aborted rollout at phase 1"), ("pause", "hold where it is"), ("resume", "continue")):
        sub.add_parser(verb, help=text, parents=[common]).add_argument("name")
    args = parser.parse_args(argv)
    api, default_ns = _clients(args.context)
    namespace = args.namespace or default_ns
    try:
        if args.command == "list":
            return cmd_list(api, namespace, args.all_namespaces)
        if args.command == "status":
            return cmd_status(api, namespace, args.name, args.watch, args.interval)
        if args.command == "promote":
            return cmd_action(api, namespace, args.name, "promote-full" if args.full else "promote")
        return cmd_action(api, namespace, args.name, args.command)
    except client.ApiException as exc:
        reason = exc.reason or ""
        if exc.status == 404:
            reason = f"wallbouncerollout {getattr(args, 'name', '')!r} not found in namespace {namespace!r}"
        print(f"error: {reason}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
