"""The service in front of hostile clients, as real processes: keys and tenants, limits shared through a real
redis-server by two service processes, overload and upstream caps, slow bodies and huge headers, bodies built to
crash a parser, client disconnects, a deadline with hanging providers, secrets in prompts, logs without prompts,
tenant isolation, and the metrics a canary analysis reads.

The provider simulator runs in a thread of the test process (the real aiohttp app, speaking the vendors' wire
formats to the real SDKs in the service process), so that the test can read what each vendor received and how many
calls were in flight at once.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from wallbounce_sim import Simulator

from wallbounce_service.auth import hash_key

from .conftest import API_KEYS, RedisServer, auth_header, write_keys_file
from .processes import post_json, service

GEN = "/api/v1/generate"


class ThreadedSimulator:
    """The simulator on its own event loop in a thread; ``sim`` is the live object (stats, scripts)."""

    def __init__(self) -> None:
        self.sim = Simulator()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="simulator", daemon=True)

    def __enter__(self) -> Simulator:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(10)
        return self.sim

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def script(self, vendor: str, **fields: Any) -> None:
        self.loop.call_soon_threadsafe(lambda: self.sim.script(vendor, **fields))
        time.sleep(0.05)


@pytest.fixture(scope="module")
def threaded() -> Iterator[ThreadedSimulator]:
    runner = ThreadedSimulator()
    with runner:
        yield runner


@pytest.fixture
def sim(threaded: ThreadedSimulator) -> Simulator:
    threaded.loop.call_soon_threadsafe(threaded.sim.reset)
    time.sleep(0.05)
    return threaded.sim


def calls(sim: Simulator) -> int:
    return sum(st.requests for st in sim.stats.values())


def metric(url: str, name: str, **labels: str) -> float | None:
    """The sum of the samples of ``name`` with ``labels``; None when no such series exists."""
    import urllib.request

    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:  # loopback only
        text = resp.read().decode()
    found = None
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            found = (found or 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def log_records(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.startswith("{")]


async def post(
    url: str, body: Any, tenant: str | None = "acme", raw: bytes | None = None
) -> tuple[int, dict[str, Any], Any]:
    headers = {"Content-Type": "application/json", **(auth_header(tenant) if tenant else {})}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        data = raw if raw is not None else json.dumps(body).encode()
        async with session.post(url + GEN, data=data, headers=headers) as resp:
            return resp.status, await resp.json(content_type=None), resp.headers


# --- keys ----------------------------------------------------------------------------------------------------------


def test_keys_tenants_and_rotation_without_restart(tmp_path: Path, sim: Simulator, threaded: ThreadedSimulator) -> None:
    keys = write_keys_file(tmp_path / "keys.yaml", {"globex": {"task_types": ["basic"]}})
    env = {"WALLBOUNCE_AUTH__KEYS_FILE": str(keys), "WALLBOUNCE_AUTH__RELOAD_S": "0.2"}
    with service(tmp_path, sim.url, extra_env=env) as svc:
        url = svc["url"]
        for tenant, headers, code in ((None, {}, 401), (None, {"Authorization": "Bearer wbk_wrong_key_000000"}, 401)):
            status, body, _ = post_json(url + GEN, {"prompt": "Is it up?"}, tenant=tenant, headers=headers)
            assert status == code and body["error"]["code"] == "unauthenticated"
        status, body, _ = post_json(url + GEN, {"prompt": "Is it up?", "task_type": "critical"}, tenant="globex")
        assert status == 403 and body["error"]["code"] == "forbidden" and body["error"]["field"] == "task_type"
        assert calls(sim) == 0
        assert metric(url, "wallbounce_requests_total", outcome="rejected") == 3
        for path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"):  # open without a key
            import urllib.request

            with urllib.request.urlopen(url + path, timeout=5) as resp:  # loopback only
                assert resp.status == 200
        assert post_json(url + GEN, {"prompt": "Is it up?"})[0] == 200
        # rotate: a new key for acme, the old one disabled — no restart
        new_key = "wbk_rotated_for_acme_0123456789"
        data = yaml.safe_load(keys.read_text())
        data["keys"] = [
            {"id": "acme-new", "tenant": "acme", "sha256": hash_key(new_key)},
            {"id": "acme-key", "tenant": "acme", "sha256": hash_key(API_KEYS["acme"]), "disabled": True},
        ]
        keys.write_text(yaml.safe_dump(data))
        deadline = time.monotonic() + 10
        while post_json(url + GEN, {"prompt": "Is it up?"})[0] != 401 and time.monotonic() < deadline:
            time.sleep(0.2)
        status, body, _ = post_json(url + GEN, {"prompt": "Is it up?"}, tenant=None,
                                    headers={"Authorization": f"Bearer {new_key}"})
        assert status == 200, body
        audits = [r for r in log_records(svc["log"]) if r.get("logger") == "wallbounce.audit"]
        assert audits[-1]["key_id"] == "acme-new" and audits[-1]["tenant"] == "acme"


# --- limits shared through Redis -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-security"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_two_processes_one_redis_one_limit(
    tmp_path: Path, sim: Simulator, threaded: ThreadedSimulator, redis: RedisServer
) -> None:
    keys = write_keys_file(
        tmp_path / "keys.yaml",
        {
            "acme": {"requests_per_s": 0.05, "burst": 3},
            "globex": {"usd_per_day": 0.05, "max_request_usd": 0.04},
        },
    )
    env = {"WALLBOUNCE_AUTH__KEYS_FILE": str(keys), "REDIS_URL": redis.url, "WALLBOUNCE_CACHE__ENABLED": "false"}
    with service(tmp_path, sim.url, extra_env=env) as a, service(tmp_path, sim.url, extra_env=env) as b:
        statuses = [post_json(svc["url"] + GEN, {"prompt": f"Rate {i}?"})[0] for i, svc in enumerate((a, b, a))]
        assert statuses == [200, 200, 200]
        for svc in (b, a):  # the shared bucket is empty, whichever process is asked
            status, body, headers = post_json(svc["url"] + GEN, {"prompt": "One more?"})
            assert status == 429 and body["error"]["code"] == "rate_limited", body
            assert 1 <= int(headers["Retry-After"]) <= 20
        assert metric(b["url"], "wallbounce_requests_total", outcome="rejected") == 1
        assert metric(b["url"], "wallbounce_requests_total", outcome="error") == 0
        # the budget: a request in flight holds its maximum cost, so a concurrent one on the other process cannot
        # spend the same money
        threaded.script("gemini", latency_s=1.5)

        async def both() -> list[tuple[int, dict[str, Any], Any]]:
            first = asyncio.create_task(post(a["url"], {"prompt": "Spend?"}, tenant="globex"))
            await asyncio.sleep(0.5)
            second = await post(b["url"], {"prompt": "Spend too?"}, tenant="globex")
            return [await first, second]

        (s1, b1, _), (s2, b2, h2) = asyncio.run(both())
        assert s1 == 200, b1
        assert s2 == 429 and b2["error"]["code"] == "budget_exhausted" and int(h2["Retry-After"]) > 0, b2
        threaded.script("gemini")
        assert post_json(b["url"] + GEN, {"prompt": "Spend again?"}, tenant="globex")[0] == 200  # settled: room again


# --- overload, upstream cap --------------------------------------------------------------------------------------


def test_overload_is_503_with_retry_after_and_upstream_calls_stay_under_the_cap(
    tmp_path: Path, sim: Simulator, threaded: ThreadedSimulator
) -> None:
    for vendor in ("openai", "gemini", "anthropic"):
        threaded.script(vendor, latency_s=0.6)
    env = {"WALLBOUNCE_LIMITS__MAX_INFLIGHT": "6", "WALLBOUNCE_LIMITS__MAX_UPSTREAM": "4",
           "WALLBOUNCE_CACHE__ENABLED": "false"}
    with service(tmp_path, sim.url, extra_env=env) as svc:
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, sum(st.in_flight for st in sim.stats.values()))
                time.sleep(0.005)

        sampler = threading.Thread(target=sample)
        sampler.start()

        async def burst() -> list[tuple[int, dict[str, Any], Any]]:
            return await asyncio.gather(
                *(post(svc["url"], {"prompt": f"Burst {i}?", "task_type": "critical"}) for i in range(20))
            )

        try:
            results = asyncio.run(burst())
        finally:
            done.set()
            sampler.join()
        statuses = sorted(s for s, _, _ in results)
        assert statuses.count(200) == 6 and statuses.count(503) == 14, statuses
        refused = [(b, h) for s, b, h in results if s == 503]
        assert all(b["error"]["code"] == "overloaded" and h["Retry-After"] == "1" for b, h in refused)
        assert 1 <= peak <= 4, peak  # six requests × three providers, never more than four calls at once
        assert metric(svc["url"], "wallbounce_requests_total", outcome="rejected") == 14
        assert metric(svc["url"], "wallbounce_requests_total", outcome="error") == 0


# --- slow bodies, headers, hostile bodies -------------------------------------------------------------------------


def raw_http(port: int, data: bytes, wait: float = 5.0, then: bytes = b"") -> tuple[bytes, float]:
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=wait + 5) as sock:
        sock.sendall(data)
        if then:
            time.sleep(0.2)
            sock.sendall(then)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and len(b"".join(chunks)) > 20:
                head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                length = re.search(rb"Content-Length: (\d+)", head, re.I)
                if length and len(rest) >= int(length.group(1)):
                    break
    return b"".join(chunks), time.monotonic() - start


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory, threaded: ThreadedSimulator) -> Iterator[dict[str, str]]:
    workdir = tmp_path_factory.mktemp("hardened")
    env = {"WALLBOUNCE_LIMITS__BODY_READ_TIMEOUT_S": "1", "WALLBOUNCE_LOG_LEVEL": "DEBUG"}
    with service(workdir, threaded.sim.url, extra_env=env) as svc:
        yield svc


def test_a_slow_body_times_out_and_huge_headers_are_refused(hardened: dict[str, str]) -> None:
    port = int(hardened["url"].rsplit(":", 1)[1])
    head = (f"POST {GEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
            f"Authorization: Bearer {API_KEYS['acme']}\r\n\r\n").encode()
    reply, took = raw_http(port, head, then=b'{"prompt": "sl')
    assert reply.startswith(b"HTTP/1.1 408") and b"body_timeout" in reply and took < 4, (reply[:200], took)
    big = (f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 20000}\r\n\r\n").encode()
    reply, _ = raw_http(port, big)
    assert reply.split(b" ")[1] in (b"400", b"431"), reply[:200]
    many = ("GET /healthz HTTP/1.1\r\nHost: x\r\n" + "".join(f"X-H{i}: v\r\n" for i in range(200)) + "\r\n").encode()
    reply, _ = raw_http(port, many)
    assert reply.split(b" ")[1] in (b"400", b"431"), reply[:200]
    assert post_json(hardened["url"] + GEN, {"prompt": "Still fine?"})[0] == 200


HOSTILE: list[tuple[str, bytes, int, str]] = [
    ("990 levels of nesting", b'{"prompt": ' + b"[" * 990 + b"]" * 990 + b"}", 400, "json_too_deep"),
    ("100,000 levels", b"[" * 100_000 + b"]" * 100_000, 400, "json_too_deep"),
    ("a 5,000-digit integer", b'{"prompt": "x", "depth": ' + b"9" * 5000 + b"}", 400, "number_too_long"),
    ("a 400-digit float", b'{"prompt": "x", "budget_usd": 1.' + b"5" * 400 + b"}", 400, "number_too_long"),
    ("1e999", b'{"prompt": "x", "budget_usd": 1e999}', 400, "invalid_field"),
    ("NaN", b'{"prompt": "x", "budget_usd": NaN}', 400, "malformed_json"),
    ("Infinity", b'{"prompt": "x", "budget_usd": -Infinity}', 400, "malformed_json"),
    ("20,000 fields", b"{" + b",".join(b'"k%d": 1' % i for i in range(20_000)) + b"}", 400, "invalid_body"),
    ("invalid UTF-8", b'{"prompt": "\xff\xfe\xfa"}', 400, "malformed_json"),
    ("not JSON", b"prompt=hello", 400, "malformed_json"),
    ("empty", b"", 400, "malformed_json"),
    ("null", b"null", 400, "invalid_body"),
    ("a list", b'["prompt"]', 400, "invalid_body"),
    ("a prompt that is an object", b'{"prompt": {"a": 1}}', 400, "invalid_field"),
    ("depth as a string", b'{"prompt": "x", "depth": "3"}', 400, "invalid_field"),
    ("depth as a bool", b'{"prompt": "x", "depth": true}', 400, "invalid_field"),
    ("a path in session_id", b'{"prompt": "x", "session_id": "../../etc/passwd"}', 400, "invalid_field"),
    ("a huge user_id", b'{"prompt": "x", "user_id": "' + b"u" * 100_000 + b'"}', 400, "invalid_field"),
    ("a prompt over the limit", b'{"prompt": "' + b"a" * 40_000 + b'"}', 400, "invalid_field"),
    ("only whitespace", b'{"prompt": " \\t\\n "}', 400, "invalid_field"),
    ("a negative budget", b'{"prompt": "x", "budget_usd": -1}', 400, "invalid_field"),
    ("an unknown field", b'{"prompt": "x", "__proto__": {}}', 400, "invalid_field"),
    ("a lone surrogate", b'{"prompt": "\\ud800 is this ok?"}', 200, ""),
    ("NUL bytes", b'{"prompt": "a\\u0000b is fine?"}', 200, ""),
    ("a session never minted", b'{"prompt": "x", "session_id": "ses_guessed000000000000000000000"}', 404,
     "unknown_session"),
]


@pytest.mark.parametrize(("what", "raw", "status", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_are_the_clients_problem(hardened: dict[str, str], what: str, raw: bytes, status: int,
                                                code: str) -> None:
    errors_before = metric(hardened["url"], "wallbounce_requests_total", outcome="error")
    got, body, _ = asyncio.run(post(hardened["url"], None, raw=raw))
    assert got == status, (what, body)
    if code:
        assert body["error"]["code"] == code, (what, body)
    assert metric(hardened["url"], "wallbounce_requests_total", outcome="error") == errors_before == 0


def test_a_body_too_large_or_of_another_type_is_refused(hardened: dict[str, str]) -> None:
    status, body, _ = asyncio.run(post(hardened["url"], None, raw=b'{"prompt": "' + b"a" * 400_000 + b'"}'))
    assert status == 413 and body["error"]["code"] == "payload_too_large"
    assert metric(hardened["url"], "wallbounce_requests_total", outcome="error") == 0


# --- disconnects, deadline ------------------------------------------------------------------------------------------


def test_a_client_that_goes_away_is_cancelled_never_an_error(
    tmp_path: Path, sim: Simulator, threaded: ThreadedSimulator
) -> None:
    threaded.script("anthropic", latency_s=5)
    with service(tmp_path, sim.url) as svc:
        port = int(svc["url"].rsplit(":", 1)[1])
        body = json.dumps({"prompt": "Will you wait for me?"}).encode()
        for path in (GEN, GEN + "/stream"):
            head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nAuthorization: Bearer {API_KEYS['acme']}\r\n\r\n").encode()
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(head + body)
                time.sleep(0.6)
        deadline = time.monotonic() + 5
        while metric(svc["url"], "wallbounce_requests_total", outcome="cancelled") != 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert metric(svc["url"], "wallbounce_requests_total", outcome="cancelled") == 2
        assert metric(svc["url"], "wallbounce_requests_total", outcome="error") == 0
        assert metric(svc["url"], "wallbounce_inflight_requests") == 0
        assert sim.stats["anthropic"].aborted == 2  # the provider calls were cancelled too


def test_deadline_gives_504_with_the_votes_that_arrived(
    tmp_path: Path, sim: Simulator, threaded: ThreadedSimulator
) -> None:
    threaded.script("gemini", latency_s=60)  # hangs
    with service(tmp_path, sim.url, extra_env={"WALLBOUNCE_REQUEST_DEADLINE_S": "2"}) as svc:
        start = time.monotonic()
        status, body, _ = post_json(svc["url"] + GEN, {"prompt": "Anyone?"}, timeout=30)
        took = time.monotonic() - start
        assert status == 504 and body["error"]["code"] == "deadline_exceeded", body
        assert took <= 3.0, took  # the deadline + 1 s
        votes = {v["provider"]: v for v in body["llm_votes"]}
        assert votes["anthropic"]["error"] is None and votes["anthropic"]["output_tokens"] > 0
        assert votes["gemini"]["error"] == "no answer before the deadline"
        assert metric(svc["url"], "wallbounce_requests_total", outcome="error") == 1


# --- secrets, logs, isolation ---------------------------------------------------------------------------------------

SECRETS = {
    "openai": "sk-proj-Zx81AbCdEfGhIjKlMnOpQrStUv",
    "anthropic": "sk-ant-api03-Zx81AbCdEfGhIjKlMnOpQr",
    "aws_id": "AKIAZX81ABCDEFGHIJKL",
    "aws_secret": "Zx81wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPL",
    "github": "ghp_Zx81abcdefghijklmnopqrstuvwxyz012345",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ6eDgxIn0.Zx81dozjgNryP4J3jVmNHl0w5N",
    "password": "Zx81-hunter2-hunter2",
    "pem": "Zx81MIIEpAIBAAKCAQEAu1SU1L7VLPHCgcBIjt",
    "card": "4111 1111 1111 1111",
    "email": "zx81.tanaka@example.co.jp",
    "phone": "090-8181-8181",
}
PROMPT = (
    f"ZX81MARKER: our key is {SECRETS['openai']} and {SECRETS['anthropic']}; aws_access_key_id={SECRETS['aws_id']} "
    f"aws_secret_access_key={SECRETS['aws_secret']}; token {SECRETS['github']}; session {SECRETS['jwt']}; "
    f"db password: {SECRETS['password']}\n-----BEGIN RSA PRIVATE KEY-----\n{SECRETS['pem']}\n"
    f"-----END RSA PRIVATE KEY-----\ncard {SECRETS['card']}, mail {SECRETS['email']}, call {SECRETS['phone']}. "
    "Should we rotate all of these?"
)


def test_secrets_never_reach_a_provider_nor_a_log_line(hardened: dict[str, str], sim: Simulator) -> None:
    status, body, _ = post_json(hardened["url"] + GEN, {"prompt": PROMPT, "task_type": "critical"})
    assert status == 200, body
    sent = [p for st in sim.stats.values() for p in st.prompts]
    assert len(sent) == 3 and all("ZX81MARKER" in p for p in sent)
    for name, value in SECRETS.items():
        assert all(value not in p for p in sent), name
    assert "[REDACTED_AWS_SECRET_KEY]" in sent[0] and "<EMAIL_1>" in sent[0] and "[REDACTED_CARD_NUMBER]" in sent[0]
    time.sleep(0.3)
    text = Path(hardened["log"]).read_text()
    assert "ZX81MARKER" not in text and "Should we rotate" not in text  # not even at DEBUG: no prompt text
    for name, value in SECRETS.items():
        assert value not in text, name
    audits = [r for r in log_records(hardened["log"]) if r.get("logger") == "wallbounce.audit"]
    line = audits[-1]
    assert line["status"] == 200 and line["tenant"] == "acme" and line["task_type"] == "critical"
    assert sorted(line["providers"]) == ["anthropic", "gemini", "openai"] and line["input_tokens"] > 0
    assert line["cost_usd"] > 0 and line["ms"] > 0


def test_refuse_mode_answers_400_naming_the_kinds(tmp_path: Path, sim: Simulator) -> None:
    with service(tmp_path, sim.url, extra_env={"WALLBOUNCE_SECRETS__ACTION": "refuse"}) as svc:
        status, body, _ = post_json(svc["url"] + GEN, {"prompt": PROMPT})
        assert status == 400 and body["error"]["code"] == "secret_in_prompt", body
        assert "aws_access_key" in body["error"]["message"] and SECRETS["aws_id"] not in json.dumps(body)
        assert calls(sim) == 0
        status, body, _ = post_json(svc["url"] + GEN, {"prompt": f"Mail {SECRETS['email']}: ok?"})
        assert status == 200 and SECRETS["email"] in body["response"]  # personal data is anonymised, not refused


def test_tenants_share_no_cache_and_no_session(hardened: dict[str, str], sim: Simulator) -> None:
    url = hardened["url"]
    question = "Customer Zx81 Holdings uses key sk-proj-Zx81Zx81Zx81Zx81Zx81Zx. Should we rotate it?"
    status, first, _ = post_json(url + GEN, {"prompt": question, "new_session": True})
    assert status == 200 and first["cached"] is False
    assert post_json(url + GEN, {"prompt": question})[1]["cached"] is True  # the same tenant: cached
    before = calls(sim)
    status, other, _ = post_json(url + GEN, {"prompt": question}, tenant="globex")
    assert status == 200 and other["cached"] is False and calls(sim) == before + 2
    status, body, _ = post_json(url + GEN, {"prompt": "And the password?", "session_id": first["session_id"]},
                                tenant="globex")
    assert status == 404 and body["error"]["code"] == "unknown_session" and calls(sim) == before + 2
    status, body, _ = post_json(url + GEN, {"prompt": "And the password?", "session_id": first["session_id"],
                                            "user_id": "mallory"})
    assert status == 404  # the same tenant, another user: not theirs either


# --- metrics ----------------------------------------------------------------------------------------------------------


def test_every_series_exists_at_zero_from_start_up_with_the_revision(tmp_path: Path, sim: Simulator) -> None:
    env = {"WALLBOUNCE_REVISION": "7d9f8c6b5", "WALLBOUNCE_VARIANT": "canary"}
    with service(tmp_path, sim.url, extra_env=env) as svc:
        url = svc["url"]
        for task_type in ("basic", "premium", "critical", "unknown"):
            for outcome in ("success", "error", "client_error", "cancelled", "low_consensus", "rejected"):
                value = metric(url, "wallbounce_requests_total", variant="canary", revision="7d9f8c6b5",
                               task_type=task_type, outcome=outcome)
                assert value == 0, (task_type, outcome)
            assert metric(url, "wallbounce_consensus_confidence_count", task_type=task_type) == 0
        for provider in ("openai", "gemini", "anthropic"):
            for outcome in ("success", "server", "timeout", "rate_limited", "cancelled"):
                assert metric(url, "wallbounce_provider_requests_total", provider=provider, outcome=outcome) == 0
            assert metric(url, "wallbounce_tokens_total", provider=provider, direction="output") == 0
        assert metric(url, "wallbounce_cache_requests_total", cache="exact", result="hit") == 0
        assert metric(url, "wallbounce_inflight_requests", revision="7d9f8c6b5") == 0
    with service(tmp_path, sim.url) as svc:
        assert metric(svc["url"], "wallbounce_requests_total", revision="unknown", outcome="error") == 0


def test_the_operators_default_queries_see_a_fresh_canarys_first_error(
    tmp_path: Path, sim: Simulator, threaded: ThreadedSimulator
) -> None:
    """Real Prometheus scraping a stable and a canary process (revisions set): the operator's batched queries, grouped
    by (namespace, service, revision), read each Service's current revision, and the canary's very first error shows
    in increase() because its series existed at 0 before it."""
    from wallbounce_local.prometheus import Prometheus, static_job
    from wallbounce_operator.analysis.prometheus import Batch
    from wallbounce_operator.analysis.queries import BATCHED, batched
    from wallbounce_operator.model import PhaseSpec

    env = {"stable": {"WALLBOUNCE_REVISION": "5d8f7c9b4"}, "canary": {"WALLBOUNCE_REVISION": "7b6c5d4e3"}}
    with service(tmp_path, sim.url, "stable", env["stable"]) as stable, \
            service(tmp_path, sim.url, "canary", env["canary"]) as canary:
        jobs = [static_job(f"techsapo-{v}", [svc["url"].removeprefix("http://")],
                           {"namespace": "llm", "service": f"techsapo-{v}"})
                for v, svc in (("stable", stable), ("canary", canary))]
        prometheus = Prometheus(tmp_path / "prometheus", jobs, scrape_interval="1s").start()
        try:
            deadline = time.monotonic() + 30  # until Prometheus holds a sample of every fresh series, all at 0
            while len(prometheus.query('wallbounce_requests_total{outcome="error"} == 0')) < 8:
                assert time.monotonic() < deadline, "Prometheus never scraped both processes"
                time.sleep(0.5)
            for svc in (stable, canary):
                assert post_json(svc["url"] + GEN, {"prompt": "Is the canary healthy?"})[0] == 200
            for vendor in ("openai", "gemini", "anthropic"):
                threaded.script(vendor, error_status=500)
            assert post_json(canary["url"] + GEN, {"prompt": "And now?"})[0] == 503  # its first error
            time.sleep(3)
            texts = batched("1m")
            batch = Batch()
            for name in BATCHED:
                batch.add(name, prometheus.query(texts[name]))
            phase = PhaseSpec(weight=1)
            canary_seen = batch.counts("llm", "techsapo-canary", "7b6c5d4e3", phase)
            stable_seen = batch.counts("llm", "techsapo-stable", "5d8f7c9b4", phase)
            assert canary_seen is not None and stable_seen is not None
            assert batch.counts("llm", "techsapo-canary", "5d8f7c9b4", phase) is None  # another revision: no series
            # increase() extrapolates over the few seconds the series exist: two requests read as about 1.2
            assert canary_seen.errors > 0.3 and stable_seen.errors == 0  # present, and zero, on the stable
            assert canary_seen.served > canary_seen.errors
            assert canary_seen.confidence is not None and canary_seen.confidence > 0.7
            errors = prometheus.query('wallbounce_requests_total{outcome="error"}')
            revisions = {sample["metric"]["revision"] for sample in errors}
            assert revisions == {"5d8f7c9b4", "7b6c5d4e3"}
        finally:
            prometheus.stop()
