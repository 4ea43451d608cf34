"""What the service says to the providers in each round, and the structured output it asks back.

Four rounds, each with a system prompt, a user prompt and a JSON schema that every vendor enforces natively
(OpenAI ``text.format`` json_schema, strict; Gemini ``response_schema``; Anthropic a forced tool call):

- **answer** (parallel round 1, sequential round 1): the answer text, a canonical ``final`` (kind, value, unit,
  text) and up to five ``key_claims``. The user prompt is the question itself.
- **cross-examination** (parallel round 2): the question and, as JSON, every provider's final answer (the
  reviewer's own among them, unmarked) plus one *probe* — the negation of the reviewer's own final — shuffled under
  opaque ids. Each is judged agree / partial / disagree, with the claim disputed; ``revised_final`` is the
  reviewer's final after reading the others.
- **restatement** (parallel round 2, beside the cross-examination, for a provider whose final is free text): the
  question and the provider's *own* final answer only; it restates that final in the most specific type the question
  admits (yes/no, a number, an option the question names), or leaves it a claim. Nobody else's answer is shown, so
  a reviewer that agrees with whatever it is shown has nothing to agree with.
- **review** (sequential rounds 2…): the question and the previous answers (text, final, claims) plus a probe
  negating the most recent one; the reviewer judges each and gives its own answer in the answer schema's fields.

``docs/service-protocol.md`` documents the same, for anyone writing an independent fake.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from .finals import KINDS, Final
from .lexical import window

Verdict = Literal["agree", "partial", "disagree"]
VERDICTS: tuple[Verdict, ...] = ("agree", "partial", "disagree")
_JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
PROBE_PREFIX = {"en": "It is not true that: ", "ja": "次の答えは誤りである："}
#: characters of a provider's restated question that are kept (it is asked for one sentence)
RESTATED_CHARS = 1000

_FINAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "the canonical final answer",
    "properties": {
        "kind": {
            "type": "string",
            "enum": list(KINDS),
            "description": "boolean for a yes/no question, number for a quantity, option when the question names "
            "alternatives, claim otherwise",
        },
        "value": {
            "type": "string",
            "description": "boolean: yes or no; number: the number alone (42.5); option: the alternative exactly as "
            "the question words it; claim: the claim's canonical key phrase",
        },
        "unit": {"type": "string", "description": "the number's unit (ms, s, MiB, %, requests); empty otherwise"},
        "text": {"type": "string", "description": "the final answer as one short sentence"},
    },
    "required": ["kind", "value", "unit", "text"],
    "additionalProperties": False,
}
_QUESTION_SCHEMA: dict[str, Any] = {
    "type": "string",
    "description": "the question you are answering, restated in one sentence",
}
_CLAIMS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string"},
    "description": "the answer's key claims, at most five short sentences",
}
_REVIEWS_SCHEMA: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "the id of the answer judged"},
            "verdict": {"type": "string", "enum": list(VERDICTS)},
            "disputed_claim": {"type": "string", "description": "the claim disputed; empty when agreeing"},
        },
        "required": ["id", "verdict", "disputed_claim"],
        "additionalProperties": False,
    },
}


@dataclass(frozen=True)
class OutputSchema:
    """A named JSON schema a provider must answer in."""

    name: str
    description: str
    schema: dict[str, Any]


ANSWER = OutputSchema(
    "wallbounce_answer",
    "Your answer to the question, with its canonical final answer and key claims.",
    {
        "type": "object",
        "properties": {
            "question": _QUESTION_SCHEMA,
            "answer": {"type": "string", "description": "the full answer"},
            "final": _FINAL_SCHEMA,
            "key_claims": _CLAIMS_SCHEMA,
        },
        "required": ["question", "answer", "final", "key_claims"],
        "additionalProperties": False,
    },
)
CROSS_EXAMINATION = OutputSchema(
    "wallbounce_cross_examination",
    "Your verdict on every answer listed, and your own final answer after reading them.",
    {
        "type": "object",
        "properties": {
            "reviews": _REVIEWS_SCHEMA,
            "revised_final": {"type": "string", "description": "your final answer after reading the others"},
        },
        "required": ["reviews", "revised_final"],
        "additionalProperties": False,
    },
)
REVIEW = OutputSchema(
    "wallbounce_review",
    "Your verdict on every previous answer, then your own answer, final answer and key claims.",
    {
        "type": "object",
        "properties": {
            "reviews": _REVIEWS_SCHEMA,
            "question": _QUESTION_SCHEMA,
            "answer": {"type": "string", "description": "your own full answer"},
            "final": _FINAL_SCHEMA,
            "key_claims": _CLAIMS_SCHEMA,
        },
        "required": ["reviews", "question", "answer", "final", "key_claims"],
        "additionalProperties": False,
    },
)

RESTATEMENT = OutputSchema(
    "wallbounce_restatement",
    "Your own final answer, restated in the most specific type the question admits.",
    {
        "type": "object",
        "properties": {"restated_final": _FINAL_SCHEMA},
        "required": ["restated_final"],
        "additionalProperties": False,
    },
)

ANSWER_SYSTEM = (
    "You are one of several independent experts consulted on the same question. Answer accurately and concisely, "
    "in the language of the question. Restate the question you are answering in `question`. Then state your final "
    "answer in the `final` field: kind `boolean` (value yes "
    "or no, answering the question exactly as asked) when it is a yes/no question; `number` (the value alone, its "
    "unit apart) when it asks for a quantity; `option` (the alternative exactly as the question words it) when it "
    "names alternatives; `claim` (one short sentence, its canonical key phrase as the value) otherwise. List up to "
    "five key claims your answer rests on."
)
CROSS_EXAMINATION_SYSTEM = (
    "You are cross-examining the final answers that several experts gave to one question. For every answer listed, "
    "give your VERDICT in `reviews`: `agree` when it reaches the same conclusion as the correct answer would (other "
    "wording or reasoning is fine), `partial` when it is compatible but differs in a material detail, `disagree` "
    "when its conclusion is wrong or contradicts the correct one; name the claim you dispute. Judge each answer on "
    "its own merits, not by how many give it. Then give your own final answer in `revised_final`."
)
REVIEW_SYSTEM = (
    "You are one of several independent experts; other experts have already answered the question. For every "
    "previous answer, give your VERDICT in `reviews` (`agree`: same conclusion; `partial`: compatible but differing "
    "in a material detail; `disagree`: the conclusion is wrong or contradicts yours) and name the claim you "
    "dispute. Then answer the question yourself, in your own words and from your own judgement, in the language of "
    "the question, with your final answer in the `final` field (kind boolean, number, option or claim, as for any "
    "answer) and up to five key claims."
)

RESTATEMENT_SYSTEM = (
    "You answered the question below; your final answer is shown. Restate that same final answer, without changing "
    "its conclusion, in the most specific type the question admits, in `restated_final`: kind `boolean` (value yes "
    "or no, answering the question exactly as asked) when the question can be answered yes or no and your answer "
    "does answer it so; `number` (the value alone, its unit apart) when it asks for a quantity; `option` (the "
    "alternative exactly as the question words it) when the question names alternatives; otherwise `claim`, with "
    "your final answer's sentence and key phrase unchanged. A conditional answer (\"it depends\") stays a claim."
)


def language(text: str) -> Literal["en", "ja"]:
    """Japanese when the text (its two ends, if long: ``lexical.window``) holds kana or kanji, else English."""
    return "ja" if _JAPANESE.search(window(text)) else "en"


@dataclass(frozen=True)
class StructuredAnswer:
    """One provider's answer: text, canonical final, key claims, the question as it restated it (a drift signal);
    ``structured`` is False for plain-text fallbacks."""

    answer: str
    final: Final
    key_claims: tuple[str, ...] = ()
    structured: bool = True
    restated: str = ""


@dataclass(frozen=True)
class Review:
    """One verdict of a reviewer on one listed item."""

    id: str
    verdict: Verdict
    disputed_claim: str = ""


@dataclass(frozen=True)
class ReviewOutput:
    """What a reviewer returned: its verdicts, and (cross-examination) its final after reading the others."""

    reviews: tuple[Review, ...]
    revised_final: str = ""
    answer: StructuredAnswer | None = None  # sequential review: the reviewer's own answer


@dataclass(frozen=True)
class Item:
    """One entry of the list a reviewer judges; ``target`` is the index of the answer it shows (or negates)."""

    id: str
    target: int
    probe: bool
    payload: dict[str, Any] = field(default_factory=dict)


_FINAL_LINE = re.compile(r"^\s*[*#>\-\s]*(?:final(?:\s+answer)?|最終(?:回答)?|結論)\s*[*]*\s*[:：]\s*(.+?)\s*$",
                         re.IGNORECASE | re.MULTILINE)


def parse_answer(text: str, data: Any, max_claims: int = 5) -> StructuredAnswer:
    """The structured answer from a provider's JSON (``data``); plain text falls back to a free-text claim (the last
    ``FINAL:`` line, else the last line)."""
    if isinstance(data, dict) and isinstance(data.get("answer"), str):
        claims = data.get("key_claims")
        claim_list = tuple(str(c).strip() for c in claims if str(c).strip())[:max_claims] if isinstance(
            claims, list) else ()
        final = Final.of(data.get("final"))
        if not final.text:
            final = Final.claim(data["answer"].strip().splitlines()[-1] if data["answer"].strip() else "")
        restated = " ".join(str(data.get("question") or "")[:RESTATED_CHARS].split())
        return StructuredAnswer(data["answer"].strip(), final, claim_list, True, restated)
    finals = _FINAL_LINE.findall(text)
    body = _FINAL_LINE.sub("", text).strip()
    lines = [line for line in text.strip().splitlines() if line.strip()]
    final_text = finals[-1] if finals else (lines[-1] if lines else "")
    return StructuredAnswer(body or text.strip(), Final.claim(final_text), (), structured=False)


def parse_reviews(data: Any, max_claims: int = 5) -> ReviewOutput | None:
    """A reviewer's output, or None when it is not the structure asked for."""
    if not isinstance(data, dict) or not isinstance(data.get("reviews"), list):
        return None
    reviews = []
    for entry in data["reviews"]:
        if not isinstance(entry, dict):
            continue
        verdict = str(entry.get("verdict", "")).strip().lower()
        if verdict == "partially":
            verdict = "partial"
        if verdict not in VERDICTS or not isinstance(entry.get("id"), str):
            continue
        reviews.append(Review(entry["id"].strip(), verdict, str(entry.get("disputed_claim") or "")[:500]))
    answer = None
    if isinstance(data.get("answer"), str):
        answer = parse_answer("", data, max_claims)
    return ReviewOutput(tuple(reviews), " ".join(str(data.get("revised_final") or "").split()), answer)


def probe_payload(final: Final, lang: str, with_answer: bool = False) -> dict[str, Any]:
    """The negation of ``final`` as a listed item: a flipped boolean, else a claim that it is not true
    (``with_answer``: shaped like a sequential review's entries, which show the answer text too)."""
    text = PROBE_PREFIX["ja" if lang == "ja" else "en"] + final.text
    head = {"answer": text} if with_answer else {}
    if final.kind == "boolean":
        return {**head, "final": text, "kind": "boolean", "value": "no" if final.boolean else "yes", "unit": "",
                "key_claims": [text]}
    return {**head, "final": text, "kind": "claim", "value": "", "unit": "", "key_claims": [text]}


def final_payload(answer: StructuredAnswer) -> dict[str, Any]:
    f = answer.final
    return {"final": f.text, "kind": f.kind, "value": f.value, "unit": f.unit, "key_claims": list(answer.key_claims)}


def shuffled_items(entries: list[tuple[int, bool, dict[str, Any]]], seed_text: str) -> list[Item]:
    """The entries in a deterministic order seeded by ``seed_text`` (no position bias), under ids R1, R2, …"""
    order = list(entries)
    seed = int.from_bytes(hashlib.sha256(window(seed_text).encode()).digest()[:8], "big")
    random.Random(seed).shuffle(order)
    return [Item(f"R{n}", target, probe, payload) for n, (target, probe, payload) in enumerate(order, start=1)]


def _render(question: str, items: list[Item], heading: str) -> str:
    listed = [{"id": item.id, **item.payload} for item in items]
    return (
        f"<question>\n{question}\n</question>\n\n{heading}\n"
        f"<answers>\n{json.dumps(listed, ensure_ascii=False, indent=1)}\n</answers>"
    )


def cross_examination_prompt(question: str, items: list[Item]) -> str:
    return _render(question, items, "Final answers given to the question (in no particular order), as JSON:")


def review_prompt(question: str, items: list[Item]) -> str:
    return _render(question, items, "Answers so far (in no particular order), as JSON:")


def restatement_prompt(question: str, answer: StructuredAnswer) -> str:
    """The user message of a restatement: the question and the provider's own final answer (nobody else's)."""
    own = {"final": answer.final.text, "kind": answer.final.kind, "value": answer.final.value}
    return (
        f"<question>\n{question}\n</question>\n\nYour final answer, as JSON:\n"
        f"<final>\n{json.dumps(own, ensure_ascii=False, indent=1)}\n</final>"
    )


def parse_restatement(data: Any) -> Final | None:
    """The restated final, or None when the output is not the structure asked for."""
    if not isinstance(data, dict) or not isinstance(data.get("restated_final"), dict):
        return None
    return Final.of(data["restated_final"])


def review_payload(answer: StructuredAnswer, chars: int) -> dict[str, Any]:
    return {"answer": answer.answer[:chars], **final_payload(answer)}
