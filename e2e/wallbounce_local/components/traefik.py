"""Traefik v3.6 (built by ``testbin/``) as the Gateway API data plane: the Kubernetes Gateway provider on for one
namespace, one HTTP entryPoint whose port equals the Gateway listener's, ``ping`` on a separate loopback
entryPoint, no update check, no anonymous usage reports, no provider throttle (weight changes apply as soon as
the watch sees them). How it reaches the service processes: see ``gateway``."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

from .. import procs, testbin
from .base import ProcessComponent


class Traefik(ProcessComponent):
    """``url`` is the Gateway's HTTP entry point; ``port`` (the listener's) is chosen before the Gateway is
    created, since the Gateway must name it."""

    name = "traefik"
    readiness = "answering /ping"

    def __init__(self, workdir: Path, kubeconfig: Path, namespace: str, *, start_timeout: float = 60.0) -> None:
        self.workdir = workdir.resolve()
        super().__init__(self.workdir / "traefik.out", {**os.environ, "KUBECONFIG": str(kubeconfig)})
        self.namespace = namespace
        self.start_timeout = start_timeout
        self.traefik_log = self.workdir / "traefik.log"
        self.port = procs.free_port()
        self.admin_port = 0
        self.attempts = 1  # the Gateway names ``port``: another one would not be served

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self, attempt: int) -> None:
        self.binary = testbin.binary("traefik", part="traefik")
        self.admin_port = procs.free_port()

    def command(self) -> list[str]:
        return [str(self.binary), "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false",
                f"--entrypoints.web.address=127.0.0.1:{self.port}",
                f"--entrypoints.traefik.address=127.0.0.1:{self.admin_port}", "--ping=true",
                "--providers.kubernetesgateway=true", f"--providers.kubernetesgateway.namespaces={self.namespace}",
                "--providers.kubernetesgateway.statusaddress.ip=127.0.0.1",
                "--providers.providersthrottleduration=0s", "--log.level=INFO",
                f"--log.filepath={self.traefik_log}"]  # also marks the process as the stack's (state dir)

    def ready(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ping", timeout=2) as resp:
            return bool(resp.status == 200)

    @property
    def logs(self) -> dict[str, Path]:
        return {self.name: self.traefik_log, f"{self.name} (stdout)": self.log}
