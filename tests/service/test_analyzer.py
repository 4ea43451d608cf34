"""The analyzer's rounds against the simulators through the real SDKs: when it cross-examines, what a reviewer is
shown, and that sequential mode hears every selected provider before it stops."""

from __future__ import annotations

import json

import pytest
from wallbounce_sim import Simulator

from wallbounce_service.analyzer import Analyzer
from wallbounce_service.config import Settings
from wallbounce_service.metrics import Metrics
from wallbounce_service.providers import build_clients
from wallbounce_service.providers.router import ProviderPool
from wallbounce_service.selection import Selection

ALL = ["openai", "anthropic", "gemini"]


def analyzer(policy: str = "auto") -> Analyzer:
    settings = Settings(consensus={"cross_examination": dict.fromkeys(("basic", "premium", "critical"), policy)},
                        retry={"attempts": 1})
    pool = ProviderPool(build_clients(settings.providers), settings.providers, settings.prices, settings.retry,
                        settings.cooldown, Metrics("stable"))
    return Analyzer(settings, pool)


@pytest.mark.parametrize(
    ("policy", "finals", "reviews"),
    [
        ("auto", ["Yes, enable it.", "Yes, do.", "No."], 0),  # booleans decide every pair: no second round
        ("auto", ["Use Argon2id.", "Use bcrypt.", "Use scrypt."], 3),  # free text: everyone cross-examines
        ("off", ["Use Argon2id.", "Use bcrypt.", "Use scrypt."], 0),
        ("always", ["Yes, enable it.", "Yes, do.", "Yes."], 3),
    ],
)
async def test_cross_examination_runs_when_the_policy_says(
    sim: Simulator, provider_env: dict[str, str], policy: str, finals: list[str], reviews: int
) -> None:
    for vendor, final in zip(ALL, finals, strict=True):
        sim.script(vendor, final=final)
    a = analyzer(policy)
    try:
        analysis = await a.run("Which password hash?", "critical", "parallel", 3, Selection(ALL, [], 0.0))
    finally:
        await a.pool.close()
    assert sum(1 for s in analysis.steps if s.role == "review") == reviews
    assert analysis.rounds == (2 if reviews else 1) and analysis.cross_examined == bool(reviews)
    assert [r for v in ALL for r in sim.stats[v].rounds].count("cross-examination") == reviews


async def test_a_reviewer_sees_every_final_its_own_included_and_the_probe(
    sim: Simulator, provider_env: dict[str, str]
) -> None:
    sim.script("openai", final="Use Argon2id.")
    sim.script("gemini", final="Use bcrypt.")
    a = analyzer("always")
    try:
        analysis = await a.run("Which password hash?", "premium", "parallel", 3, Selection(["openai", "gemini"], [],
                                                                                           0.0))
    finally:
        await a.pool.close()
    prompt = next(p for p in sim.stats["gemini"].prompts if "<answers>" in p)
    assert "<question>\nWhich password hash?\n</question>" in prompt
    listed = json.loads(prompt.split("<answers>\n", 1)[1].split("\n</answers>", 1)[0])
    finals = sorted(item["final"] for item in listed)
    assert finals == ["It is not true that: Use bcrypt.", "Use Argon2id.", "Use bcrypt."]
    assert sorted(item["id"] for item in listed) == ["R1", "R2", "R3"]
    assert "VERDICT" in prompt  # the system prompt's instructions travel with the call
    # the legacy scripts judge honestly: they disagree with each other, so the pair is a contradiction
    assert all(t.trusted for t in analysis.consensus.reviewers) and analysis.consensus.confidence < 0.6


async def test_sequential_critical_hears_all_three_even_when_the_first_reviewer_agrees(
    sim: Simulator, provider_env: dict[str, str]
) -> None:
    sim.script("openai", final="Yes, enable it.")
    sim.script("anthropic", final="Yes, enable it now.")
    sim.script("gemini", final="No, never enable it.")
    a = analyzer()
    try:
        analysis = await a.run("Enable keep-alive?", "critical", "sequential", 1, Selection(ALL, [], 0.0))
    finally:
        await a.pool.close()
    assert sorted(analysis.providers_used) == sorted(ALL) and analysis.rounds == 3
    assert sim.stats["gemini"].answered == 1
    assert 0.6 <= analysis.consensus.confidence < 0.7  # two against one: hold, not a promotable consensus


async def test_sequential_stops_once_everyone_answered_and_they_agree(
    sim: Simulator, provider_env: dict[str, str]
) -> None:
    a = analyzer()
    try:
        analysis = await a.run("Enable keep-alive?", "critical", "sequential", 5, Selection(ALL, [], 0.0))
    finally:
        await a.pool.close()
    assert analysis.rounds == 3 and analysis.consensus.confidence >= 0.8
