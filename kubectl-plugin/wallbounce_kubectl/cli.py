"""``kubectl wallbounce``: follow and steer WallBounceRollouts.

    kubectl wallbounce list [-A] [-o json|yaml]
    kubectl wallbounce get NAME [-o json|yaml] [-w] [--timeout 30m]     the rollout, its Deployments and route
    kubectl wallbounce status NAME [-w] [--timeout 30m]                 exit 0 done, 1 failed/stalled, 2 timeout
    kubectl wallbounce promote NAME [--full]
    kubectl wallbounce abort|retry|pause|resume NAME [--wait 30s]
    kubectl wallbounce set image NAME [CONTAINER=]IMAGE ...             a new image for the canary Deployment
    kubectl wallbounce completion                                       how to enable shell completion

Global flags, anywhere: ``-n/--namespace``, ``--context``, ``--kubeconfig`` — resolved by kubectl itself (the
namespace defaults to that of the context in use). Actions set the ``wallbounce.dev/action`` annotation (never the
spec, so GitOps sees no drift); the operator applies each at most once, records it in ``status.lastAction`` and
removes the annotation; the plugin waits for that answer and prints it (exit 1 when the operator ignored it, 2 when
no answer came in time). ``--watch`` follows a watch on the rollout (no polling).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from wallbounce_api import ACTION_ANNOTATION, GROUP, PLURAL

from . import output, tree
from .kubectl import Kubectl, KubectlError

RESOURCE = f"{PLURAL}.{GROUP}"
DONE = {"Completed": 0, "Promoted": 0, "RolledBack": 1, "Aborted": 1}
TIMED_OUT = 2
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str) -> float:
    """``30s``, ``1h30m``, ``90`` (seconds)."""
    import re

    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30s, 10m, 1h30m)")
    return sum(float(n) * UNITS[u] for n, u in parts)


def outcome(obj: dict[str, Any]) -> int | None:
    """The exit code a finished rollout gives (None while it is still under way)."""
    status, meta = obj.get("status") or {}, obj.get("metadata") or {}
    if status.get("observedGeneration") != meta.get("generation"):
        return None
    if status.get("phase") in DONE:
        return DONE[status["phase"]]
    stalled = next((c for c in status.get("conditions") or [] if c.get("type") == "Stalled"), None)
    return 1 if stalled and stalled.get("status") == "True" else None


class Plugin:
    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.k, self.ns = kubectl, namespace

    def rollout(self, name: str) -> dict[str, Any]:
        return dict(self.k.json("get", RESOURCE, name, "-n", self.ns))

    def follow(self, name: str, deadline: float) -> Any:
        return self.k.watch(RESOURCE, name, "-n", self.ns, deadline=deadline)

    def list_rollouts(self, all_namespaces: bool, fmt: str | None) -> int:
        scope = ["--all-namespaces"] if all_namespaces else ["-n", self.ns]
        items = self.k.json("get", RESOURCE, *scope)["items"]
        if fmt:
            print(dump({"items": items}, fmt))
        else:
            print(output.list_rows(items, all_namespaces, self.shard_leases()))
        return 0

    def shard_leases(self) -> list[dict[str, Any]]:
        """The operator's shard Leases in any namespace (none when unsharded or not readable by this user)."""
        try:
            return list(self.k.json("get", "leases", "--all-namespaces", "-l", f"{output.SHARD_LABEL}=shard")["items"])
        except KubectlError:
            return []

    def tree_of(self, rollout: dict[str, Any]) -> dict[str, Any]:
        refs = tree.references(rollout)
        listed = self.k.json("get", *refs, "-n", self.ns, "--ignore-not-found") if refs else {"items": []}
        return tree.build(rollout, list(listed.get("items") or []))

    def get(self, name: str, fmt: str | None, watching: bool, timeout: float | None) -> int:
        def show(rollout: dict[str, Any], first: bool) -> None:
            data = self.tree_of(rollout)
            text = dump(data, fmt) if fmt else tree.render(data)
            print(text if first or fmt else "\n" + "-" * 80 + "\n" + text, flush=True)

        if not watching:
            show(self.rollout(name), True)
            return 0
        deadline = time.monotonic() + (timeout if timeout is not None else 1e9)
        for i, rollout in enumerate(self.follow(name, deadline)):
            show(rollout, i == 0)
        return 0 if timeout is None else TIMED_OUT

    def status(self, name: str, watching: bool, timeout: float | None) -> int:
        obj = self.rollout(name)
        text = output.render_status(obj)
        print(text, flush=True)
        if not watching and timeout is None:
            return 0
        code = outcome(obj)
        if code is not None:
            return code
        previous = text
        for obj in self.follow(name, time.monotonic() + (timeout if timeout is not None else 1e9)):
            text = output.render_status(obj)
            if text != previous:
                print("\n" + "-" * 80 + "\n" + text, flush=True)
                previous = text
            code = outcome(obj)
            if code is not None:
                return code
        print(f"error: {name} did not finish within {timeout:g}s", file=sys.stderr)
        return TIMED_OUT

    def action(self, name: str, action: str, wait: float) -> int:
        """Request the action, then wait for the operator's answer in status.lastAction."""
        before = int(((self.rollout(name).get("status") or {}).get("lastAction") or {}).get("seq") or 0)
        self.k.run("annotate", "--overwrite", RESOURCE, name, "-n", self.ns, f"{ACTION_ANNOTATION}={action}")
        print(f"wallbouncerollout.{GROUP}/{name} {action} requested", flush=True)
        if wait <= 0:
            return 0
        for obj in self.follow(name, time.monotonic() + wait):
            last = (obj.get("status") or {}).get("lastAction") or {}
            if int(last.get("seq") or 0) > before:
                if last.get("result") == "Applied":
                    print(f"{action}: {last.get('message', 'applied')}")
                    return 0
                print(f"ActionIgnored: {last.get('message', '')}", file=sys.stderr)
                return 1
        print(f"error: no answer from the operator within {wait:g}s (is it running and watching namespace "
              f"{self.ns}?); the annotation stays until it is applied", file=sys.stderr)
        return TIMED_OUT

    def set_image(self, name: str, images: list[str]) -> int:
        """A new image for the canary Deployment's containers: its next revision starts the ladder again."""
        rollout = self.rollout(name)
        canary = (rollout.get("spec") or {}).get("canary", {}).get("deployment")
        dep = self.k.json("get", "deployments.apps", canary, "-n", self.ns)
        containers = [c["name"] for c in dep["spec"]["template"]["spec"]["containers"]]
        pairs = []
        for item in images:
            container, sep, image = item.rpartition("=")
            if not sep:
                if len(containers) != 1:
                    print(f"error: deployment {canary} has containers {', '.join(containers)}: name one "
                          f"(CONTAINER=IMAGE)", file=sys.stderr)
                    return 1
                container = containers[0]
            elif container != "*" and container not in containers:
                print(f"error: deployment {canary} has no container {container!r} (it has {', '.join(containers)})",
                      file=sys.stderr)
                return 1
            pairs.append(f"{container}={image}")
        self.k.run("set", "image", f"deployments.apps/{canary}", "-n", self.ns, *pairs)
        print(f"deployment.apps/{canary} (the canary of {name}) image set: {', '.join(pairs)}; the rollout starts "
              "at step 1 once the new revision is available")
        return 0


def dump(data: Any, fmt: str) -> str:
    return json.dumps(data, indent=2) if fmt == "json" else output.to_yaml(data)


COMPLETION_HELP = """Shell completion comes through kubectl's own (kubectl 1.26 or later): kubectl asks the program
kubectl_complete-wallbounce, on PATH, for the candidates. pip installs it next to kubectl-wallbounce; with Krew, link
it once:

  ln -sf "$(dirname "$(readlink -f "$(command -v kubectl-wallbounce)")")/kubectl_complete-wallbounce" \\
     "$(dirname "$(command -v kubectl-wallbounce)")/"

then `source <(kubectl completion bash)` (or zsh, fish) completes `kubectl wallbounce <TAB>`: commands, flags,
rollout names, contexts and namespaces."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubectl wallbounce", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    for p, default in ((top, None), (common, argparse.SUPPRESS)):
        p.add_argument("-n", "--namespace", default=default)
        p.add_argument("--context", default=default)
        p.add_argument("--kubeconfig", default=default)
    sub = top.add_subparsers(dest="command", required=True)
    ls = sub.add_parser("list", help="list rollouts", parents=[common])
    ls.add_argument("-A", "--all-namespaces", action="store_true")
    ls.add_argument("-o", "--output", choices=["json", "yaml"])
    get = sub.add_parser("get", help="a rollout with its Deployments and route, as a tree", parents=[common])
    get.add_argument("name")
    get.add_argument("-o", "--output", choices=["json", "yaml"])
    get.add_argument("-w", "--watch", action="store_true", help="print it again at every change (a watch)")
    get.add_argument("--timeout", type=duration, help="with --watch: stop after this long (exit 2)")
    status = sub.add_parser("status", help="a rollout's status page", parents=[common])
    status.add_argument("name")
    status.add_argument("-w", "--watch", action="store_true", help="follow the rollout until it is done")
    status.add_argument("--timeout", type=duration, default=None,
                        help="wait at most this long (e.g. 30m) for the rollout to be done; exit 0 on Completed or "
                             "Promoted, 1 on RolledBack, Aborted or Stalled, 2 on timeout")
    acting = argparse.ArgumentParser(add_help=False, parents=[common])
    acting.add_argument("--wait", type=duration, default=30.0,
                        help="how long to wait for the operator's answer (default 30s; 0: do not wait)")
    promote = sub.add_parser("promote", help="skip to the next step (--full: to the end)", parents=[acting])
    promote.add_argument("name")
    promote.add_argument("--full", action="store_true")
    for verb, text in (("abort", "all traffic back to stable, phase Aborted"), ("retry", "restart a RolledBack or "
                       "Aborted rollout at step 1"), ("pause", "stop promotion where it is"), ("resume", "continue")):
        sub.add_parser(verb, help=text, parents=[acting]).add_argument("name")
    setter = sub.add_parser("set", help="set image: a new image for the canary", parents=[common])
    what = setter.add_subparsers(dest="what", required=True)
    image = what.add_parser("image", help="kubectl wallbounce set image NAME [CONTAINER=]IMAGE ...", parents=[common])
    image.add_argument("name")
    image.add_argument("images", nargs="+", metavar="[CONTAINER=]IMAGE")
    sub.add_parser("completion", help="how to enable shell completion", parents=[common])
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "completion":
        print(COMPLETION_HELP)
        return 0
    k = Kubectl(binary=os.environ.get("WALLBOUNCE_KUBECTL", "kubectl"), context=args.context,
                kubeconfig=args.kubeconfig)
    namespace = args.namespace or k.namespace()
    plugin = Plugin(k, namespace)
    try:
        if args.command == "list":
            return plugin.list_rollouts(args.all_namespaces, args.output)
        if args.command == "get":
            return plugin.get(args.name, args.output, args.watch, args.timeout)
        if args.command == "status":
            return plugin.status(args.name, args.watch, args.timeout)
        if args.command == "set":
            return plugin.set_image(args.name, args.images)
        if args.command == "promote":
            return plugin.action(args.name, "promote-full" if args.full else "promote", args.wait)
        return plugin.action(args.name, args.command, args.wait)
    except KubectlError as exc:
        message = str(exc)
        if exc.not_found and getattr(args, "name", None) and "wallbouncerollout" in message.lower():
            message = f"wallbouncerollout {args.name!r} not found in namespace {namespace!r}"
        print(message if message.startswith("error") else f"error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
