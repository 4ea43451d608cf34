"""The provider simulators (``python -m wallbounce_sim``) of one variant: the OpenAI, Gemini and Anthropic wire
formats on one loopback port, scripted at run time through ``/_sim/script`` (``traffic.SimulatorTraffic``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .. import procs
from ..traffic import VENDORS
from ..web import http_json
from .base import ProcessComponent, python


class Simulators(ProcessComponent):
    readiness = "answering /_sim/stats"
    start_timeout = 30.0

    def __init__(self, variant: str, log: Path, *, latency_s: float = 0.05, marker: str | None = None) -> None:
        super().__init__(log)
        self.name = f"simulators-{variant}"
        self.variant = variant
        self.script: dict[str, Any] = {vendor: {"latency_s": latency_s} for vendor in VENDORS}
        self.marker = marker
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def prepare(self, attempt: int) -> None:
        self.port = procs.free_port()

    def command(self) -> list[str]:
        return python("-m", "wallbounce_sim", "--host", "127.0.0.1", "--port", str(self.port),
                      "--script", json.dumps(self.script), marker=self.marker)

    def ready(self) -> bool:
        return http_json(f"{self.url}/_sim/stats") is not None
