"""Fixtures of the service tests: provider simulators, the app on a test server, a real redis-server.

Nothing is skipped: if redis-server cannot start, the tests that need it fail with its log.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from wallbounce_sim import Simulator

from wallbounce_local.procs import free_port
from wallbounce_service.app import create_app
from wallbounce_service.config import Settings

#: API keys of the service under test (tenant → key); the keys file holds their SHA-256 only
API_KEYS = {
    "acme": "wbk_test_acme_0123456789abcdefghij",
    "globex": "wbk_test_globex_0123456789abcdefgh",
}
GENEROUS = {
    "requests_per_s": 1000,
    "burst": 1000,
    "tokens_per_min": 50_000_000,
    "usd_per_day": 1000,
    "max_concurrent": 500,
}


def auth_header(tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEYS[tenant]}"}


def write_keys_file(path: Path, tenants: dict[str, dict[str, Any]] | None = None, plain: bool = False) -> Path:
    """A keys file for ``API_KEYS`` (hashed unless ``plain``), each tenant with generous limits unless given."""
    import yaml

    from wallbounce_service.auth import hash_key

    limits = {t: {**GENEROUS, **(tenants or {}).get(t, {})} for t in API_KEYS}
    keys = [
        {"id": f"{t}-key", "tenant": t, **({"key": k} if plain else {"sha256": hash_key(k)})}
        for t, k in API_KEYS.items()
    ]
    path.write_text(yaml.safe_dump({"tenants": limits, "keys": keys}))
    return path


FAKE_KEYS = {
    "OPENAI_API_KEY": "sk-test-fakeopenai0123456789",
    "ANTHROPIC_API_KEY": "sk-ant-test-fakeanthropic0123456789",
    "GEMINI_API_KEY": "AIzaFAKEgeminiKEY0123456789abcdefghij",
}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator()
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
def provider_env(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake keys and base URLs that point the three SDKs at the simulator."""
    for name in (
        "GOOGLE_API_KEY",
        "REDIS_URL",
        "WALLBOUNCE_CONFIG_FILE",
        "WALLBOUNCE_VARIANT",
        "GOOGLE_GENAI_API_VERSION",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    env = {**FAKE_KEYS, **sim.env()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def fast_settings(**overrides: Any) -> Settings:
    """Settings with short retry delays and cooldowns so the tests stay quick."""
    base: dict[str, Any] = {
        "retry": {"attempts": 3, "base_delay_s": 0.01, "max_delay_s": 0.05, "max_retry_after_s": 2.0},
        "cooldown": {"cooldown_s": 1.0, "min_requests": 5, "failure_threshold": 0.5},
        "request_deadline_s": 20.0,
        "heartbeat_s": 0.2,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Settings(**base)


AppFactory = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def keys_file(tmp_path: Path) -> Path:
    return write_keys_file(tmp_path / "keys.yaml")


@pytest.fixture
async def make_client(provider_env: dict[str, str], keys_file: Path) -> AsyncIterator[AppFactory]:
    """Starts the real app (real SDKs → simulator) on a loopback test server; several per test are fine.
    Its requests carry tenant ``acme``'s key unless ``tenant`` says otherwise (``None``: no key)."""
    clients: list[TestClient[Any, Any]] = []

    async def make(
        settings: Settings | None = None, tenant: str | None = "acme", **overrides: Any
    ) -> TestClient[Any, Any]:
        overrides.setdefault("auth", {"keys_file": str(keys_file)})
        app = create_app(settings or fast_settings(**overrides))
        headers = auth_header(tenant) if tenant else {}
        client: TestClient[Any, Any] = TestClient(
            TestServer(app, host="127.0.0.1", handler_cancellation=True), headers=headers
        )
        await client.start_server()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in reversed(clients):
            await client.close()


@pytest.fixture
async def client(make_client: AppFactory) -> TestClient[Any, Any]:
    return await make_client()


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "redis.log"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir = workdir

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.workdir),
                    "--protected-mode",
                    "yes",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        log = self.log.read_text(errors="replace") if self.log.exists() else ""
        self.stop()
        pytest.fail(f"redis-server did not start on port {self.port}; log:\n{log}", pytrace=False)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class LogCapture(logging.Handler):
    """Every formatted line that the service's JSON formatter writes."""

    def __init__(self) -> None:
        super().__init__()
        from wallbounce_service.logs import JsonFormatter

        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def json_logs() -> Iterator[LogCapture]:
    handler = LogCapture()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
