"""The simulated model: what a vendor answers to the service's rounds, as a real model would fill their schemas.

The round is recognised from the JSON schema the request carries (its top-level properties, the same for every
vendor): ``answer`` + ``final`` → an answer; ``reviews`` + ``revised_final`` → a cross-examination; ``reviews`` +
``answer`` → a sequential review; ``restated_final`` → a restatement of the vendor's own final (a case answer's
``typed`` form when the question admits one, else the final unchanged — whatever the reviewer behaviour, since no
other answer is shown). A request without a schema gets plain text (the legacy ``FINAL:`` line).

With evaluation cases loaded (``Player.load``), a question that is a case's question is answered from the case: the
vendor's scripted answer, and reviews judged by the case's positions according to the vendor's ``reviewer``
behaviour — ``honest`` (same position agree, a ``partial`` pair partial, else disagree; the probe, a negated answer,
the other way round), ``blind`` (agree with everything, probes included), ``capitulating`` (adopt the position of
the first listed answer that differs from its own, judge from there, and in a sequential review copy that answer).
Any other question is answered from the vendor's script (``answer``/``final``), its position read from a leading
yes/no of the final; a scripted ``verdict`` is given on every listed answer (the probes the other way round).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection, Iterable
from typing import Any

from wallbounce_service.evalset import Case, question_key

from .scripts import VendorScript

ANSWER, CROSS, REVIEW, RESTATE = "answer", "cross-examination", "review", "restatement"
PROBE_PREFIXES = ("It is not true that: ", "次の答えは誤りである：")
_FINAL = re.compile(r"^\s*FINAL\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_VERDICT = re.compile(r"^\s*VERDICT\s*:\s*(\w+).*$", re.IGNORECASE | re.MULTILINE)
_FLIP = {"agree": "disagree", "disagree": "agree", "partial": "partial"}


def round_of(properties: Collection[str] | None) -> str | None:
    """Which round a request's schema belongs to (None: no structured output asked)."""
    if not properties:
        return None
    if "restated_final" in properties:
        return RESTATE
    if "reviews" in properties:
        return CROSS if "revised_final" in properties else REVIEW
    return ANSWER if "answer" in properties and "final" in properties else None


_STYLES = {  # each vendor words its default answer its own way, as different models do
    "openai": "Considering the question ({topic}), the recommended approach follows from the usual trade-offs: "
    "measure first, change one thing at a time, and keep a way back.",
    "gemini": "On {topic}: the usual practice applies. Start from a measurement of the current behaviour, adjust a "
    "single setting per step and make sure every step can be reverted quickly.",
    "anthropic": "Short version for {topic} — go with the standard recommendation, but verify it on your own "
    "traffic: one change at a time, with metrics before and after, and a rollback plan ready.",
}


def default_answer(prompt: str, script: VendorScript, vendor: str = "openai") -> str:
    topic = " ".join(prompt[:600].split())[:300]
    text = _STYLES.get(vendor, _STYLES["openai"]).format(topic=topic) + f"\nFINAL: {script.final}"
    if "VERDICT" in prompt:
        text = f"VERDICT: {script.verdict or 'agree'}\n{text}"
    return text


def legacy_position(final_text: str) -> str:
    """A scripted final's position: its leading yes/no, else its normalised words."""
    text = unicodedata.normalize("NFKC", final_text).casefold().strip()
    if re.match(r"^(?:yes\b|はい)", text):
        return "bool:yes"
    if re.match(r"^(?:no\b|いいえ)", text):
        return "bool:no"
    return "text:" + " ".join(re.findall(r"\w+", text))


def _legacy_final(text: str) -> dict[str, str]:
    position = legacy_position(text)
    if position.startswith("bool:"):
        return {"kind": "boolean", "value": position[5:], "unit": "", "text": text}
    return {"kind": "claim", "value": "", "unit": "", "text": text}


def _section(text: str, tag: str) -> str | None:
    start, end = text.find(f"<{tag}>\n"), text.rfind(f"\n</{tag}>")
    return text[start + len(tag) + 3 : end] if 0 <= start < end else None


class Player:
    """The simulated models of all vendors (evaluation cases are shared)."""

    def __init__(self, cases: Iterable[Case] = ()) -> None:
        self.cases: dict[str, Case] = {}
        self.load(cases)

    def load(self, cases: Iterable[Case]) -> None:
        for case in cases:
            self.cases[question_key(case.question)] = case

    def plain(self, script: VendorScript, user: str, vendor: str = "openai") -> str:
        if script.answer is not None:
            answer = script.answer
            if "VERDICT" in user and "VERDICT" not in answer:
                answer = f"VERDICT: {script.verdict or 'agree'}\n{answer}"
            return answer
        return default_answer(user, script, vendor)

    def structured(self, vendor: str, script: VendorScript, user: str, kind: str) -> dict[str, Any]:
        """The JSON object of round ``kind`` for the request whose user message is ``user``."""
        question = user if kind == ANSWER else (_section(user, "question") or "")
        case = self.cases.get(question_key(question))
        own = self._own(vendor, script, case, question)
        if kind == ANSWER:
            return own
        if kind == RESTATE:  # its own final only: every reviewer behaviour restates it the same way
            typed = case.answers[vendor].restated() if case is not None and vendor in case.answers else own["final"]
            return {"restated_final": typed}
        try:
            items = json.loads(_section(user, "answers") or "[]")
        except json.JSONDecodeError:
            items = []
        items = [it for it in items if isinstance(it, dict)]
        me = self._position(case, own["final"]["text"])
        verdicts, adopted = self._judge(script, case, me, own, items)
        reviews = [{"id": str(it.get("id")), "verdict": v, "disputed_claim": "" if v == "agree" else
                    str(it.get("final", ""))[:200]} for it, v in zip(items, verdicts, strict=True)]
        if kind == CROSS:
            return {"reviews": reviews, "revised_final": (adopted or own)["final"]["text"]}
        answer = adopted or own
        return {"reviews": reviews, "question": own["question"], "answer": answer["answer"],
                "final": answer["final"], "key_claims": answer["key_claims"]}

    def _own(self, vendor: str, script: VendorScript, case: Case | None, question: str) -> dict[str, Any]:
        if case is not None and vendor in case.answers:
            return case.answers[vendor].structured(case.question)
        text = self.plain(VendorScript(answer=script.answer, final=script.final), question, vendor)
        finals = _FINAL.findall(text)
        body = _VERDICT.sub("", _FINAL.sub("", text)).strip()
        final = finals[-1].strip() if finals else script.final
        # a model restates the question in one sentence, never a long prompt whole
        return {"question": " ".join(question[:600].split())[:300], "answer": body, "final": _legacy_final(final),
                "key_claims": [final]}

    def _position(self, case: Case | None, final_text: str) -> str:
        if case is not None:
            for answer in case.answers.values():
                if " ".join(answer.final["text"].split()) == " ".join(final_text.split()):
                    return answer.pos
        return legacy_position(final_text)

    def _relation(self, case: Case | None, a: str, b: str) -> str:
        if case is not None:
            return case.relation(a, b)
        return "agree" if a == b else "disagree"

    def _judge(
        self, script: VendorScript, case: Case | None, me: str, own: dict[str, Any], items: list[dict[str, Any]]
    ) -> tuple[list[str], dict[str, Any] | None]:
        """Verdicts on ``items`` and, for a capitulating reviewer, the answer it adopted."""
        shown: list[tuple[str, bool]] = []
        for it in items:
            text = str(it.get("final", ""))
            prefix = next((p for p in PROBE_PREFIXES if text.startswith(p)), None)
            shown.append((self._position(case, text[len(prefix):] if prefix else text), prefix is not None))
        adopted: dict[str, Any] | None = None
        behaviour = "fixed" if script.verdict and case is None else script.reviewer
        if behaviour == "blind":
            return ["agree"] * len(items), None
        if behaviour == "capitulating":
            for it, (pos, probe) in zip(items, shown, strict=True):
                if not probe and self._relation(case, me, pos) != "agree":
                    me = pos
                    adopted = {"answer": str(it.get("answer") or own["answer"]), "final": {
                        k: str(it.get(k, "")) for k in ("kind", "value", "unit")} | {"text": str(it["final"])},
                        "key_claims": [str(c) for c in it.get("key_claims", [])]}
                    break
        verdicts = []
        for pos, probe in shown:
            if behaviour == "fixed":
                base = "agree" if pos == me else str(script.verdict)
            else:
                base = self._relation(case, me, pos)
            verdicts.append(_FLIP[base] if probe else base)
        return verdicts, adopted
