"""The traffic exporter (``python -m wallbounce_local.exporter``) as a process: the metrics contract for any
number of fake Services, whose traffic ``traffic.ExporterTraffic`` sets at run time."""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any

from .. import procs
from .base import ProcessComponent, python


class Exporter(ProcessComponent):
    name = "exporter"
    readiness = "serving /metrics"
    start_timeout = 30.0

    def __init__(self, log: Path, tick: float = 0.1) -> None:
        super().__init__(log)
        self.port = 0
        self.tick = tick  # seconds between traffic advances

    def prepare(self, attempt: int) -> None:
        self.port = procs.free_port()

    def command(self) -> list[str]:
        return python("-m", "wallbounce_local.exporter", "--port", str(self.port), "--tick", str(self.tick))

    @property
    def target(self) -> str:
        """``host:port`` for a Prometheus scrape job."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.target}"

    def ready(self) -> bool:
        self.metrics()  # an empty exposition is still an answer
        return True

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as resp:  # noqa: S310 - loopback
            return str(resp.read().decode())

    def scrape_job(self) -> dict[str, Any]:
        """The series carry their own namespace and service labels: keep them (``honor_labels``)."""
        return {"job_name": "traffic", "honor_labels": True, "static_configs": [{"targets": [self.target]}]}
