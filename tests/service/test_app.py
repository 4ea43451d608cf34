"""The real app (aiohttp test server) against the simulators through the real SDKs: the issue's behaviours."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiohttp.test_utils import TestClient
from wallbounce_sim import Simulator

from wallbounce_service.api import GenerateResponse, LowConsensusResponse
from wallbounce_service.selection import select

from .conftest import FAKE_KEYS, AppFactory, LogCapture, fast_settings

GEN = "/api/v1/generate"
Client = TestClient[Any, Any]


async def metric(client: Client, name: str, **labels: str) -> float:
    text = await (await client.get("/metrics")).text()
    total = 0.0
    found = False
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    return total if found else 0.0


async def test_parallel_fan_out_answers_with_the_original_fields(client: Client, sim: Simulator) -> None:
    r = await client.post(GEN, json={"prompt": "Should we enable keep-alive?", "task_type": "critical"})
    body = await r.json()
    assert r.status == 200, body
    GenerateResponse.model_validate(body)
    assert r.headers["X-Wallbounce-Variant"] == "stable"
    assert body["variant"] == "stable" and body["srp_processed"] is False and body["cached"] is False
    analysis = body["wall_bounce_analysis"]
    assert sorted(analysis["providers_used"]) == ["anthropic", "gemini", "openai"]
    assert all(sim.stats[v].requests == 1 for v in ("openai", "anthropic", "gemini"))
    assert len(analysis["llm_votes"]) == 3 and analysis["rounds"] == 1 and not analysis["degraded"]
    assert analysis["total_cost"] == round(sum(v["cost_usd"] for v in analysis["llm_votes"]), 8) > 0
    assert all(v["input_tokens"] > 0 and v["output_tokens"] > 0 and v["error"] is None for v in analysis["llm_votes"])
    assert body["confidence"] >= 0.7 and body["agreement"] == 1.0
    assert "3 provider(s) answered" in body["reasoning"]
    # every vendor's native structured output (OpenAI json_schema, Gemini response_schema, Claude a forced tool)
    assert (sim.stats["openai"].structured, sim.stats["gemini"].structured, sim.stats["anthropic"].structured) == (
        1,
        1,
        1,
    )
    assert body["response"].rstrip().endswith("FINAL: Yes, this is the recommended approach.")
    assert (
        await metric(client, "wallbounce_requests_total", variant="stable", task_type="critical", outcome="success")
        == 1
    )
    assert await metric(client, "wallbounce_provider_requests_total", provider="openai", outcome="success") == 1
    assert await metric(client, "wallbounce_consensus_confidence_count", task_type="critical") == 1


async def test_a_provider_ignoring_the_schema_falls_back_to_markers(client: Client, sim: Simulator) -> None:
    sim.script("gemini", ignore_format=True, final="No, never enable it.")
    sim.script("anthropic", final="No, do not enable it.")
    r = await client.post(GEN, json={"prompt": "Enable it?"})
    body = await r.json()
    assert r.status == 200, body
    assert sim.stats["gemini"].structured == 0 and body["agreement"] == 1.0


async def test_canary_labels_responses_and_metrics(make_client: AppFactory) -> None:
    client = await make_client(variant="canary")
    r = await client.post(GEN, json={"prompt": "Is TLS 1.3 recommended?"})
    body = await r.json()
    assert r.status == 200 and body["variant"] == "canary" and body["srp_processed"] is True
    assert r.headers["X-Wallbounce-Variant"] == "canary"
    assert await metric(client, "wallbounce_requests_total", variant="canary", outcome="success") == 1
    assert await metric(client, "wallbounce_requests_total", variant="stable") == 0


async def test_a_failing_provider_is_replaced_by_the_fallback(client: Client, sim: Simulator) -> None:
    sim.script("anthropic", error_status=500)
    r = await client.post(GEN, json={"prompt": "Should we cache DNS lookups?", "task_type": "basic"})
    body = await r.json()
    assert r.status == 200, body
    analysis = body["wall_bounce_analysis"]
    assert analysis["degraded"] is True
    assert sorted(analysis["providers_used"]) == ["gemini", "openai"]
    failed = [v for v in analysis["llm_votes"] if v["error"]]
    assert [v["provider"] for v in failed] == ["anthropic"] and "server" in failed[0]["error"]
    assert sim.stats["anthropic"].requests == 3  # our three attempts, no SDK retries
    assert sim.stats["openai"].requests == 1


async def test_503_when_only_one_provider_answers_and_nothing_is_fabricated(client: Client, sim: Simulator) -> None:
    sim.script("anthropic", error_status=500)
    sim.script("openai", error_status=401)
    r = await client.post(GEN, json={"prompt": "Is this safe?"})
    body = await r.json()
    assert r.status == 503
    assert body["error"]["code"] == "not_enough_providers"
    assert "response" not in body and "confidence" not in body
    assert sim.stats["gemini"].answered == 1
    assert await metric(client, "wallbounce_requests_total", outcome="error") == 1


async def test_circuit_breaker_opens_and_closes(make_client: AppFactory, sim: Simulator) -> None:
    client = await make_client(cooldown={"cooldown_s": 1.0}, cache={"enabled": False})
    sim.script("anthropic", error_status=500)
    for i in range(2):  # 2 requests × 3 attempts: 6 failures of 6 calls
        r = await client.post(GEN, json={"prompt": f"Question {i}?"})
        assert r.status == 200
    calls = sim.stats["anthropic"].requests
    assert await metric(client, "wallbounce_provider_available", provider="anthropic") == 0
    r = await client.post(GEN, json={"prompt": "Question while open?"})
    body = await r.json()
    assert r.status == 200 and sim.stats["anthropic"].requests == calls  # not called while cooled down
    assert sorted(body["wall_bounce_analysis"]["providers_used"]) == ["gemini", "openai"]
    assert body["wall_bounce_analysis"]["degraded"] is False  # a healthy pair was picked up front
    sim.script("anthropic")  # recovers
    await asyncio.sleep(1.1)
    r = await client.post(GEN, json={"prompt": "Question after cooldown?"})
    body = await r.json()
    assert r.status == 200 and sim.stats["anthropic"].requests == calls + 1
    assert "anthropic" in body["wall_bounce_analysis"]["providers_used"]
    assert await metric(client, "wallbounce_provider_available", provider="anthropic") == 1


async def test_request_deadline_gives_504(make_client: AppFactory, sim: Simulator) -> None:
    client = await make_client(request_deadline_s=0.5)
    sim.script("gemini", latency_s=5)
    start = time.monotonic()
    r = await client.post(GEN, json={"prompt": "Slow question?"})
    body = await r.json()
    assert r.status == 504 and body["error"]["code"] == "deadline_exceeded"
    assert time.monotonic() - start < 4  # the simulator would have taken 5 s
    for _ in range(100):
        if sim.stats["gemini"].aborted:
            break
        await asyncio.sleep(0.02)
    assert sim.stats["gemini"].aborted == 1  # the provider call was cancelled, not left running


async def test_low_consensus_is_422_with_the_answer_and_scores(client: Client, sim: Simulator) -> None:
    sim.script("gemini", answer="Keep-alive saves handshakes.\nFINAL: Yes, enable keep-alive.")
    sim.script("anthropic", answer="Keep-alive exhausts sockets.\nFINAL: No, never enable keep-alive.")
    r = await client.post(GEN, json={"prompt": "Should we enable keep-alive?"})
    body = await r.json()
    assert r.status == 422, body
    LowConsensusResponse.model_validate(body)
    assert body["error"]["code"] == "low_consensus" and body["error"]["field"] == "confidence"
    assert body["agreement"] == 0.5 and body["confidence"] < 0.7
    assert body["response"] and "2 group(s)" in body["reasoning"]
    assert await metric(client, "wallbounce_requests_total", outcome="low_consensus") == 1
    assert await metric(client, "wallbounce_requests_total", outcome="error") == 0
    assert await metric(client, "wallbounce_consensus_confidence_count") == 1  # a 422's confidence is observed too


async def test_bounce_depth_one_is_a_proposal_and_one_review(client: Client, sim: Simulator) -> None:
    r = await client.post(GEN, json={"prompt": "Use retries?", "mode": "sequential", "depth": 1})
    body = await r.json()
    assert r.status == 200, body
    assert [v["provider"] for v in body["wall_bounce_analysis"]["llm_votes"]] == ["gemini", "anthropic"]
    assert body["wall_bounce_analysis"]["rounds"] == 2


async def test_bounce_mode_reviews_and_stops_early_on_agreement(client: Client, sim: Simulator) -> None:
    r = await client.post(
        GEN, json={"prompt": "Use exponential backoff?", "mode": "sequential", "depth": 4, "task_type": "premium"}
    )
    body = await r.json()
    assert r.status == 200, body
    analysis = body["wall_bounce_analysis"]
    assert analysis["rounds"] == 2
    votes = analysis["llm_votes"]
    assert [v["round"] for v in votes] == [1, 2] and votes[1]["verdict"] == "agree"
    assert [v["provider"] for v in votes] == ["openai", "gemini"]
    assert sim.stats["gemini"].structured == 1  # the reviewer's verdict came back in the JSON object
    reviewed = sim.stats["gemini"].prompts[-1]
    assert "VERDICT" in reviewed and "Answers so far" in reviewed and "Use exponential backoff?" in reviewed


async def test_bounce_mode_falls_back_when_a_provider_fails(client: Client, sim: Simulator) -> None:
    sim.script("openai", error_status=500)
    r = await client.post(
        GEN, json={"prompt": "Pin versions?", "mode": "sequential", "depth": 2, "task_type": "premium"}
    )
    body = await r.json()
    assert r.status == 200, body
    analysis = body["wall_bounce_analysis"]
    assert [(v["provider"], v["error"] is None) for v in analysis["llm_votes"]] == [
        ("openai", False),
        ("gemini", True),
        ("openai", False),
        ("anthropic", True),
    ]
    assert analysis["degraded"] is True and sorted(analysis["providers_used"]) == ["anthropic", "gemini"]
    assert analysis["llm_votes"][3]["verdict"] == "agree" and analysis["rounds"] == 2


async def test_bounce_mode_runs_all_rounds_when_reviewers_disagree(client: Client, sim: Simulator) -> None:
    for vendor, final in (("openai", "Yes, use it."), ("gemini", "No, never use it.")):
        sim.script(vendor, final=final, verdict="disagree")
    r = await client.post(
        GEN, json={"prompt": "Use exponential backoff?", "mode": "sequential", "depth": 3, "task_type": "premium"}
    )
    body = await r.json()
    assert r.status == 422, body
    analysis = body["wall_bounce_analysis"]
    assert analysis["rounds"] == 4  # the proposal and all three bounces
    assert [v["provider"] for v in analysis["llm_votes"]] == ["openai", "gemini", "openai", "gemini"]
    assert [v["verdict"] for v in analysis["llm_votes"]] == [None, "disagree", "disagree", "disagree"]
    assert "verdicts" in body["reasoning"]


async def test_budget_below_every_pair_is_refused(client: Client, sim: Simulator) -> None:
    r = await client.post(GEN, json={"prompt": "Cheap question", "budget_usd": 0.000001})
    body = await r.json()
    assert r.status == 422 and body["error"]["field"] == "budget_usd" and body["error"]["code"] == "budget_too_low"
    assert sum(s.requests for s in sim.stats.values()) == 0


async def test_low_budget_picks_the_cheapest_pair(client: Client, sim: Simulator) -> None:
    # basic → Gemini + Claude normally; a budget between the cheap pair and the default pair picks GPT-5 + Gemini
    settings = fast_settings()
    default = select("basic", "Cheap question", ["openai", "gemini", "anthropic"], settings).estimated_cost_usd
    cheap = select("basic", "Cheap question", ["openai", "gemini"], settings).estimated_cost_usd
    assert cheap < default
    r = await client.post(GEN, json={"prompt": "Cheap question", "budget_usd": (cheap + default) / 2})
    body = await r.json()
    assert r.status == 200, body
    assert sorted(body["wall_bounce_analysis"]["providers_used"]) == ["gemini", "openai"]
    assert sim.stats["anthropic"].requests == 0


async def test_invalid_requests_name_the_problem(client: Client, sim: Simulator) -> None:
    cases: list[tuple[dict[str, Any], int, str, str | None]] = [
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "malformed_json", None),
        ({"json": {"prompt": "x", "depth": 9}}, 400, "invalid_field", "depth"),
        ({"json": {"prompt": "x", "task_type": "gold"}}, 400, "invalid_field", "task_type"),
        ({"json": {"prompt": "   "}}, 400, "invalid_field", "prompt"),
        ({"json": {}}, 400, "invalid_field", "prompt"),
        ({"json": {"prompt": "x", "colour": "red"}}, 400, "invalid_field", "colour"),
        ({"json": ["prompt"]}, 400, "invalid_body", None),
        ({"json": {"prompt": "x" * 32_001}}, 400, "invalid_field", "prompt"),
        ({"data": "prompt=x", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type", None),
        (
            {"data": b"{" + b" " * 300_000 + b"}", "headers": {"Content-Type": "application/json"}},
            413,
            "payload_too_large",
            None,
        ),
    ]
    for kwargs, status, code, field in cases:
        r = await client.post(GEN, **kwargs)
        body = await r.json()
        assert r.status == status, (kwargs.get("json"), body)
        assert body["error"]["code"] == code and body["error"]["field"] == field, body
    assert sum(s.requests for s in sim.stats.values()) == 0
    assert await metric(client, "wallbounce_requests_total", outcome="client_error") == len(cases)
    assert await metric(client, "wallbounce_requests_total", outcome="error") == 0
    r = await client.get("/no/such/path")
    assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


async def test_exact_and_similar_cache_hits_skip_the_providers(make_client: AppFactory, sim: Simulator) -> None:
    client = await make_client(cache={"similar_enabled": True})
    prompt = "How should we configure retries with exponential backoff for the payment API?"
    first = await (await client.post(GEN, json={"prompt": prompt})).json()
    calls = sum(s.requests for s in sim.stats.values())
    second = await (await client.post(GEN, json={"prompt": prompt})).json()
    typo = await (await client.post(GEN, json={"prompt": prompt.replace("configure", "configuer") + " "})).json()
    assert first["cached"] is False and second["cached"] is True and typo["cached"] is True
    assert second["response"] == first["response"] and second["confidence"] == first["confidence"]
    assert sum(s.requests for s in sim.stats.values()) == calls
    assert await metric(client, "wallbounce_cache_requests_total", cache="exact", result="hit") == 1
    assert await metric(client, "wallbounce_cache_requests_total", cache="similar", result="hit") == 1
    # cache hits are answered requests: their confidence is observed too
    assert await metric(client, "wallbounce_consensus_confidence_count") == 3
    # another scope (depth) misses the answer caches but reuses this tenant's provider results
    r = await client.post(GEN, json={"prompt": prompt, "depth": 2})
    assert (await r.json())["cached"] is False and sum(s.requests for s in sim.stats.values()) == calls
    assert await metric(client, "wallbounce_cache_requests_total", cache="provider", result="hit") == 2
    # another tenant asks the very same question: nothing cached is shared across tenants
    other = await make_client(cache={"similar_enabled": True}, tenant="globex")
    r = await other.post(GEN, json={"prompt": prompt})
    assert (await r.json())["cached"] is False and sum(s.requests for s in sim.stats.values()) == calls + 2
    off = await make_client(cache={"enabled": False})
    r = await off.post(GEN, json={"prompt": prompt})
    assert (await r.json())["cached"] is False and sum(s.requests for s in sim.stats.values()) == calls + 4


async def test_the_similar_query_cache_is_off_by_default(client: Client, sim: Simulator) -> None:
    prompt = "How should we configure retries with exponential backoff for the payment API?"
    await client.post(GEN, json={"prompt": prompt})
    r = await client.post(GEN, json={"prompt": prompt.replace("configure", "configuer")})
    assert (await r.json())["cached"] is False
    assert await metric(client, "wallbounce_cache_requests_total", cache="similar", result="hit") == 0
    assert await metric(client, "wallbounce_cache_requests_total", cache="similar", result="miss") == 0


async def test_sessions_are_shared_by_two_instances_through_redis(
    make_client: AppFactory, sim: Simulator, redis_server: Any
) -> None:
    a = await make_client(redis_url=redis_server.url)
    b = await make_client(redis_url=redis_server.url)
    r = await a.post(GEN, json={"prompt": "My service is called Orion. Is TLS 1.3 ok?", "new_session": True})
    session = (await r.json())["session_id"]
    assert r.status == 200 and session.startswith("ses_") and len(session) >= 32
    r = await b.post(GEN, json={"prompt": "And for its admin port?", "session_id": session})
    assert r.status == 200 and (await r.json())["session_id"] == session
    sent = sim.stats["gemini"].prompts[-1]
    assert "Conversation so far" in sent and "Orion" in sent and "And for its admin port?" in sent
    # the caches are shared too: B answers A's question from Redis without calling a provider
    await a.post(GEN, json={"prompt": "What does HSTS do for Orion?"})
    calls = sum(st.requests for st in sim.stats.values())
    r = await b.post(GEN, json={"prompt": "What does HSTS do for Orion?"})
    assert (await r.json())["cached"] is True and sum(st.requests for st in sim.stats.values()) == calls
    # a session id the server never minted, or one minted for another tenant, is refused and sends nothing
    other = await make_client(redis_url=redis_server.url, tenant="globex")
    for client, sid in ((a, "sess-42"), (other, session)):
        r = await client.post(GEN, json={"prompt": "Remind me of the name?", "session_id": sid})
        body = await r.json()
        assert r.status == 404 and body["error"]["code"] == "unknown_session", body
        assert body["error"]["field"] == "session_id" and sum(st.requests for st in sim.stats.values()) == calls
    # without Redis the second instance knows nothing of the session
    c = await make_client()
    d = await make_client()
    r = await c.post(GEN, json={"prompt": "My service is called Vega. Is TLS 1.3 ok?", "new_session": True})
    calls = sum(st.requests for st in sim.stats.values())
    r = await d.post(GEN, json={"prompt": "And for its admin port?", "session_id": (await r.json())["session_id"]})
    assert r.status == 404 and sum(st.requests for st in sim.stats.values()) == calls


async def test_masking_in_logs_and_prompts(client: Client, sim: Simulator, json_logs: LogCapture) -> None:
    sim.script("openai", error_status=401)  # OpenAI's 401 body names the key; our log line carries that detail
    secret = "sk-live-THISISAFAKEKEY0123456789"
    email = "hanako.yamada@example.co.jp"
    prompt = f"Mail {email}, key {secret}. Should I rotate the key?"
    r = await client.post(GEN, json={"prompt": prompt, "user_id": "user-7", "task_type": "premium"})
    body = await r.json()
    assert r.status == 200, body
    assert email in body["response"]  # the placeholder was restored in the answer
    # a follow-up in the same session: the history that goes along is anonymised too
    r = await client.post(GEN, json={"prompt": f"Reach me at {email}", "new_session": True, "task_type": "premium"})
    session = (await r.json())["session_id"]
    r = await client.post(GEN, json={"prompt": "Remind me how?", "session_id": session, "task_type": "premium"})
    assert r.status == 200 and "Conversation so far" in sim.stats["gemini"].prompts[-1]
    assert "<EMAIL_1>" in sim.stats["gemini"].prompts[-1]
    for vendor in ("gemini", "openai", "anthropic"):
        for sent in sim.stats[vendor].prompts:
            assert email not in sent and secret not in sent  # anonymised and redacted before it left
    assert "[REDACTED_OPENAI_KEY]" in sim.stats["gemini"].prompts[0]
    assert len(json_logs.lines) >= 3
    assert any('"provider call failed"' in line for line in json_logs.lines)
    # the raw records did carry the provider's key (so the scan below is not vacuous) …
    raw = " ".join(f"{r.getMessage()} {r.__dict__}" for r in json_logs.records)
    assert FAKE_KEYS["OPENAI_API_KEY"] in raw
    # … and one audit line per request, without any prompt text
    audits = [json.loads(line) for line in json_logs.lines if '"wallbounce.audit"' in line]
    assert len(audits) == 3 and all(a["tenant"] == "acme" and a["key_id"] == "acme-key" for a in audits)
    assert audits[0]["input_tokens"] > 0 and audits[0]["cost_usd"] > 0 and "prompt_preview" not in audits[0]
    for line in json_logs.lines:
        record = json.loads(line)
        for needle in (secret, email, *FAKE_KEYS.values(), "user-7"):
            assert needle not in line, line
        if record["logger"].startswith("wallbounce"):  # the SDKs' own DEBUG lines are silenced by the CLI
            for needle in ("Should I rotate", "Remind me", "Reach me"):
                assert needle not in line, line


async def read_events(resp: Any, until: str | None = None, limit: int = 200) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    event = None
    for _ in range(limit):
        raw = await resp.content.readline()
        if not raw:
            break
        line = raw.decode().rstrip("\n")
        if line.startswith(":"):
            events.append(("heartbeat", None))
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            events.append((event, json.loads(line[6:])))
            if event == until:
                break
    return events


async def test_sse_stream_events(client: Client, sim: Simulator) -> None:
    sim.script("anthropic", latency_s=0.5)
    resp = await client.post(GEN + "/stream", json={"prompt": "Stream me an answer?"})
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    events = await read_events(resp)
    names = [e for e, _ in events]
    assert names[0] == "thinking"
    assert names.count("provider_response") == 2
    assert "heartbeat" in names  # 0.5 s of waiting with 0.2 s heartbeats
    assert names[-2:] == ["consensus", "final_answer"]
    GenerateResponse.model_validate(events[-1][1])


async def test_sse_error_event_on_low_consensus(client: Client, sim: Simulator) -> None:
    sim.script("anthropic", final="No, never.")
    resp = await client.post(GEN + "/stream", json={"prompt": "Yes or no?"})
    events = await read_events(resp)
    assert events[-1][0] == "error" and events[-1][1]["status"] == 422


async def test_sse_client_disconnect_cancels_provider_calls(client: Client, sim: Simulator) -> None:
    sim.script("anthropic", latency_s=10)
    resp = await client.post(GEN + "/stream", json={"prompt": "Long question?"})
    events = await read_events(resp, until="provider_response")
    assert events[-1][0] == "provider_response" and events[-1][1]["provider"] == "gemini"
    resp.close()
    for _ in range(60):
        if sim.stats["anthropic"].aborted:
            break
        await asyncio.sleep(0.05)
    assert sim.stats["anthropic"].aborted == 1 and sim.stats["anthropic"].answered == 0
    assert await metric(client, "wallbounce_provider_requests_total", provider="anthropic", outcome="cancelled") == 1
    assert await metric(client, "wallbounce_inflight_requests") == 0


async def test_health_and_readiness(make_client: AppFactory, monkeypatch: Any) -> None:
    client = await make_client()
    r = await client.get("/healthz")
    assert r.status == 200 and (await r.json())["status"] == "ok"
    r = await client.get("/readyz")
    assert r.status == 200 and sorted((await r.json())["providers"]) == ["anthropic", "gemini", "openai"]
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    lonely = await make_client()
    r = await lonely.get("/readyz")
    body = await r.json()
    assert r.status == 503 and body["status"] == "not ready" and body["providers"] == ["gemini"]
    assert (await lonely.get("/healthz")).status == 200
    r = await lonely.post(GEN, json={"prompt": "Anyone there?"})
    assert r.status == 503 and (await r.json())["error"]["code"] == "providers_unavailable"


async def test_metrics_follow_the_contract(client: Client) -> None:
    await client.post(GEN, json={"prompt": "Count me?"})
    await client.post(GEN, json={"prompt": ""})
    text = await (await client.get("/metrics")).text()
    expected = {
        "wallbounce_requests_total": {"variant", "revision", "task_type", "outcome"},
        "wallbounce_request_duration_seconds_bucket": {"variant", "revision", "task_type", "le"},
        "wallbounce_consensus_confidence_bucket": {"variant", "revision", "task_type", "le"},
        "wallbounce_provider_requests_total": {"variant", "revision", "provider", "outcome"},
        "wallbounce_provider_duration_seconds_bucket": {"variant", "revision", "provider", "le"},
        "wallbounce_tokens_total": {"variant", "revision", "provider", "direction"},
        "wallbounce_cost_usd_total": {"variant", "revision", "provider"},
        "wallbounce_cache_requests_total": {"variant", "revision", "cache", "result"},
        "wallbounce_inflight_requests": {"variant", "revision"},
        "wallbounce_provider_available": {"variant", "revision", "provider"},
    }
    seen: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or "{" not in line:
            continue
        name, rest = line.split("{", 1)
        labels = {part.split("=", 1)[0] for part in rest.split("}", 1)[0].split(",") if part}
        seen.setdefault(name, set()).update(labels)
    for name, labels in expected.items():
        assert seen.get(name) == labels, (name, seen.get(name))
    assert 'wallbounce_request_duration_seconds_bucket{le="600.0"' in text
    confidence_buckets = {
        line.split('le="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("wallbounce_consensus_confidence_bucket")
    }
    assert confidence_buckets == {"0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9", "1.0", "+Inf"}


async def test_openapi_document_describes_the_live_api(client: Client) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]) == {
        "/api/v1/generate",
        "/api/v1/generate/stream",
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/v1/openapi.json",
    }
    request_schema = doc["components"]["schemas"]["GenerateRequest"]
    assert request_schema["properties"]["prompt"]["maxLength"] == fast_settings().max_prompt_chars
    assert request_schema["additionalProperties"] is False
    responses = doc["paths"]["/api/v1/generate"]["post"]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "404", "408", "413", "415", "422", "429", "503", "504"}
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert doc["paths"]["/healthz"]["get"]["security"] == []
