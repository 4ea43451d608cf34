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


# --- the structured rounds, played from the evaluation set ----------------------------------------------------------

CASE_ID = "en-contra-md5"  # gemini says MD5 with a salt (A), anthropic says never MD5 (B)


def _cross_request(question: str, items: list[dict[str, str]]) -> dict[str, object]:
    from wallbounce_service import protocol

    listed = [protocol.Item(item["id"], 0, False, {k: v for k, v in item.items() if k != "id"}) for item in items]
    return {
        "model": "claude-sonnet-4-6",
        "max_tokens": 512,
        "system": protocol.CROSS_EXAMINATION_SYSTEM,
        "messages": [{"role": "user", "content": protocol.cross_examination_prompt(question, listed)}],
        "tools": [{"name": protocol.CROSS_EXAMINATION.name, "input_schema": protocol.CROSS_EXAMINATION.schema}],
        "tool_choice": {"type": "tool", "name": protocol.CROSS_EXAMINATION.name},
    }


@pytest.mark.parametrize(
    ("reviewer", "verdicts", "revised"),
    [
        ("honest", {"own": "agree", "other": "disagree", "probe": "disagree"}, "own"),
        ("blind", {"own": "agree", "other": "agree", "probe": "agree"}, "own"),
        ("capitulating", {"own": "disagree", "other": "agree", "probe": "agree"}, "other"),
    ],
)
async def test_a_case_is_cross_examined_as_the_reviewer_behaviour_says(
    sim: Simulator, reviewer: str, verdicts: dict[str, str], revised: str
) -> None:
    from wallbounce_service.evalset import load_cases

    case = next(c for c in load_cases() if c.id == CASE_ID)
    sim.load_cases([case])
    sim.script("anthropic", reviewer=reviewer)
    own, other = case.answers["anthropic"].final["text"], case.answers["gemini"].final["text"]
    items = [  # the other answer first: a capitulating reviewer adopts the first differing answer it is shown
        {"id": "R1", "final": other},
        {"id": "R2", "final": own},
        {"id": "R3", "final": "It is not true that: " + own},
    ]
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sim.url}/v1/messages", json=_cross_request(case.question, items),
                                headers={"x-api-key": "sk-ant-x"}) as r:
            body = await r.json()
    assert r.status == 200 and body["stop_reason"] == "tool_use"
    block = body["content"][0]
    assert block["type"] == "tool_use" and block["name"] == "wallbounce_cross_examination"
    got = {rv["id"]: rv["verdict"] for rv in block["input"]["reviews"]}
    assert got == {"R1": verdicts["other"], "R2": verdicts["own"], "R3": verdicts["probe"]}
    assert block["input"]["revised_final"] == (own if revised == "own" else other)
    assert sim.stats["anthropic"].rounds[-1] == "cross-examination"


async def test_cases_load_through_the_control_endpoint(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sim.url}/_sim/cases", json={"builtin": True}) as r:
            loaded = (await r.json())["loaded"]
            assert r.status == 200 and loaded >= 100
        async with session.post(f"{sim.url}/_sim/cases", json={"cases": {"cases": [{"id": "x"}]}}) as r:
            assert r.status == 400 and "x" in (await r.json())["error"]
        async with session.get(f"{sim.url}/_sim/stats") as r:
            assert (await r.json())["cases"] == loaded


def test_one_module_per_vendor_as_in_the_service() -> None:
    import wallbounce_sim
    from wallbounce_sim import anthropic_api, gemini_api, openai_api

    from wallbounce_service import providers

    assert {m.__name__.rsplit(".", 1)[1] for m in (openai_api, gemini_api, anthropic_api)} == {
        p.stem for p in __import__("pathlib").Path(providers.__file__).parent.glob("*_api.py")
    }
    assert openai_api.error_body(429, None)["error"]["code"] == "rate_limit_exceeded"
    assert anthropic_api.error_body(529)["error"]["type"] == "overloaded_error"
    assert gemini_api.error_body(429)["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert wallbounce_sim.VENDORS == ("openai", "gemini", "anthropic")
