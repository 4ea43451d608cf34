"""Shell completion through kubectl's own (kubectl ≥ 1.26): kubectl runs ``kubectl_complete-wallbounce ARGS`` with
the words typed after ``kubectl wallbounce`` (the last one being completed, maybe empty) and reads Cobra's
``__complete`` answer: one candidate per line, then ``:<directive>`` (4: no file completion). Candidates: commands,
flags, rollout names (in the namespace and context typed so far), contexts, namespaces, output formats."""

from __future__ import annotations

import os
import sys

from .cli import RESOURCE
from .kubectl import Kubectl, KubectlError

NO_FILE_COMPLETION = 4
COMMANDS = ["list", "get", "status", "promote", "abort", "retry", "pause", "resume", "set", "completion"]
GLOBAL_FLAGS = ["--namespace", "-n", "--context", "--kubeconfig"]
FLAGS = {"list": ["--all-namespaces", "-A", "--output", "-o"], "get": ["--output", "-o", "--watch", "-w", "--timeout"],
         "status": ["--watch", "-w", "--timeout"], "promote": ["--full", "--wait"],
         **{verb: ["--wait"] for verb in ("abort", "retry", "pause", "resume")}}
TAKES_VALUE = {"-n", "--namespace", "--context", "--kubeconfig", "-o", "--output", "--timeout", "--wait"}


def candidates(words: list[str]) -> list[str]:
    """What may come in place of the last word."""
    *done, current = words or [""]
    options: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(done):
        word = done[i]
        if word in TAKES_VALUE and i + 1 < len(done):
            options[word] = done[i + 1]
            i += 2
            continue
        if not word.startswith("-"):
            positional.append(word)
        i += 1
    previous = done[-1] if done else ""
    k = Kubectl(binary=os.environ.get("WALLBOUNCE_KUBECTL", "kubectl"), context=options.get("--context"),
                kubeconfig=options.get("--kubeconfig"))
    if previous in ("-o", "--output"):
        return ["json", "yaml"]
    if previous == "--context":
        return _lines(k, "config", "get-contexts", "-o", "name")
    if previous in ("-n", "--namespace"):
        return [n.removeprefix("namespace/") for n in _lines(k, "get", "namespaces", "-o", "name")]
    if previous in TAKES_VALUE:
        return []
    if current.startswith("-"):
        return GLOBAL_FLAGS + FLAGS.get(positional[0] if positional else "", [])
    if not positional:
        return COMMANDS
    command = positional[0]
    if command == "set" and len(positional) == 1:
        return ["image"]
    wants_name = (command in FLAGS and command != "list" and len(positional) == 1) or (
        command == "set" and len(positional) == 2)
    if not wants_name:
        return []
    namespace = options.get("-n") or options.get("--namespace") or k.namespace()
    return [n.split("/", 1)[-1] for n in _lines(k, "get", RESOURCE, "-n", namespace, "-o", "name")]


def _lines(k: Kubectl, *args: str) -> list[str]:
    try:
        return [line for line in k.run(*args, timeout=10).splitlines() if line]
    except (KubectlError, OSError):
        return []


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0] == "__complete":  # also reachable as `kubectl-wallbounce __complete ...`
        words = words[1:]
    current = words[-1] if words else ""
    for candidate in candidates(words):
        if candidate.startswith(current):
            print(candidate)
    print(f":{NO_FILE_COMPLETION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
