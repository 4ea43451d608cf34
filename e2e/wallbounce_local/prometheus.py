"""A real Prometheus server (Debian's ``prometheus`` package) on a free loopback port, with a scrape
configuration given by the caller, for tests and the local demo.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from . import procs


class PrometheusNotInstalled(RuntimeError):
    pass


def prometheus_binary() -> Path:
    found = os.environ.get("WALLBOUNCE_PROMETHEUS") or shutil.which("prometheus")
    if not found and Path("/usr/bin/prometheus").exists():
        found = "/usr/bin/prometheus"
    if not found:
        raise PrometheusNotInstalled(
            "prometheus: binary not found; install it with `apt-get install -y prometheus` (make test does)"
        )
    return Path(found)


def static_job(name: str, targets: list[str], labels: dict[str, str] | None = None,
               metrics_path: str = "/metrics") -> dict[str, Any]:
    """A scrape job for fixed ``host:port`` targets, with extra target labels (namespace, service…)."""
    return {
        "job_name": name,
        "metrics_path": metrics_path,
        "static_configs": [{"targets": targets, "labels": dict(labels or {})}],
    }


class Prometheus:
    """``start()`` writes the config, starts the server and waits for ``/-/ready``."""

    def __init__(
        self,
        workdir: Path,
        scrape_configs: list[dict[str, Any]] | None = None,
        *,
        scrape_interval: str = "1s",
        rule_files: list[Path] | None = None,
        start_timeout: float = 60.0,
    ) -> None:
        self.workdir = workdir.resolve()
        self.scrape_configs = list(scrape_configs or [])
        self.scrape_interval = scrape_interval
        self.rule_files = list(rule_files or [])
        self.start_timeout = start_timeout
        self.config = self.workdir / "prometheus.yml"
        self.log = self.workdir / "prometheus.log"
        self.port = 0
        self.process: procs.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval,
                       "scrape_timeout": self.scrape_interval},
            "rule_files": [str(p) for p in self.rule_files],
            "scrape_configs": self.scrape_configs,
        }
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))

    def start(self) -> Prometheus:
        binary = prometheus_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        keep = self.port  # a restarted server keeps its address (clients are configured with it)
        for attempt in range(3):
            self.port = keep if keep and attempt == 0 else procs.free_port()
            self.log.write_text("")
            self.process = procs.Process(
                "prometheus",
                [
                    str(binary),
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                    "--storage.tsdb.retention.time=1d",
                    "--log.level=warn",
                ],
                self.log,
            ).start()
            try:
                self.process.wait_until(self.ready, self.start_timeout, "ready (/-/ready)")
                return self
            except procs.StartError:
                self.process.stop()
                if attempt < 2 and procs.port_in_use_message(self.log):
                    continue
                raise
        raise AssertionError("unreachable")

    def ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)

    def reload(self, scrape_configs: list[dict[str, Any]] | None = None) -> None:
        """Rewrite the scrape configuration and make the running server load it."""
        if scrape_configs is not None:
            self.scrape_configs = list(scrape_configs)
        self.write_config()
        req = urllib.request.Request(f"{self.url}/-/reload", method="POST")  # noqa: S310 - our loopback URL
        with urllib.request.urlopen(req, timeout=10):  # noqa: S310
            pass

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as resp:  # noqa: S310
            body = json.loads(resp.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus: {path} failed: {body}")
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; returns the result vector (list of {metric, value})."""
        return list(self.api("query", query=promql)["result"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
