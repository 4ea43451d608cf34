"""The consensus engine's pure core: typed finals, reviewer trust, the evidence formula, drift, the calibration.

Every pair here is one a hostile evaluator would try: negations far from the start, "not unsafe", numbers in other
units, Japanese negation forms, a reviewer that agrees with everything, one that copies the answer it reviews.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wallbounce_service import calibration as cal_mod
from wallbounce_service import consensus as c
from wallbounce_service import lexical, protocol
from wallbounce_service.consensus_config import ConsensusSettings
from wallbounce_service.finals import Final, compare
from wallbounce_service.protocol import Item, Review, ReviewOutput, StructuredAnswer

S = ConsensusSettings()
CAL = cal_mod.load()
Q = "Is it safe to expose the Redis port of our cache to the internet?"


def ans(kind: str, value: str, text: str, unit: str = "", body: str = "", restated: str = Q) -> StructuredAnswer:
    final = Final.of({"kind": kind, "value": value, "unit": unit, "text": text})
    return StructuredAnswer(body or f"About the Redis port of our cache and the internet: {text}", final, (text,),
                            True, restated)


def votes(*answers: StructuredAnswer) -> list[c.Vote]:
    return [c.Vote(f"p{i}", a) for i, a in enumerate(answers)]


def cross(reviewer: int, vs: list[c.Vote], verdicts: dict[int, str], probe: str, revised: str = "") -> c.ReviewRecord:
    """A cross-examination record: verdicts on every answer (by vote index) and on the probe negating its own."""
    items = [Item(f"R{j}", j, False) for j in range(len(vs))] + [Item("RP", reviewer, True)]
    reviews = [Review(f"R{j}", v) for j, v in verdicts.items()] + [Review("RP", probe)]  # type: ignore[arg-type]
    output = ReviewOutput(tuple(reviews), revised or vs[reviewer].answer.final.text)
    return c.ReviewRecord(reviewer, tuple(items), output, own_listed=True)


def honest_records(vs: list[c.Vote], same: list[list[int]]) -> list[c.ReviewRecord]:
    """Every provider judges honestly: agree inside its group, disagree outside, disagree with its own negation."""
    group = {i: n for n, g in enumerate(same) for i in g}
    return [cross(k, vs, {j: "agree" if group[j] == group[k] else "disagree" for j in range(len(vs))}, "disagree")
            for k in range(len(vs))]


# --- typed finals ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (("boolean", "yes", ""), ("boolean", "はい", ""), 1.0),
        (("boolean", "yes", ""), ("boolean", "no", ""), 0.0),
        (("boolean", "true", ""), ("boolean", "いいえ", ""), 0.0),
        (("number", "42", "ms"), ("number", "0.042", "s"), 1.0),
        (("number", "42", "ms"), ("number", "42", "s"), 0.0),
        (("number", "30", "min"), ("number", "30", "days"), 0.0),
        (("number", "30", "分"), ("number", "0.5", "時間"), 1.0),
        (("number", "1", "GiB"), ("number", "1024", "MiB"), 1.0),
        (("number", "1", "GB"), ("number", "1", "GiB"), 0.0),  # 7 % apart: not within the 2 % tolerance
        (("number", "1", "MB"), ("number", "8", "Mb"), 1.0),  # bytes and bits are told apart by case
        (("number", "5", "%"), ("number", "0.05", ""), 1.0),
        (("number", "5", "%"), ("number", "5", ""), 1.0),  # a bare number against a percent: either reading
        (("number", "100", "ms"), ("number", "100", "MB"), 0.0),  # different dimensions
        (("number", "3", "requests"), ("number", "3", "request"), 1.0),
        (("number", "3", "widgets"), ("number", "3", "gadgets"), None),  # unknown units: the reviewers decide
        (("number", "1,000", ""), ("number", "1000.4", ""), 1.0),
        (("number", "１０", "秒"), ("number", "10", "s"), 1.0),  # full-width digits
        (("option", "The PostgreSQL", ""), ("option", "postgresql", ""), 1.0),
        (("option", "increase", ""), ("option", "decrease", ""), 0.0),
        (("claim", "429 too many requests", ""), ("claim", "429 Too Many Requests.", ""), 1.0),
        (("claim", "safe", ""), ("claim", "not unsafe", ""), None),  # never read lexically: reviewers decide
        (("claim", "", ""), ("claim", "", ""), None),
        (("boolean", "yes", ""), ("claim", "it is safe", ""), None),  # mixed kinds: reviewers decide
    ],
)
def test_typed_comparison(a: tuple[str, str, str], b: tuple[str, str, str], expected: float | None) -> None:
    fa = Final.of({"kind": a[0], "value": a[1], "unit": a[2], "text": "t"})
    fb = Final.of({"kind": b[0], "value": b[1], "unit": b[2], "text": "t"})
    assert compare(fa, fb) == expected
    assert compare(fb, fa) == expected


@pytest.mark.parametrize(
    "raw",
    [
        {"kind": "boolean", "value": "maybe", "unit": "", "text": "Maybe."},
        {"kind": "number", "value": "about forty", "unit": "", "text": "About forty."},
        {"kind": "number", "value": "nan", "unit": "", "text": "NaN"},
        {"kind": "option", "value": "  ", "unit": "", "text": "Something."},
        {"kind": "tensor", "value": "1", "unit": "", "text": "One."},
        "Yes.",
    ],
)
def test_a_malformed_typed_final_becomes_a_claim_for_the_reviewers(raw: object) -> None:
    assert Final.of(raw).kind == "claim"


# --- the evidence formula ------------------------------------------------------------------------------------------


def test_typed_contradiction_is_below_the_rollback_line_whatever_the_wording() -> None:
    long_body = "Redis authentication, TLS, protected mode and firewall rules all matter here. " * 25
    safe = ans("boolean", "yes", "It is safe.", body=long_body + "So it is safe.")
    unsafe = ans("boolean", "no", "It is, all things considered and after a long analysis, not safe.",
                 body=long_body + "So it is not safe.")
    result = c.build(Q, votes(safe, unsafe), S)
    assert result.raw == 0.0 and result.confidence < 0.6 and result.agreement == 0.5
    assert result.pairs[0].source == "typed"
    assert "fell into 2 group(s)" in result.reasoning


def test_typed_agreement_is_promotable_and_two_against_one_holds() -> None:
    yes1, yes2 = ans("boolean", "yes", "Yes, it is safe."), ans("boolean", "はい", "はい、安全です。")
    no = ans("boolean", "no", "No.")
    agree = c.build(Q, votes(yes1, yes2), S)
    split = c.build(Q, votes(yes1, yes2, no), S)
    assert agree.confidence >= 0.7 and agree.coherence == 1.0
    assert 0.6 <= split.confidence < 0.7, split  # two against one: hold, neither promote nor roll back
    assert split.agreement == pytest.approx(2 / 3, abs=1e-3) and split.chosen in (0, 1)


def test_free_text_needs_reviewers_and_their_verdicts_decide() -> None:
    a = ans("claim", "safe to restart one at a time", "It is safe to restart the nodes one at a time.")
    b = ans("claim", "not unsafe if each rejoins", "It is not unsafe, provided each node rejoins first.")
    vs = votes(a, b)
    unjudged = c.build(Q, vs, S)
    assert unjudged.pairs[0].source == "prior" and unjudged.confidence < 0.6 and unjudged.coherence == 0.0
    agreed = c.build(Q, vs, S, honest_records(vs, [[0, 1]]))
    assert agreed.pairs[0].source == "verdicts" and agreed.confidence >= 0.7
    disputed = c.build(Q, vs, S, honest_records(vs, [[0], [1]]))
    assert disputed.confidence < 0.6


def test_one_dissent_outweighs_a_sycophants_agree() -> None:
    vs = votes(ans("claim", "use md5 with salt", "Use MD5 with a salt."),
               ans("claim", "argon2id", "Never use MD5; use Argon2id."))
    sycophant = cross(0, vs, {0: "agree", 1: "agree"}, "disagree")
    honest = cross(1, vs, {0: "disagree", 1: "agree"}, "disagree")
    result = c.build(Q, vs, S, [sycophant, honest])
    assert all(t.trusted for t in result.reviewers)
    assert result.pairs[0].score == 0.0 and result.confidence < 0.6


def test_a_reviewer_that_agrees_with_everything_weighs_nothing() -> None:
    vs = votes(ans("claim", "use md5 with salt", "Use MD5 with a salt."),
               ans("claim", "argon2id", "Never use MD5; use Argon2id."))
    blind = [cross(k, vs, {0: "agree", 1: "agree"}, "agree") for k in range(2)]
    result = c.build(Q, vs, S, blind)
    assert [t.trusted for t in result.reviewers] == [False, False]
    assert "negation" in result.reviewers[0].reason
    assert result.pairs[0].source == "prior" and result.confidence < 0.6


def test_a_reviewer_that_skips_the_probe_or_its_own_answer_weighs_nothing() -> None:
    vs = votes(ans("claim", "use md5 with salt", "Use MD5 with a salt."),
               ans("claim", "argon2id", "Never use MD5; use Argon2id."))
    full = cross(0, vs, {0: "agree", 1: "agree"}, "disagree")
    no_probe = c.ReviewRecord(0, full.items, ReviewOutput(full.output.reviews[:-1], full.output.revised_final), True)
    no_own = c.ReviewRecord(0, full.items, ReviewOutput(full.output.reviews[1:], full.output.revised_final), True)
    for record in (no_probe, no_own):
        result = c.build(Q, vs, S, [record])
        assert not result.reviewers[0].trusted and "unjudged" in result.reviewers[0].reason
        assert result.confidence < 0.6


def test_a_reviewer_agreeing_with_typed_contradictions_weighs_nothing() -> None:
    # the third answer is free text; the reviewer agrees with the yes and the no alike: uninformative
    vs = votes(ans("boolean", "yes", "Yes."), ans("boolean", "no", "No."), ans("claim", "", "It depends."))
    confused = cross(2, vs, {0: "agree", 1: "agree", 2: "agree"}, "disagree")
    result = c.build(Q, vs, S, [confused])
    assert not result.reviewers[0].trusted and "contradict" in result.reviewers[0].reason
    assert result.confidence < 0.6


def test_a_capitulating_reviewer_weighs_nothing() -> None:
    a = ans("claim", "shrink the pool", "Shrink the connection pool.")
    b = ans("claim", "grow the pool", "Grow the connection pool.")
    vs = votes(a, b)
    # it adopts the other answer: disagrees with its own, and its revised final copies the other's
    turncoat = cross(1, vs, {0: "agree", 1: "disagree"}, "agree", revised="Shrink the connection pool.")
    copier = cross(0, vs, {0: "agree", 1: "agree"}, "disagree", revised="Grow the connection pool.")
    result = c.build(Q, vs, S, [copier, turncoat])
    reasons = {t.reviewer: t.reason for t in result.reviewers}
    assert "capitulated" in reasons[0] and "own answer" in reasons[1]
    assert result.confidence < 0.6


def test_a_copied_answer_is_not_an_independent_vote() -> None:
    original = ans("boolean", "yes", "Yes, it is safe.", body="Behind a password Redis is fine on the internet.")
    vs = [c.Vote("a", original), c.Vote("b", original, independent=False)]
    result = c.build(Q, vs, S)
    assert result.support == 0.0 and result.confidence < 0.6 and result.chosen == 0
    assert "copied" in result.reasoning
    assert c.is_copy(original, original, S)
    changed = StructuredAnswer(original.answer, Final.of({"kind": "boolean", "value": "no", "text": "No."}))
    assert not c.is_copy(changed, original, S)  # the same words with another conclusion say something of their own


def test_a_third_reviewer_decides_a_pair_the_two_did_not() -> None:
    vs = votes(ans("claim", "a", "Answer A."), ans("claim", "b", "Answer B."), ans("claim", "c", "Answer C."))
    judge = cross(2, vs, {0: "agree", 1: "agree", 2: "agree"}, "disagree")
    result = c.build(Q, vs, S, [judge])
    pair01 = next(p for p in result.pairs if (p.i, p.j) == (0, 1))
    assert pair01.source == "third-party" and pair01.score == 1.0


def test_drift_is_caught_even_when_the_typed_finals_agree() -> None:
    on = ans("boolean", "yes", "Yes.")
    off = ans("boolean", "yes", "Yes, rotate the credentials every 90 days.",
              body="Rotating database credentials every 90 days limits a leak; automate it.",
              restated="Should we rotate the database credentials every 90 days?")
    result = c.build(Q, votes(on, off), S)
    assert result.pairs[0].score == 1.0 and result.relevance == 0.0
    assert result.confidence < 0.5 and "drift" in result.reasoning


def test_a_paraphrased_restatement_is_on_topic() -> None:
    a = ans("boolean", "no", "No.", restated="Whether the cache's Redis port may be exposed to the internet safely.")
    b = ans("boolean", "no", "No.", restated="Can we safely expose our Redis cache port to the internet?")
    result = c.build(Q, votes(a, b), S)
    assert result.relevance == 1.0 and result.confidence >= 0.7


def test_japanese_negation_forms_are_left_to_types_and_reviewers() -> None:
    q = "本番のデータベースで管理者ユーザーをアプリ接続に使ってよいですか？"
    a = ans("claim", "使わない", "管理者ユーザーを使わないでください。", restated=q)
    b = ans("claim", "使用するべきではない", "管理者ユーザーを使用するべきではありません。", restated=q)
    vs = votes(a, b)
    assert c.build(q, vs, S).confidence < 0.6  # no lexical stance reading: without reviewers, undecided
    assert c.build(q, vs, S, honest_records(vs, [[0, 1]])).confidence >= 0.7
    ok = ans("boolean", "はい", "はい、使って構いません。", restated=q)
    not_ok = ans("boolean", "いいえ", "安全とは言えません。", restated=q)
    assert c.build(q, votes(ok, not_ok), S).confidence < 0.6


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["yes", "no", "42 ms", "0.042 s", "7 s", "free"]), min_size=2, max_size=3),
    weights=st.lists(st.floats(min_value=0.1, max_value=3.0), min_size=3, max_size=3),
)
def test_confidence_is_bounded_and_independent_of_the_order_of_answers(kinds: list[str], weights: list[float]) -> None:
    def answer(k: str) -> StructuredAnswer:
        if k in ("yes", "no"):
            return ans("boolean", k, k.capitalize() + ".")
        if k == "free":
            return ans("claim", "", "It depends on the firewall.")
        value, unit = k.split()
        return ans("number", value, k, unit)

    vs = [c.Vote(f"p{i}", answer(k), weights[i]) for i, k in enumerate(kinds)]
    results = {round(c.build(Q, list(p), S).confidence, 6) for p in itertools.permutations(vs)}
    assert len(results) == 1
    (confidence,) = results
    assert 0.0 <= confidence <= 1.0


# --- calibration ---------------------------------------------------------------------------------------------------


def test_the_shipped_calibration_is_monotone_and_puts_the_lines_where_the_gates_expect() -> None:
    data = json.loads(cal_mod.CALIBRATION_FILE.read_text())
    assert data["fitted_on"] and len(data["raw"]) == len(data["confidence"]) >= 2
    xs = [i / 100 for i in range(101)]
    ys = [CAL.map(x) for x in xs]
    assert all(a <= b for a, b in itertools.pairwise(ys))
    assert CAL.map(0.0) < 0.6 <= 0.7 <= CAL.map(1.0)  # no evidence of agreement rolls back; full agreement promotes
    assert 0.0 < CAL.drift_low < CAL.drift_high <= 1.0


def test_isotonic_fit_pools_violators_and_shrinks_towards_one_half() -> None:
    xs, ys = cal_mod.fit_map([(0.0, 0.0, 1.0)] * 10 + [(0.5, 1.0, 1.0), (0.6, 0.0, 1.0)] + [(1.0, 1.0, 1.0)] * 10)
    assert xs == sorted(xs) and ys == sorted(ys)
    assert 0.0 < ys[0] < 0.1 and 0.9 < ys[-1] < 1.0  # ten cases each: (0 + 1) / 12 and (10 + 1) / 12
    assert len(xs) == 3  # the violating pair at 0.5/0.6 pooled into one block
    assert cal_mod.fit_drift([0.5, 0.9], [0.1, 0.2]) == (0.2, 0.4)
    with pytest.raises(ValueError):
        cal_mod.fit_map([])


def test_probe_negates_in_the_question_language() -> None:
    yes = Final.of({"kind": "boolean", "value": "yes", "unit": "", "text": "Yes."})
    probe = protocol.probe_payload(yes, "en")
    assert probe["value"] == "no" and probe["final"] == "It is not true that: Yes."
    assert protocol.probe_payload(Final.claim("安全です。"), "ja")["final"].startswith("次の答えは誤りである")
    items = protocol.shuffled_items([(0, False, {}), (1, False, {}), (0, True, {})], "seed")
    assert [i.id for i in items] == ["R1", "R2", "R3"]
    assert items == protocol.shuffled_items([(0, False, {}), (1, False, {}), (0, True, {})], "seed")


def test_the_topic_signal_reads_a_long_prompt_at_its_two_ends() -> None:
    # a pasted log of a megabyte, then the question: the topic signal reads the ends only, so its work is bounded
    question = "Should we enable HTTP keep-alive on the load balancer in front of our API?"
    prompt = "".join(f"{n:07d} GET /api/orders 200 upstream=10.0.{n % 250}.7\n" for n in range(20_000)) + question
    assert len(prompt) > 900_000
    assert len(lexical.trigram_set(prompt)) <= 2 * lexical.WINDOW_CHARS
    assert lexical.window(prompt).endswith(question) and lexical.window(question) == question
    on_topic = ans("boolean", "yes", "Yes, enable keep-alive on the load balancer.", restated=question)
    drifted = ans("claim", "paris", "Paris is the capital of France.", body="Paris is the capital of France.",
                  restated="What is the capital of France?")
    assert c.topicality(prompt, on_topic) >= CAL.drift_high
    assert c.topicality(prompt, drifted) <= CAL.drift_low
    # a provider that restates a long prompt whole keeps its first RESTATED_CHARS only
    parsed = protocol.parse_answer("", {"question": prompt, "answer": "Yes.", "final": {}, "key_claims": []})
    assert len(parsed.restated) <= protocol.RESTATED_CHARS


def test_a_typed_restatement_decides_a_free_text_pair() -> None:
    safe = ans("claim", "safe one at a time", "It is safe to restart them one at a time.")
    not_unsafe = ans("claim", "not unsafe", "It is not unsafe, provided each node rejoins first.")
    undecided = c.build(Q, votes(safe, not_unsafe), S, calibration=CAL)
    assert [p.source for p in undecided.pairs] == ["prior"] and undecided.confidence < 0.6
    yes = Final("boolean", "Yes.", "yes", boolean=True)
    restated = [c.Vote("p0", safe, restated=yes), c.Vote("p1", not_unsafe, restated=yes)]
    decided = c.build(Q, restated, S, calibration=CAL)
    assert [p.source for p in decided.pairs] == ["typed"] and decided.confidence >= 0.7
    assert decided.final == safe.final.text  # the provider's own words are what the response shows
    no = Final("boolean", "No.", "no", boolean=False)
    split = c.build(Q, [c.Vote("p0", safe, restated=yes), c.Vote("p1", not_unsafe, restated=no)], S, calibration=CAL)
    assert split.confidence < 0.1
