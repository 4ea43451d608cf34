"""A real Prometheus server (Debian's ``prometheus`` package) on a free loopback port, with a scrape
configuration given by the caller, for tests and the local demo (a stack component); and ``PrometheusAPI``,
the queries tests make to it or to a Prometheus in a cluster.
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
from .components.base import ProcessComponent


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


class PrometheusAPI:
    """Queries to a Prometheus at ``url`` (the local server below, or one in a cluster)."""

    def __init__(self, url: str) -> None:
        self._url = url.rstrip("/")

    @property
    def url(self) -> str:
        return self._url

    def ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)

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

    def scalar(self, promql: str) -> float | None:
        """One number; None for no sample or NaN (e.g. no requests in the window)."""
        result = self.query(promql)
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if value != value else value


class Prometheus(PrometheusAPI, ProcessComponent):
    """The server as a component: ``start()`` writes the config, starts it and waits for ``/-/ready``; a second
    ``start()`` after ``stop()`` comes back on the same address and data (clients are configured with it)."""

    name = "prometheus"
    readiness = "ready (/-/ready)"

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
        ProcessComponent.__init__(self, self.workdir / "prometheus.log")
        self.scrape_configs = list(scrape_configs or [])
        self.scrape_interval = scrape_interval
        self.rule_files = list(rule_files or [])
        self.start_timeout = start_timeout
        self.config = self.workdir / "prometheus.yml"
        self.port = 0

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

    def prepare(self, attempt: int) -> None:
        self.binary = prometheus_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        if not self.port or attempt:  # a restarted server keeps its address
            self.port = procs.free_port()

    def command(self) -> list[str]:
        return [str(self.binary), f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d", "--log.level=warn"]

    def stop(self) -> None:
        ProcessComponent.stop(self)
        self.process = None
