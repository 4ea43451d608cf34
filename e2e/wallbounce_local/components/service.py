"""One wall-bounce service process (``wallbounce_service``) of a variant, listening on its Service's
``ClusterIP:port`` (see ``gateway``), with its own configuration file (caches off: every request really fans
out; short retries) and its own provider simulators; fake provider keys, and nothing of the user's provider
environment leaks in."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from ..gateway import Backend
from ..loadgen import LOCAL_API_KEY, auth_headers
from ..web import http_json
from .base import ProcessComponent, python

FAKE_KEYS = {"OPENAI_API_KEY": "sk-test-local", "ANTHROPIC_API_KEY": "sk-ant-test-local",
             "GEMINI_API_KEY": "gemini-test-local"}
#: Provider environment that must not leak from the user's shell into the stack's services.
_PROVIDER_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GEMINI_API_KEY",
                 "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "WALLBOUNCE_CONFIG_FILE", "REDIS_URL")


def service_config(variant: str, keys_file: Path) -> dict[str, Any]:
    return {
        "variant": variant,
        "log_format": "json",
        "cache": {"enabled": False},  # every request really fans out to the providers
        "retry": {"attempts": 2, "base_delay_s": 0.05, "max_delay_s": 0.2},
        "providers": {name: {"model": model, "timeout_s": 10} for name, model in
                      (("openai", "gpt-5"), ("gemini", "gemini-2.5-pro"), ("anthropic", "claude-sonnet-4-6"))},
        "request_deadline_s": 20,
        "auth": {"keys_file": str(keys_file)},
    }


def write_keys_file(path: Path) -> Path:
    """The API keys of the stack's services: one tenant, the load generator's key (hashed), no tight limits."""
    limits = {"requests_per_s": 10000, "burst": 10000, "tokens_per_min": 10**10, "usd_per_day": 10**6,
              "max_concurrent": 10000}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"tenants": {"local": limits}, "keys": [
        {"id": "local-loadgen", "tenant": "local", "sha256": hashlib.sha256(LOCAL_API_KEY.encode()).hexdigest()}]}))
    return path


class ServiceProcess(ProcessComponent):
    readiness = "ready (/readyz)"
    attempts = 1  # its address is its Service's: no other port to try

    def __init__(self, variant: str, backend: Backend, simulators: str, folder: Path, log: Path, *,
                 marker: str | None = None, revision: str | None = None) -> None:
        super().__init__(log)
        self.revision = revision or f"local-{variant}"  # the pod-template-hash its metrics carry
        self.name = f"service-{variant}"
        self.variant = variant
        self.backend = backend
        self.simulators = simulators
        self.folder = folder
        self.marker = marker

    @property
    def url(self) -> str:
        return f"http://{self.backend.address}"

    def prepare(self, attempt: int) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "config.yaml"
        keys = write_keys_file(self.folder.parent / "api-keys.yaml")
        config.write_text(yaml.safe_dump(service_config(self.variant, keys), sort_keys=False))
        env = {k: v for k, v in os.environ.items() if k not in _PROVIDER_ENV and not k.startswith("WALLBOUNCE_")}
        sim = self.simulators
        env.update(FAKE_KEYS)
        env.update({"OPENAI_BASE_URL": f"{sim}/v1", "ANTHROPIC_BASE_URL": sim, "GOOGLE_GEMINI_BASE_URL": sim,
                    "WALLBOUNCE_VARIANT": self.variant, "WALLBOUNCE_CONFIG_FILE": str(config),
                    "WALLBOUNCE_REVISION": self.revision})
        self.env = env

    def command(self) -> list[str]:
        return python("-m", "wallbounce_service.cli", "--host", self.backend.cluster_ip,
                      "--port", str(self.backend.port), marker=self.marker)

    def ready(self) -> bool:
        return http_json(f"{self.url}/readyz") is not None

    def generate(self, prompt: str, timeout: float = 30.0) -> Any:
        """One request straight to this process (not through the Gateway)."""
        return http_json(f"{self.url}/api/v1/generate", {"prompt": prompt}, timeout=timeout, headers=auth_headers())
