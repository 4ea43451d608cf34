"""Lexical signals, language-agnostic (character n-grams, no word splitting, so Japanese works).

Used for two things only, never to decide whether answers agree: topic drift (does an answer cover the question's
terms at all) and copy detection (is a reviewer's answer a near-verbatim copy of the one it reviews). The caches
use ``ngrams`` for their similar-prompt lookup.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", text).strip()


def ngrams(text: str, sizes: Sequence[int] = (2, 3)) -> Counter[str]:
    """Character n-grams of the normalised text (spaces kept as a boundary signal)."""
    text = normalise(text)
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


def tfidf_cosines(texts: Sequence[str], sizes: Sequence[int] = (2, 3)) -> list[list[float]]:
    """Pairwise cosine of char n-gram TF-IDF vectors (sublinear tf, smoothed IDF over the texts themselves)."""
    counts = [ngrams(t, sizes) for t in texts]
    n_docs = len(texts)
    df: Counter[str] = Counter()
    for c in counts:
        df.update(c.keys())
    idf_by_df = [math.log((1 + n_docs) / (1 + d)) + 1.0 for d in range(n_docs + 1)]
    vectors = [{g: (1 + math.log(tf)) * idf_by_df[df[g]] for g, tf in c.items()} for c in counts]
    norms = [math.sqrt(sum(v * v for v in vec.values())) for vec in vectors]
    matrix = [[1.0 if i == j else 0.0 for j in range(n_docs)] for i in range(n_docs)]
    for i in range(n_docs):
        for j in range(i + 1, n_docs):
            a, b = vectors[i], vectors[j]
            if len(a) > len(b):
                a, b = b, a
            dot = sum(w * b[g] for g, w in a.items() if g in b)
            denom = norms[i] * norms[j]
            matrix[i][j] = matrix[j][i] = dot / denom if denom else 0.0
    return matrix


def cosine(a: str, b: str) -> float:
    """Char n-gram count cosine of two texts (no IDF: for near-duplicate detection)."""
    ca, cb = ngrams(a), ngrams(b)
    if len(ca) > len(cb):
        ca, cb = cb, ca
    dot = sum(v * cb[g] for g, v in ca.items() if g in cb)
    na = math.sqrt(sum(v * v for v in ca.values()))
    nb = math.sqrt(sum(v * v for v in cb.values()))
    return dot / (na * nb) if na and nb else 0.0


def trigram_set(text: str) -> set[str]:
    """Character trigrams of the text with punctuation and spaces dropped (what ``relevance_of`` compares)."""
    return _trigram_set(text)


def _trigram_set(text: str) -> set[str]:
    compact = re.sub(r"[\W_]+", "", normalise(text))
    if len(compact) < 3:
        return {compact} if compact else set()
    return {compact[i : i + 3] for i in range(len(compact) - 2)}


def relevance_of(prompt: str, answer: str, prompt_grams: set[str] | None = None) -> float:
    """Share of the prompt's character trigrams (punctuation and spaces dropped) found in the answer."""
    wanted = _trigram_set(prompt) if prompt_grams is None else prompt_grams
    if not wanted:
        return 1.0
    return len(wanted & _trigram_set(answer)) / len(wanted)


def containment(part: str, whole_grams: set[str]) -> float:
    """Share of ``part``'s character trigrams found among ``whole_grams``."""
    grams = _trigram_set(part)
    return len(grams & whole_grams) / len(grams) if grams else 0.0
