"""Canonical final answers and their typed comparison: booleans, numbers with units, options, short claims.

A provider states its final answer in structure (``kind``, ``value``, ``unit``, ``text``). ``Final.of`` validates
it: a ``boolean`` whose value is not yes/no, a ``number`` that does not parse, an empty ``option`` become a
``claim`` (free text, judged by the reviewers instead). ``compare`` says whether two finals agree:

- both ``boolean``: equal values agree (1.0), else they contradict (0.0);
- both ``number``: converted to a common unit (``units``), equal within the relative/absolute tolerance agree,
  else contradict; a unit-less number is compared as written and, against a percent, also as a fraction; different
  dimensions (ms against MB) contradict; units the table does not know are compared only when they name the same
  thing, else the pair is left to the reviewers (None);
- both ``option``: the same normalised label agrees, a different one contradicts;
- both ``claim``: the same normalised canonical value agrees; anything else is left to the reviewers (None);
- different kinds: left to the reviewers (None).

No negation words or stance are ever read from text: the model states the type and value, the reviewers judge
free text.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

from . import units

Kind = Literal["boolean", "number", "option", "claim"]
KINDS: tuple[Kind, ...] = ("boolean", "number", "option", "claim")

_TRUE = {"yes", "true", "y", "はい", "正しい", "肯定"}
_FALSE = {"no", "false", "n", "いいえ", "誤り", "否定"}
_ARTICLES = re.compile(r"^(?:the|a|an)\s+")
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?$", re.IGNORECASE)


def normalise_label(text: str) -> str:
    """NFKC, case-folded, punctuation and spaces collapsed, a leading English article dropped."""
    folded = unicodedata.normalize("NFKC", text).casefold().strip()
    folded = _ARTICLES.sub("", folded)
    return _PUNCT.sub(" ", folded).strip()


def parse_number(value: str) -> float | None:
    text = unicodedata.normalize("NFKC", value).strip().replace(",", "").replace("_", "").replace(" ", "")
    if not _NUMBER.match(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Final:
    """One provider's canonical final answer."""

    kind: Kind
    text: str
    value: str = ""
    unit: str = ""
    boolean: bool | None = None
    number: float | None = None

    @property
    def typed(self) -> bool:
        """Comparable by type alone (a claim needs reviewers unless its canonical values match exactly)."""
        return self.kind != "claim"

    def describe(self) -> str:
        """The final as shown to reviewers: the sentence, with the typed value when there is one."""
        if self.kind == "boolean":
            return f"{self.text} [yes/no: {'yes' if self.boolean else 'no'}]"
        if self.kind == "number":
            unit = f" {self.unit}" if self.unit else ""
            return f"{self.text} [number: {self.value}{unit}]"
        if self.kind == "option":
            return f"{self.text} [option: {self.value}]"
        return self.text

    @staticmethod
    def of(data: Any) -> Final:
        """A validated final from the structured output (a dict); anything malformed becomes a claim."""
        if not isinstance(data, dict):
            return Final("claim", str(data or "").strip())
        text = " ".join(str(data.get("text") or "").split())
        value = " ".join(str(data.get("value") or "").split())
        unit = " ".join(str(data.get("unit") or "").split())
        kind = data.get("kind")
        text = text or value
        if kind == "boolean":
            label = normalise_label(value)
            if label in _TRUE or label in _FALSE:
                return Final("boolean", text, "yes" if label in _TRUE else "no", boolean=label in _TRUE)
        elif kind == "number":
            number = parse_number(value)
            if number is not None:
                return Final("number", text, value, unit, number=number)
        elif kind == "option" and normalise_label(value):
            return Final("option", text, value)
        return Final("claim", text, value if kind == "claim" else "")

    @staticmethod
    def claim(text: str) -> Final:
        return Final("claim", " ".join(text.split()))


def _numbers_equal(a: float, b: float, rel: float, abs_tol: float) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)


def compare_numbers(a: Final, b: Final, rel: float, abs_tol: float) -> float | None:
    assert a.number is not None and b.number is not None
    ua, ub = units.lookup(a.unit), units.lookup(b.unit)
    blank_a, blank_b = not units.normalise_unit(a.unit), not units.normalise_unit(b.unit)
    if ua is not None and ub is not None:
        if ua.dimension != ub.dimension:
            return 0.0
        return 1.0 if _numbers_equal(a.number * ua.factor, b.number * ub.factor, rel, abs_tol) else 0.0
    if blank_a or blank_b:
        candidates = [(a.number, b.number)]
        other = ub if blank_a else ua
        if other is not None and other.dimension == "fraction":  # 0.05 against 5 %: either reading
            candidates.append((a.number * (ua.factor if ua else 1.0), b.number * (ub.factor if ub else 1.0)))
        return 1.0 if any(_numbers_equal(x, y, rel, abs_tol) for x, y in candidates) else 0.0
    if ua is None and ub is None and units.same_count_noun(a.unit, b.unit):
        return 1.0 if _numbers_equal(a.number, b.number, rel, abs_tol) else 0.0
    return None  # a unit we do not know against another: the reviewers decide


def compare(a: Final, b: Final, rel: float = 0.02, abs_tol: float = 1e-9) -> float | None:
    """1.0 agree, 0.0 contradict, None when the types cannot decide (see the module docstring)."""
    if a.kind != b.kind:
        return None
    if a.kind == "boolean":
        return 1.0 if a.boolean == b.boolean else 0.0
    if a.kind == "number":
        return compare_numbers(a, b, rel, abs_tol)
    if a.kind == "option":
        return 1.0 if normalise_label(a.value) == normalise_label(b.value) else 0.0
    ka, kb = normalise_label(a.value), normalise_label(b.value)
    return 1.0 if ka and ka == kb else None
