"""The provider simulators themselves: error rate, rate limiting, Chat Completions, the control endpoint."""

from __future__ import annotations

import aiohttp
import anthropic
import openai
import pytest
from wallbounce_sim import Simulator

from .conftest import FAKE_KEYS


async def test_error_rate_is_seeded_and_roughly_that_share(sim: Simulator, provider_env: dict[str, str]) -> None:
    sim.script("anthropic", error_rate=0.3, error_status=529, seed=7)
    client = anthropic.AsyncAnthropic(max_retries=0)
    failures = 0
    try:
        for _ in range(40):
            try:
                await client.messages.create(
                    model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "hi"}]
                )
            except anthropic.APIStatusError as exc:
                assert exc.status_code == 529
                failures += 1
    finally:
        await client.close()
    assert 4 <= failures <= 20  # 30 % of 40 with a fixed seed, not all and not none
    assert sim.stats["anthropic"].errors == failures


async def test_rate_limit_answers_429_with_retry_after(sim: Simulator) -> None:
    sim.script("openai", rate_limit_per_s=2, retry_after_s=1)
    statuses = []
    async with aiohttp.ClientSession() as session:
        for _ in range(6):  # 6 quick calls: at least 3 fall in one wall-clock second
            async with session.post(
                f"{sim.url}/v1/responses",
                json={"model": "gpt-5", "input": "hi"},
                headers={"Authorization": "Bearer sk-x"},
            ) as r:
                statuses.append((r.status, r.headers.get("retry-after")))
                body = await r.json()
    assert statuses[0][0] == 200 and (429, "1") in statuses
    assert body["error"]["code"] == "rate_limit_exceeded"


async def test_chat_completions_through_the_sdk(sim: Simulator, provider_env: dict[str, str]) -> None:
    sim.script("openai", answer="Chat answer\nFINAL: Yes.", input_tokens=11, output_tokens=7)
    client = openai.AsyncOpenAI(max_retries=0)
    try:
        completion = await client.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "hello"}]
        )
    finally:
        await client.close()
    assert completion.choices[0].message.content == "Chat answer\nFINAL: Yes."
    assert completion.usage is not None and (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        11,
        7,
    )
    assert sim.stats["openai"].paths[-1] == "/v1/chat/completions"


async def test_missing_key_is_401_in_the_vendor_shape(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sim.url}/v1/messages", json={"model": "m", "max_tokens": 1, "messages": []}) as r:
            body = await r.json()
            assert r.status == 401 and body["type"] == "error"
            assert body["error"]["type"] == "authentication_error"
        async with session.post(f"{sim.url}/v1beta/models/gemini-2.5-pro:generateContent", json={"contents": []}) as r:
            body = await r.json()
            assert r.status == 401 and body["error"]["status"] == "UNAUTHENTICATED"


async def test_control_endpoint(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sim.url}/_sim/script", json={"gemini": {"latency_s": 0.5}}) as r:
            assert r.status == 200 and (await r.json())["gemini"]["latency_s"] == 0.5
        assert sim.scripts["gemini"].latency_s == 0.5
        async with session.post(f"{sim.url}/_sim/script", json={"mistral": {}}) as r:
            assert r.status == 400
        async with session.post(f"{sim.url}/_sim/script", json={"gemini": {"colour": 1}}) as r:
            assert r.status == 400
        async with session.post(f"{sim.url}/_sim/reset") as r:
            assert r.status == 200
        assert sim.scripts["gemini"].latency_s == 0
        async with session.get(f"{sim.url}/_sim/stats") as r:
            stats = await r.json()
            assert set(stats["stats"]) == {"openai", "gemini", "anthropic"}


@pytest.mark.parametrize("key", [FAKE_KEYS["OPENAI_API_KEY"]])
async def test_openai_401_body_names_the_key(sim: Simulator, key: str) -> None:
    sim.script("openai", error_status=401)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{sim.url}/v1/responses", json={"model": "gpt-5", "input": "x"}, headers={"Authorization": f"Bearer {key}"}
        ) as r:
            body = await r.json()
    assert r.status == 401 and key in body["error"]["message"] and body["error"]["code"] == "invalid_api_key"
