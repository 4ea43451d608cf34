"""The labelled evaluation set of the consensus engine (``data/consensus_eval.yaml``), shipped with the calibration.

Each case is a question with scripted structured answers per vendor (the answer text, the canonical final, key
claims) and a *position* per answer: answers with the same position reach the same conclusion, answers with
different positions contradict each other unless the case lists the pair as ``partial``. The simulators play the
cases over the wire (``wallbounce_sim``): honest reviewers judge by these positions, blind ones agree with
everything, capitulating ones adopt the first differing answer they are shown. ``label`` is what the confidence
should say: ``agreement`` (1), ``contradiction`` (0), ``drift`` (0: an answer is off topic), ``split`` (two
against one: 2/3). A text starting with ``@name`` begins with the shared long body ``name`` (the 2 KB answers).
An answer whose final is free text although the question admits a type (a yes/no question answered "it is not
unsafe") has ``typed``: what the provider gives when asked to restate its own final in that type (the restatement
round).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .calibration import DATA_DIR

EVAL_FILE = DATA_DIR / "consensus_eval.yaml"
Label = Literal["agreement", "contradiction", "drift", "split"]
TARGET: dict[str, float] = {"agreement": 1.0, "contradiction": 0.0, "drift": 0.0, "split": 2 / 3}
_DEFAULT_LABEL: dict[str, Label] = {
    "paraphrase": "agreement",
    "same_conclusion": "agreement",
    "contradiction": "contradiction",
    "long_conclusion": "contradiction",
    "two_vs_one": "split",
    "drift": "drift",
}
TASK_PROVIDERS = {"basic": ("gemini", "anthropic"), "premium": ("openai", "gemini"),
                  "critical": ("openai", "anthropic", "gemini")}


@dataclass(frozen=True)
class CaseAnswer:
    pos: str
    text: str
    final: dict[str, str]
    claims: tuple[str, ...]
    asked: str = ""  # the question this answer really answers (a drifting one); empty: the case's question
    typed: dict[str, str] | None = None  # a free-text final restated in the type the question admits (if it does)

    def restated(self) -> dict[str, str]:
        """The restatement round's ``restated_final``: the typed form when the question admits one, else the
        final unchanged."""
        return dict(self.typed) if self.typed is not None else dict(self.final)

    def structured(self, question: str) -> dict[str, Any]:
        """The answer as the answer schema's JSON object (``question``: the case's, restated when on topic)."""
        return {"question": self.asked or question, "answer": self.text, "final": dict(self.final),
                "key_claims": list(self.claims)}


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    subtype: str
    lang: str
    label: Label
    task_type: str
    question: str
    answers: dict[str, CaseAnswer]
    partial: frozenset[frozenset[str]]

    @property
    def target(self) -> float:
        return TARGET[self.label]

    def relation(self, a: str, b: str) -> str:
        """How an honest expert holding position ``a`` judges an answer holding ``b``."""
        if a == b and a != "drift":
            return "agree"
        if frozenset((a, b)) in self.partial:
            return "partial"
        return "disagree"


def _answer(raw: dict[str, Any], bodies: dict[str, str]) -> CaseAnswer:
    text = str(raw["text"]).strip()
    if text.startswith("@"):
        name, _, rest = text[1:].partition("\n")
        text = bodies[name.strip()].strip() + ("\n\n" + rest.strip() if rest.strip() else "")
    return CaseAnswer(str(raw["pos"]), text, _final(raw["final"]), tuple(str(c) for c in raw.get("claims", [])),
                      str(raw.get("asked", "")), _final(raw["typed"]) if raw.get("typed") else None)


def _final(raw: list[Any]) -> dict[str, str]:
    kind, value, unit, text = (str(x) for x in raw)
    return {"kind": kind, "value": value, "unit": unit, "text": text}


def parse_cases(data: dict[str, Any]) -> list[Case]:
    """Cases from the YAML document; a malformed case is an error naming it."""
    bodies = {str(k): str(v) for k, v in (data.get("bodies") or {}).items()}
    cases = []
    seen: set[str] = set()
    questions: set[str] = set()
    for raw in data["cases"]:
        cid = str(raw["id"])
        try:
            if cid in seen:
                raise ValueError("duplicate id")
            seen.add(cid)
            if question_key(str(raw["question"])) in questions:
                raise ValueError("another case has the same question (the simulators find cases by question)")
            questions.add(question_key(str(raw["question"])))
            category = str(raw["category"])
            label = raw.get("label") or _DEFAULT_LABEL[category]
            if label not in TARGET:
                raise ValueError(f"unknown label {label}")
            task_type = str(raw.get("task_type", "basic"))
            answers = {str(v): _answer(a, bodies) for v, a in raw["answers"].items()}
            if set(answers) != set(TASK_PROVIDERS[task_type]):
                raise ValueError(f"answers {sorted(answers)} do not match task_type {task_type}")
            partial = frozenset(frozenset(str(p) for p in pair) for pair in raw.get("partial", []))
            cases.append(Case(cid, category, str(raw.get("subtype", category)), str(raw.get("lang", "en")), label,
                              task_type, str(raw["question"]).strip(), answers, partial))
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"evaluation case {cid}: {exc}") from exc
    return cases


@functools.cache
def load_cases(path: Path = EVAL_FILE) -> tuple[Case, ...]:
    return tuple(parse_cases(yaml.safe_load(path.read_text(encoding="utf-8"))))


def question_key(text: str) -> str:
    return " ".join(text.split())
