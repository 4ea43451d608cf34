"""The operator (``wallbounce_operator``) as a process scoped to some namespaces (or all), with its metrics
and ``/healthz`` on a loopback port that survives restarts, so a test or the stack can kill and restart it."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from .. import procs
from .base import ProcessComponent, python


class Operator(ProcessComponent):
    """``start()`` returns once ``/healthz`` answers; ``start()`` again after ``kill()`` or ``stop()`` restarts it."""

    name = "operator"
    readiness = "healthy (/healthz)"

    def __init__(self, log: Path, kubeconfig: Path | str, *, namespaces: Sequence[str] = (),
                 tick: float | None = 0.25, query_timeout: float = 2.0, env: Mapping[str, str] | None = None,
                 marker: str | None = None, args: Sequence[str] = ()) -> None:
        self.args = list(args)  # more of the operator's flags (--prometheus URL, --guard-period S, …)
        super().__init__(log, {**(env if env is not None else os.environ), "KUBECONFIG": str(kubeconfig)})
        self.namespaces = list(namespaces)
        self.tick = tick
        self.query_timeout = query_timeout
        self.marker = marker
        self.port = 0

    def prepare(self, attempt: int) -> None:
        if not self.port or attempt:
            self.port = procs.free_port()

    def command(self) -> list[str]:
        scope = [a for ns in self.namespaces for a in ("--namespace", ns)] or ["--all-namespaces"]
        return python("-m", "wallbounce_operator.cli", *scope, "--metrics-port", str(self.port),
                      "--metrics-host", "127.0.0.1", *(("--tick", str(self.tick)) if self.tick else ()),
                      "--query-timeout", str(self.query_timeout), *self.args, marker=self.marker)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        return self.healthy()

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:  # noqa: S310 - loopback
            return bool(resp.status == 200)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as resp:  # noqa: S310 - loopback
            return str(resp.read().decode())
