"""The evaluation set's cases as tests, through the real SDKs against the simulators playing them over the wire.

Every contradiction must land under the operator's rollback line (0.6) with honest, blind-agreeing and capitulating
reviewers (and a mix of the three), in the default mode (cross-examination ``auto``), with cross-examination
``always`` and in sequential mode; every drift under 0.5; every agreement at or above the promotion line (0.7) with
honest reviewers. One case also goes through the whole HTTP service (422 ``low_consensus``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from wallbounce_sim import VENDORS, Simulator

from wallbounce_service.analyzer import Analysis, Analyzer
from wallbounce_service.app import create_app
from wallbounce_service.config import Settings
from wallbounce_service.evalset import TASK_PROVIDERS, Case, load_cases
from wallbounce_service.metrics import Metrics
from wallbounce_service.providers import build_clients
from wallbounce_service.providers.router import ProviderPool
from wallbounce_service.selection import Selection

from .conftest import FAKE_KEYS, auth_header

CASES = load_cases()
CONTRADICTIONS = [c for c in CASES if c.label == "contradiction"]
DRIFTS = [c for c in CASES if c.label == "drift"]
AGREEMENTS = [c for c in CASES if c.label == "agreement"]
REVIEWERS = ("honest", "blind", "capitulating", "mixed")
MIXED = {"openai": "honest", "gemini": "blind", "anthropic": "capitulating"}  # every case meets different reviewers
pytestmark = pytest.mark.asyncio(loop_scope="module")


class Bench:
    """One simulator with the evaluation set loaded and analyzers for every cross-examination policy."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.pools: list[ProviderPool] = []
        self.analyzers: dict[str, Analyzer] = {}

    def analyzer(self, policy: str) -> Analyzer:
        if policy not in self.analyzers:
            settings = Settings(consensus={"cross_examination": dict.fromkeys(TASK_PROVIDERS, policy)},
                                retry={"attempts": 1})
            pool = ProviderPool(build_clients(settings.providers), settings.providers, settings.prices,
                                settings.retry, settings.cooldown, Metrics("stable"))
            self.pools.append(pool)
            self.analyzers[policy] = Analyzer(settings, pool)
        return self.analyzers[policy]

    async def play(self, case: Case, reviewer: str, policy: str = "auto", mode: str = "parallel") -> Analysis:
        for vendor in VENDORS:
            self.sim.script(vendor, reviewer=MIXED[vendor] if reviewer == "mixed" else reviewer)
        selection = Selection(list(TASK_PROVIDERS[case.task_type]), [], 0.0)
        return await self.analyzer(policy).run(case.question, case.task_type, mode, 3, selection)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bench() -> AsyncIterator[Bench]:
    sim = await Simulator(cases=CASES).start()
    with pytest.MonkeyPatch.context() as mp:
        for name in ("GOOGLE_API_KEY", "WALLBOUNCE_CONFIG_FILE", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
            mp.delenv(name, raising=False)
        for name, value in {**FAKE_KEYS, **sim.env()}.items():
            mp.setenv(name, value)
        b = Bench(sim)
        try:
            yield b
        finally:
            for pool in b.pools:
                await pool.close()
            await sim.stop()


def _explain(analysis: Analysis) -> str:
    return analysis.consensus.reasoning


@pytest.mark.parametrize("reviewer", REVIEWERS)
@pytest.mark.parametrize("case", CONTRADICTIONS, ids=lambda c: c.id)
async def test_contradiction_is_below_the_rollback_line(bench: Bench, case: Case, reviewer: str) -> None:
    analysis = await bench.play(case, reviewer)
    assert analysis.consensus.confidence < 0.6, _explain(analysis)
    # every selected provider answered, and each call really spoke the vendor's structured format
    assert sorted(analysis.providers_used) == sorted(TASK_PROVIDERS[case.task_type])
    assert all(s.answer is not None and s.answer.structured for s in analysis.steps if s.role == "answer")


@pytest.mark.parametrize("reviewer", REVIEWERS)
@pytest.mark.parametrize("case", CONTRADICTIONS, ids=lambda c: c.id)
async def test_contradiction_is_below_the_rollback_line_in_sequential_mode(
    bench: Bench, case: Case, reviewer: str
) -> None:
    analysis = await bench.play(case, reviewer, mode="sequential")
    assert analysis.consensus.confidence < 0.6, _explain(analysis)
    # it never stops before every selected provider has answered (critical hears all three)
    assert len(analysis.providers_used) == len(TASK_PROVIDERS[case.task_type])


@pytest.mark.parametrize("reviewer", REVIEWERS)
@pytest.mark.parametrize("case", [c for c in CONTRADICTIONS if c.lang == "en"][:12], ids=lambda c: c.id)
async def test_contradiction_is_below_the_rollback_line_when_always_cross_examined(
    bench: Bench, case: Case, reviewer: str
) -> None:
    analysis = await bench.play(case, reviewer, policy="always")
    assert analysis.cross_examined and analysis.rounds == 2
    assert analysis.consensus.confidence < 0.6, _explain(analysis)


@pytest.mark.parametrize("reviewer", REVIEWERS)
@pytest.mark.parametrize("case", DRIFTS, ids=lambda c: c.id)
async def test_topic_drift_is_below_one_half(bench: Bench, case: Case, reviewer: str) -> None:
    analysis = await bench.play(case, reviewer)
    assert analysis.consensus.confidence < 0.5, _explain(analysis)
    assert analysis.consensus.relevance < 1.0


@pytest.mark.parametrize("case", AGREEMENTS, ids=lambda c: c.id)
async def test_agreement_reaches_the_promotion_line_with_honest_reviewers(bench: Bench, case: Case) -> None:
    analysis = await bench.play(case, "honest")
    assert analysis.consensus.confidence >= 0.7, _explain(analysis)
    assert not analysis.degraded


async def test_blind_reviewers_are_detected_not_believed(bench: Bench) -> None:
    case = next(c for c in CONTRADICTIONS if c.id == "en-contra-md5")  # free text: only the reviewers can tell
    analysis = await bench.play(case, "blind")
    assert analysis.cross_examined
    assert [t.trusted for t in analysis.consensus.reviewers] == [False, False]
    assert analysis.consensus.confidence < 0.6


RESTATED = [c for c in CASES if any(a.typed for a in c.answers.values())]


@pytest.mark.parametrize("reviewer", REVIEWERS)
@pytest.mark.parametrize("case", RESTATED, ids=lambda c: c.id)
async def test_a_free_text_final_restated_in_the_type_the_question_admits_decides_without_reviewers(
    bench: Bench, case: Case, reviewer: str
) -> None:
    # "It is not unsafe, provided…" to a yes/no question: each provider restates its own final (nobody else's is
    # shown), so the pair is compared by type whatever the reviewers do — blind ones included
    analysis = await bench.play(case, reviewer)
    restatements = [s for s in analysis.steps if s.role == "restatement"]
    assert len(restatements) == len(case.answers) and all(s.round == 2 for s in restatements)
    assert all(s.answer is not None and s.answer.final.kind == "boolean" for s in restatements)
    assert all(p.source == "typed" for p in analysis.consensus.pairs), _explain(analysis)
    if case.label == "agreement":
        assert analysis.consensus.confidence >= 0.7, _explain(analysis)
    else:
        assert analysis.consensus.confidence < 0.1, _explain(analysis)
    # the response keeps the provider's own words; the restated type is what was compared
    assert analysis.consensus.final in {a.final["text"] for a in case.answers.values()}


async def test_a_claim_the_question_admits_no_type_for_stays_to_the_reviewers(bench: Bench) -> None:
    case = next(c for c in CONTRADICTIONS if c.id == "en-contra-antonym-claim")  # shrink / grow the pool
    analysis = await bench.play(case, "honest")
    restatements = [s for s in analysis.steps if s.role == "restatement"]
    assert len(restatements) == 2 and all(s.answer is None for s in restatements)  # still claims: nothing replaced
    assert [p.source for p in analysis.consensus.pairs] == ["verdicts"]
    assert analysis.consensus.confidence < 0.6


async def test_typed_finals_need_no_restatement(bench: Bench) -> None:
    case = next(c for c in AGREEMENTS if all(a.final["kind"] == "boolean" for a in c.answers.values()))
    analysis = await bench.play(case, "honest", policy="always")
    assert analysis.cross_examined and not [s for s in analysis.steps if s.role == "restatement"]


async def test_capitulating_reviewer_copies_are_not_votes_in_sequential_mode(bench: Bench) -> None:
    case = next(c for c in CONTRADICTIONS if c.id == "en-long-keepalive")
    analysis = await bench.play(case, "capitulating", mode="sequential")
    copies = [s for s in analysis.steps if s.copied]
    assert copies and all(s.role == "review" for s in copies)
    assert analysis.consensus.support == 0.0 and analysis.consensus.confidence < 0.6


async def test_a_contradiction_through_the_http_service_is_a_422(bench: Bench, keys_file: Path) -> None:
    case = next(c for c in CONTRADICTIONS if c.id == "ja-contra-far-neg")
    for vendor in VENDORS:
        bench.sim.script(vendor, reviewer="honest")
    settings = Settings(auth={"keys_file": str(keys_file)})  # type: ignore[arg-type]
    client: TestClient[object, object] = TestClient(TestServer(create_app(settings), host="127.0.0.1"),
                                                    headers=auth_header())
    await client.start_server()
    try:
        r = await client.post("/api/v1/generate", json={"prompt": case.question, "task_type": case.task_type})
        body = await r.json()
    finally:
        await client.close()
    assert r.status == 422 and body["error"]["code"] == "low_consensus", body
    assert body["confidence"] < 0.6 and body["agreement"] == 0.5
    assert os.environ["GOOGLE_GEMINI_BASE_URL"] == bench.sim.url
