"""etcd (built by ``testbin/``) on two free loopback ports, its data under the state directory, no fsync."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

from .. import procs
from .base import ProcessComponent


class Etcd(ProcessComponent):
    name = "etcd"
    readiness = "healthy"

    def __init__(self, binary: Path, data: Path, log: Path, *, start_timeout: float = 90.0) -> None:
        super().__init__(log)
        self.binary = binary
        self.data = data
        self.start_timeout = start_timeout
        self.client_url = self.peer_url = ""

    def prepare(self, attempt: int) -> None:
        self.client_url = f"http://127.0.0.1:{procs.free_port()}"
        self.peer_url = f"http://127.0.0.1:{procs.free_port()}"
        shutil.rmtree(self.data, ignore_errors=True)

    def command(self) -> list[str]:
        return [str(self.binary), "--name=default", f"--data-dir={self.data}",
                f"--listen-client-urls={self.client_url}", f"--advertise-client-urls={self.client_url}",
                f"--listen-peer-urls={self.peer_url}", f"--initial-advertise-peer-urls={self.peer_url}",
                f"--initial-cluster=default={self.peer_url}", "--unsafe-no-fsync=true", "--log-level=warn"]

    def ready(self) -> bool:
        with urllib.request.urlopen(f"{self.client_url}/health", timeout=5) as resp:  # noqa: S310 - loopback
            return bool(json.loads(resp.read()).get("health") == "true")
