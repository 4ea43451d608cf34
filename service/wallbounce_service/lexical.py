"""Lexical signals, language-agnostic (character n-grams, no word splitting, so Japanese works).

Used for two things only, never to decide whether answers agree: topic drift (does an answer cover the question's
terms at all) and copy detection (is a reviewer's answer a near-verbatim copy of the one it reviews).

Every function here reads a bounded amount of text, so that no prompt or answer, however long, makes them costly
on the event loop: a text longer than twice ``WINDOW_CHARS`` (2,048) is read as its first and its last
``WINDOW_CHARS`` characters — a long prompt states its question at its start or at its end; the middle (a pasted
log, a document) says little about the topic and would cost about 1.2 s of CPU per MB. An answer's coverage of the
question reads up to ``ANSWER_WINDOW_CHARS`` (8,192) at each end, more than a provider's output cap produces.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

#: characters read at each end of a longer prompt (see the module docstring)
WINDOW_CHARS = 2048
#: characters read at each end of a longer answer (an answer is bounded by the providers' output tokens anyway)
ANSWER_WINDOW_CHARS = 8192
_NON_WORD = re.compile(r"[\W_]+")
_SPACES = re.compile(r"\s+")


def window(text: str, chars: int = WINDOW_CHARS) -> str:
    """``text`` itself, or its first and last ``chars`` characters when it is longer than twice that."""
    return text if len(text) <= 2 * chars else f"{text[:chars]}\n{text[-chars:]}"


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return _SPACES.sub(" ", text).strip()


def ngrams(text: str, sizes: Sequence[int] = (2, 3)) -> Counter[str]:
    """Character n-grams of the normalised text (spaces kept as a boundary signal), read through ``window``."""
    text = normalise(window(text))
    grams: Counter[str] = Counter()
    for n in sizes:
        if len(text) < n:
            if text:
                grams[text] += 1
            continue
        if n == 1:
            grams.update(text)
        else:  # zip of shifted copies: about a third faster than slicing in a generator
            grams.update(map("".join, zip(*(text[k:] for k in range(n)), strict=False)))
    return grams


def cosine(a: str, b: str) -> float:
    """Char n-gram count cosine of two texts (no IDF: for near-duplicate detection)."""
    ca, cb = ngrams(a), ngrams(b)
    if len(ca) > len(cb):
        ca, cb = cb, ca
    dot = sum(v * cb[g] for g, v in ca.items() if g in cb)
    na = math.sqrt(sum(v * v for v in ca.values()))
    nb = math.sqrt(sum(v * v for v in cb.values()))
    return dot / (na * nb) if na and nb else 0.0


def trigram_set(text: str, chars: int = WINDOW_CHARS) -> set[str]:
    """Character trigrams of the text (read through ``window(text, chars)``) with punctuation and spaces dropped."""
    compact = _NON_WORD.sub("", normalise(window(text, chars)))
    if len(compact) < 3:
        return {compact} if compact else set()
    return set(map("".join, zip(compact, compact[1:], compact[2:], strict=False)))


def relevance_of(prompt_grams: set[str], answer: str) -> float:
    """Share of the prompt's character trigrams (``trigram_set`` of the prompt) found in the answer."""
    if not prompt_grams:
        return 1.0
    return len(prompt_grams & trigram_set(answer, ANSWER_WINDOW_CHARS)) / len(prompt_grams)


def containment(part: str, whole_grams: set[str]) -> float:
    """Share of ``part``'s character trigrams found among ``whole_grams``."""
    grams = trigram_set(part)
    return len(grams & whole_grams) / len(grams) if grams else 0.0
