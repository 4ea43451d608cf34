"""The consensus engine's three signals, in English and Japanese: agreement rises, contradiction and off-topic fall."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallbounce_service import consensus as c
from wallbounce_service.config import ConsensusSettings

S = ConsensusSettings()

EN_PROMPT = "Should I enable HTTP keep-alive on the load balancer in front of our API?"
EN = {
    "a": "Enabling HTTP keep-alive on the load balancer reuses TCP connections and cuts handshake latency for the "
    "API.\nFINAL: Yes, enable keep-alive on the load balancer.",
    "agree": "Keep-alive lets the load balancer reuse connections to the API, which lowers latency and the CPU "
    "spent on TLS handshakes.\nFINAL: Yes, turn keep-alive on.",
    "contradict": "Keep-alive on the load balancer holds idle connections open to the API and can exhaust "
    "sockets; it is risky.\nFINAL: No, never enable keep-alive on the load balancer.",
    "off": "The capital of France is Paris, a city famous for its museums and the cafes along the Seine.\n"
    "FINAL: Paris is the capital of France.",
}
JA_PROMPT = "ロードバランサーでHTTPキープアライブを有効にすべきですか？"
JA = {
    "a": "ロードバランサーでキープアライブを有効にすると、TCP接続が再利用され、APIのハンドシェイク遅延が減ります。"
    "\n最終回答: はい、キープアライブを有効にしてください。",
    "agree": "キープアライブにより接続を使い回せるので、TLSハンドシェイクのCPU負荷と遅延が下がります。"
    "\n最終回答: はい、有効にするべきです。",
    "contradict": "キープアライブはアイドル接続を保持し、ソケットを枯渇させる危険があります。"
    "\n最終回答: いいえ、絶対に有効にしないでください。",
    "off": "フランスの首都はパリで、美術館やセーヌ川沿いのカフェで有名です。\n最終回答: フランスの首都はパリです。",
}


def score(prompt: str, *texts: str, verdicts: tuple[str | None, ...] = ()) -> c.Consensus:
    return c.build(prompt, [c.Vote(f"p{i}", t) for i, t in enumerate(texts)], S, verdicts)


@pytest.mark.parametrize(("prompt", "answers"), [(EN_PROMPT, EN), (JA_PROMPT, JA)], ids=["english", "japanese"])
def test_confidence_rises_for_agreement_and_falls_for_contradiction_and_off_topic(
    prompt: str, answers: dict[str, str]
) -> None:
    agree = score(prompt, answers["a"], answers["agree"])
    contradict = score(prompt, answers["a"], answers["contradict"])
    off = score(prompt, answers["a"], answers["off"])
    assert agree.agreement == 1.0
    assert contradict.agreement == 0.5 and off.agreement == 0.5
    assert agree.confidence >= 0.7, agree
    assert contradict.confidence < 0.7 and off.confidence < 0.7
    assert agree.confidence - contradict.confidence >= 0.15
    assert agree.confidence - off.confidence >= 0.15
    # relevance falls when an answer is about something else
    assert off.relevance < agree.relevance
    # a third agreeing provider restores a majority: confidence rises again over the contradicted pair
    majority = score(prompt, answers["a"], answers["agree"], answers["contradict"])
    assert contradict.confidence < majority.confidence < agree.confidence
    assert majority.clusters[0] == [0, 1]
    assert majority.chosen in (0, 1)


def test_surface_similarity_alone_cannot_tell_contradiction_from_agreement() -> None:
    """Why the final-answer signal exists: the contradicting text is as similar as the agreeing one."""
    sims_agree = c.tfidf_cosines([EN["a"], EN["agree"]])[0][1]
    sims_contra = c.tfidf_cosines([EN["a"], EN["contradict"]])[0][1]
    assert abs(sims_agree - sims_contra) < 0.2
    assert c.tfidf_cosines([EN["a"], EN["off"]])[0][1] < min(sims_agree, sims_contra)


def test_reviewer_verdicts_move_confidence_in_bounce_mode() -> None:
    agreed = score(EN_PROMPT, EN["a"], EN["agree"], verdicts=("agree",))
    disputed = score(EN_PROMPT, EN["a"], EN["agree"], verdicts=("disagree",))
    assert agreed.verdict_score == 1.0 and disputed.verdict_score == 0.0
    assert agreed.confidence > disputed.confidence
    assert "verdicts" in disputed.reasoning


def test_weights_decide_the_majority() -> None:
    votes = [c.Vote("heavy", EN["contradict"], 3.0), c.Vote("a", EN["a"], 1.0), c.Vote("b", EN["agree"], 1.0)]
    result = c.build(EN_PROMPT, votes, S)
    assert result.chosen == 0
    assert result.agreement == pytest.approx(0.6)


def test_single_answer_is_never_a_confident_consensus() -> None:
    result = score(EN_PROMPT, EN["a"])
    assert result.confidence <= 0.5 and result.agreement <= 0.5


def test_parse_markers_and_fallback() -> None:
    parsed = c.parse("VERDICT: disagree - wrong\nBody text here.\nFINAL: No, keep it off.")
    assert parsed == c.Parsed("Body text here.", "No, keep it off.", "disagree", True)
    ja = c.parse("判定: 同意\n本文です。\n結論：はい、そうです。")
    assert ja.final == "はい、そうです。" and ja.verdict == "agree"
    assert c.parse("判定: 部分的に同意\nx\nFINAL: y").verdict == "partially"
    unmarked = c.parse("First sentence. The last sentence is the answer.")
    assert unmarked.final == "The last sentence is the answer." and not unmarked.has_marker


@pytest.mark.parametrize(
    ("final", "expected"),
    [
        ("Yes, enable it.", 1),
        ("No, never enable it.", -1),
        ("Do not enable it.", -1),
        ("Enable it.", 0),
        ("はい、有効にしてください。", 1),
        ("いいえ、有効にしないでください。", -1),
        ("有効にするべきではありません。", -1),
    ],
)
def test_stance(final: str, expected: int) -> None:
    assert c.stance(final)[0] == expected


def test_the_chosen_response_is_the_most_central_of_the_majority() -> None:
    third = EN["a"].replace("reuses TCP connections", "reuses TCP connections to the API")
    result = score(EN_PROMPT, EN["agree"], EN["a"], third, EN["off"])
    assert result.chosen in (1, 2)
    assert "FINAL" in result.response


def test_consensus_of_three_2kb_answers_is_fast() -> None:
    base = EN["a"] + " " + EN["agree"] + " " + EN["contradict"]
    answers = [(base * 6)[:2048], (EN["agree"] * 12)[:2048], (JA["a"] * 20)[:2048]]
    c.build(EN_PROMPT, [c.Vote(str(i), t) for i, t in enumerate(answers)], S)  # warm up
    start = time.perf_counter()
    for _ in range(5):
        c.build(EN_PROMPT, [c.Vote(str(i), t) for i, t in enumerate(answers)], S)
    per_call_ms = (time.perf_counter() - start) / 5 * 1000
    assert per_call_ms < 50  # the benchmark reports the real figure; this guards against a quadratic blow-up


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=200), min_size=1, max_size=4), st.text(min_size=1, max_size=100))
def test_scores_stay_in_range_for_any_text(texts: list[str], prompt: str) -> None:
    result = score(prompt, *texts)
    for value in (result.confidence, result.agreement, result.similarity, result.coherence, result.relevance):
        assert 0.0 <= value <= 1.0
    assert 0 <= result.chosen < len(texts)
    assert sorted(i for g in result.clusters for i in g) == list(range(len(texts)))
