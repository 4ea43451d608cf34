"""``kubectl wallbounce``: the kubectl plugin for WallBounceRollouts.

    kubectl wallbounce list [-A]
    kubectl wallbounce status NAME [--watch] [--timeout 30m]
    kubectl wallbounce promote NAME [--full]
    kubectl wallbounce abort|retry|pause|resume NAME [--wait 30s]

Actions set the ``wallbounce.dev/action`` annotation (never the spec, so GitOps sees no drift); the
operator applies it at most once, records it in ``status.lastAction`` and removes the annotation; the
plugin waits for that answer and prints it (exit 1 when the operator ignored the action, 2 when no
answer came in time).

``status --timeout`` (and ``--watch``) follows the rollout until it is done: exit 0 on Completed or
Promoted, 1 on RolledBack, Aborted or Stalled, 2 when the timeout passes first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from typing import Any

from kubernetes import client, config, watch

from .model import ACTION_ANNOTATION, GROUP, PLURAL, VERSION, parse_duration, parse_time
from .shards import SHARD_LABEL, SHARD_PREFIX, SHARDS_LABEL, shard_of

DONE = {"Completed": 0, "Promoted": 0, "RolledBack": 1, "Aborted": 1}
TIMED_OUT = 2


def _clients(context: str | None) -> tuple[client.CustomObjectsApi, str]:
    """The API for ``context`` (the current one by default) and that context's namespace, as kubectl resolves it."""
    try:
        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
        contexts, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        chosen = next((c for c in contexts or [] if c.get("name") == context), None) if context else active
        namespace = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    except config.ConfigException:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
        namespace = "default"
    return client.CustomObjectsApi(), namespace


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def outcome(obj: dict[str, Any]) -> int | None:
    """The exit code a finished rollout gives (None while it is still under way)."""
    status = obj.get("status") or {}
    meta = obj.get("metadata") or {}
    if status.get("observedGeneration") != meta.get("generation"):
        return None
    phase = status.get("phase")
    if phase in DONE:
        return DONE[phase]
    stalled = next((c for c in status.get("conditions") or [] if c.get("type") == "Stalled"), None)
    return 1 if stalled and stalled.get("status") == "True" else None


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


def shard_owners() -> Any:
    """``owner(namespace, name)``: the operator replica holding the rollout's shard Lease ("-" without sharding, or
    when the Leases cannot be read)."""
    leases: list[Any] = []
    try:
        leases = list(client.CoordinationV1Api().list_lease_for_all_namespaces(
            label_selector=f"{SHARD_LABEL}=shard").items)
    except client.ApiException:
        pass
    holders: dict[int, str] = {}
    count = 0
    for lease in leases:
        labels = lease.metadata.labels or {}
        count = int(labels.get(SHARDS_LABEL, count) or 0)
        index = lease.metadata.name.removeprefix(SHARD_PREFIX)
        if index.isdigit():
            holders[int(index)] = lease.spec.holder_identity or "-"

    def owner(namespace: str, name: str) -> str:
        return holders.get(shard_of(namespace, name, count), "-") if count else "-"

    return owner


def cmd_list(api: client.CustomObjectsApi, namespace: str, all_namespaces: bool) -> int:
    if all_namespaces:
        listed: Any = api.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    else:
        listed = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    items = listed["items"]
    owner = shard_owners()
    rows: list[tuple[str, ...]] = [("NAMESPACE", "NAME", "PHASE", "STEP", "WEIGHT", "VERDICT", "OWNER", "AGE")]
    for obj in items:
        st = obj.get("status") or {}
        rows.append((obj["metadata"]["namespace"], obj["metadata"]["name"], st.get("phase", "-"),
                     f"{st.get('step', '-')}/{st.get('steps', '-')}", _fmt(st.get("weight"), "{}%"),
                     (st.get("analysis") or {}).get("verdict", "-"),
                     owner(obj["metadata"]["namespace"], obj["metadata"]["name"]),
                     _age(obj["metadata"].get("creationTimestamp"))))
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
        f"Phase:       {st.get('phase', 'Pending')}" + (f" ({', '.join(st['pauseReasons'])})"
                                                     if st.get("phase") == "Paused" and st.get("pauseReasons") else ""),
        f"Step:        {st.get('step', '-')}/{st.get('steps', len(spec.get('phases') or []))}"
        f"   dwell since {st.get('stepStartedAt', '-')} ({_age(st.get('stepStartedAt'))} ago)",
        f"Weights:     canary {spec.get('canary', {}).get('service')} {_fmt(weight, '{}%')}   "
        f"stable {spec.get('stable', {}).get('service')} {_fmt(None if weight is None else 100 - weight, '{}%')}"
        + (f"   (asked for {st['desiredWeight']}%)" if st.get("desiredWeight", weight) != weight else ""),
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
    last = st.get("lastAction")
    if last:
        lines.append(f"Last action: {last.get('action')} at {last.get('time')}: {last.get('result')} — "
                     f"{last.get('message', '')}")
    if st.get("consecutiveErrors"):
        lines.append(f"Errors:      {st['consecutiveErrors']} consecutive NoData/Error verdicts")
    conditions = st.get("conditions") or []
    if conditions:
        lines.append("Conditions:  " + ", ".join(f"{c['type']}={c['status']}"
                                                  + (f" ({c['reason']})" if c.get("status") == "True" else "")
                                                  for c in conditions))
    history = st.get("history") or []
    if history:
        lines.append("History:")
        for h in history[-10:]:
            lines.append(f"  {h.get('time')}  {h.get('from') or '-':>11} → {h.get('to'):<11} step {h.get('step')} "
                         f"{h.get('weight')}%  {h.get('reason')}: {h.get('message')}")
    return "\n".join(lines)


def _follow(api: client.CustomObjectsApi, namespace: str, name: str, deadline: float) -> Any:
    """Each new version of the rollout until ``deadline`` (a watch, re-opened when the server closes it)."""
    while (left := deadline - time.monotonic()) > 0:
        stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
            api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
            field_selector=f"metadata.name={name}", timeout_seconds=max(1, int(left)))
        for event in stream:
            if event.get("type") in ("ADDED", "MODIFIED"):
                yield event["object"]
            if time.monotonic() >= deadline:
                return


def cmd_status(api: client.CustomObjectsApi, namespace: str, name: str, watching: bool, timeout: float | None) -> int:
    obj: Any = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    text = render_status(obj)
    print(text, flush=True)
    if not watching and timeout is None:
        return 0
    code = outcome(obj)
    if code is not None:
        return code
    previous = text
    for obj in _follow(api, namespace, name, time.monotonic() + (timeout if timeout is not None else 1e9)):
        text = render_status(obj)
        if text != previous:
            print("\n" + "-" * 80 + "\n" + text, flush=True)
            previous = text
        code = outcome(obj)
        if code is not None:
            return code
    print(f"error: {name} did not finish within {timeout:g}s", file=sys.stderr)
    return TIMED_OUT


def cmd_action(api: client.CustomObjectsApi, namespace: str, name: str, action: str, wait: float) -> int:
    """Request the action, then wait for the operator's answer in status.lastAction."""
    obj: Any = api.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    before = int(((obj.get("status") or {}).get("lastAction") or {}).get("seq") or 0)
    api.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                       {"metadata": {"annotations": {ACTION_ANNOTATION: action}}})
    print(f"wallbouncerollout.{GROUP}/{name} {action} requested", flush=True)
    if wait <= 0:
        return 0
    for obj in _follow(api, namespace, name, time.monotonic() + wait):
        last = (obj.get("status") or {}).get("lastAction") or {}
        if int(last.get("seq") or 0) > before:
            if last.get("result") == "Applied":
                print(f"{action}: {last.get('message', 'applied')}")
                return 0
            print(f"ActionIgnored: {last.get('message', '')}", file=sys.stderr)
            return 1
    print(f"error: no answer from the operator within {wait:g}s (is it running and watching namespace "
          f"{namespace}?); the annotation stays until it is applied", file=sys.stderr)
    return TIMED_OUT


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
    status.add_argument("-w", "--watch", action="store_true", help="follow the rollout until it is done")
    status.add_argument("--timeout", type=_duration, default=None,
                        help="wait at most this long (e.g. 30m) for the rollout to be done; exit 0 on Completed or "
                             "Promoted, 1 on RolledBack, Aborted or Stalled, 2 on timeout")
    acting = argparse.ArgumentParser(add_help=False, parents=[common])
    acting.add_argument("--wait", type=_duration, default=30.0,
                        help="how long to wait for the operator's answer (default 30s; 0: do not wait)")
    promote = sub.add_parser("promote", help="skip to the next step (--full: to the end)", parents=[acting])
    promote.add_argument("name")
    promote.add_argument("--full", action="store_true")
    for verb, text in (("abort", "all traffic back to stable, phase Aborted"), ("retry", "restart a RolledBack or "
                       "Aborted rollout at step 1"), ("pause", "stop promotion where it is"), ("resume", "continue")):
        sub.add_parser(verb, help=text, parents=[acting]).add_argument("name")
    args = parser.parse_args(argv)
    api, default_ns = _clients(args.context)
    namespace = args.namespace or default_ns
    try:
        if args.command == "list":
            return cmd_list(api, namespace, args.all_namespaces)
        if args.command == "status":
            return cmd_status(api, namespace, args.name, args.watch, args.timeout)
        if args.command == "promote":
            return cmd_action(api, namespace, args.name, "promote-full" if args.full else "promote", args.wait)
        return cmd_action(api, namespace, args.name, args.command, args.wait)
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
