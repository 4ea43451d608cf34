"""The service and the simulators as real processes (the console entry point and ``python -m wallbounce_sim``)."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from wallbounce_local.procs import Process, StartError, free_port

from .conftest import API_KEYS, FAKE_KEYS, write_keys_file


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
        return int(response.status)


def _base_env() -> dict[str, str]:
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WALLBOUNCE_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "REDIS_"))
    }


@contextmanager
def simulator(workdir: Path) -> Iterator[str]:
    """A simulator process; yields its URL."""
    port = free_port()
    sim = Process("simulator", [sys.executable, "-m", "wallbounce_sim", "--port", str(port)],
                  workdir / f"sim-{port}.log", env=_base_env())
    url = f"http://127.0.0.1:{port}"
    try:
        sim.start().wait_until(lambda: _get(f"{url}/_sim/stats") == 200, 20, "serving")
        yield url
    except StartError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        sim.stop()


@contextmanager
def service(
    workdir: Path, sim_url: str, variant: str = "stable", extra_env: dict[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """A service process wired to the simulator at ``sim_url``, with the test keys; yields its URL and log."""
    port = free_port()
    keys = workdir / f"keys-{port}.yaml"
    if not keys.exists():
        write_keys_file(keys)
    env = {
        **_base_env(),
        **FAKE_KEYS,
        "OPENAI_BASE_URL": f"{sim_url}/v1",
        "ANTHROPIC_BASE_URL": sim_url,
        "GOOGLE_GEMINI_BASE_URL": sim_url,
        "WALLBOUNCE_VARIANT": variant,
        "WALLBOUNCE_LOG_FORMAT": "json",
        "WALLBOUNCE_AUTH__KEYS_FILE": str(keys),
        **(extra_env or {}),
    }
    proc = Process(
        "service",
        [sys.executable, "-m", "wallbounce_service.cli", "--host", "127.0.0.1", "--port", str(port)],
        workdir / f"service-{port}.log",
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        proc.start().wait_until(lambda: _get(f"{url}/readyz") == 200, 30, "ready")
        yield {"url": url, "log": str(proc.log), "pid": str(proc.pid), "keys": env["WALLBOUNCE_AUTH__KEYS_FILE"]}
    except StartError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        proc.stop()


@contextmanager
def running_stack(
    workdir: Path, variant: str = "stable", extra_env: dict[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """A simulator process and a service process wired to it; yields their URLs; stops both."""
    with simulator(workdir) as sim_url, service(workdir, sim_url, variant, extra_env) as svc:
        yield {**svc, "sim_url": sim_url}


def post_json(
    url: str, body: object, timeout: float = 20, tenant: str | None = "acme", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, object], dict[str, str]]:
    """POSTs JSON (with tenant ``tenant``'s key unless ``None``); (status, JSON body, headers)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if tenant is not None:
        sent["Authorization"] = f"Bearer {API_KEYS[tenant]}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # loopback only
            return int(response.status), json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        return int(err.code), json.loads(err.read()), dict(err.headers)
