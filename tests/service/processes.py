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

from .conftest import FAKE_KEYS


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as response:  # loopback only
        return int(response.status)


@contextmanager
def running_stack(
    workdir: Path, variant: str = "stable", extra_env: dict[str, str] | None = None
) -> Iterator[dict[str, str]]:
    """A simulator process and a service process wired to it; yields their URLs; stops both."""
    sim_port, port = free_port(), free_port()
    base_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("WALLBOUNCE_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_", "REDIS_"))
    }
    sim = Process(
        "simulator",
        [sys.executable, "-m", "wallbounce_sim", "--port", str(sim_port)],
        workdir / f"sim-{sim_port}.log",
        env=base_env,
    )
    sim_url = f"http://127.0.0.1:{sim_port}"
    env = {
        **base_env,
        **FAKE_KEYS,
        "OPENAI_BASE_URL": f"{sim_url}/v1",
        "ANTHROPIC_BASE_URL": sim_url,
        "GOOGLE_GEMINI_BASE_URL": sim_url,
        "WALLBOUNCE_VARIANT": variant,
        "WALLBOUNCE_LOG_FORMAT": "json",
        **(extra_env or {}),
    }
    service = Process(
        "service",
        [sys.executable, "-m", "wallbounce_service.cli", "--host", "127.0.0.1", "--port", str(port)],
        workdir / f"service-{port}.log",
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        sim.start().wait_until(lambda: _get(f"{sim_url}/_sim/stats") == 200, 20, "serving")
        service.start().wait_until(lambda: _get(f"{url}/readyz") == 200, 30, "ready")
        yield {"url": url, "sim_url": sim_url, "log": str(service.log)}
    except StartError as exc:
        pytest.fail(str(exc), pytrace=False)
    finally:
        service.stop()
        sim.stop()


def post_json(url: str, body: object, timeout: float = 20) -> tuple[int, dict[str, object], dict[str, str]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # loopback only
            return int(response.status), json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        return int(err.code), json.loads(err.read()), dict(err.headers)
