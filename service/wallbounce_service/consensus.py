"""The consensus engine: pure functions from the providers' answers (and the prompt) to scores and a chosen answer.

Surface similarity measures topic overlap, not stance, so ``confidence`` combines three signals:

(a) **agreement** — every provider ends its answer with a one-line ``FINAL:`` answer (parsed marker); the final
    answers are clustered (single link: same stance and char n-gram cosine >= ``cluster_threshold``, or both open
    with the same explicit yes/no), and agreement is the provider-weighted share of the largest cluster.
    Stance is read from the final line: a leading yes/no (はい/いいえ) or negation words (not, never, ない, ません…).
(b) **similarity** — mean pairwise char n-gram TF-IDF cosine of the full answers (language-agnostic: no word
    splitting, so it works for Japanese), divided by ``similarity_saturation`` and capped at 1.
(c) **verdict** — in bounce mode each reviewer states ``VERDICT: agree | partially | disagree`` on the previous
    answer; the mean (1, 0.5, 0) is the signal. Absent in parallel mode.

``confidence = (w_a·a + w_s·b + w_v·c) / (w_a + w_s + w_v)`` over the signals present (defaults 0.6 / 0.25 / 0.15);
a single answer is capped at 0.5 (one voice is never a consensus).
``coherence`` is the mean normalised similarity of the answers that agree with each other (of all pairs when no two
agree); ``relevance`` is the mean share of the prompt's character trigrams that each answer covers, normalised by
``relevance_saturation``. The chosen ``response`` is the member of the largest cluster most similar to the others.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from .config import ConsensusSettings

_FINAL = re.compile(
    r"^\s*[*#>\-\s]*(?:final(?:\s+answer)?|最終(?:回答|的な答え)?|結論)\s*[*]*\s*[:：]\s*(.+?)\s*$",
    re.IGNORECASE | re.MULTILINE,
)
_VERDICT = re.compile(r"^\s*[*#>\-\s]*(?:verdict|判定|評価)\s*[*]*\s*[:：]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")

_YES = re.compile(r"^(?:yes|yeah|correct|agreed?|はい|ええ|そうです|賛成)\b|^(?:はい|ええ|賛成)", re.IGNORECASE)
_NO = re.compile(r"^(?:no|nope|never|いいえ|いや|反対)\b|^(?:いいえ|反対)", re.IGNORECASE)
_NEGATION = re.compile(
    r"\b(?:not|never|no|don't|do not|doesn't|shouldn't|should not|mustn't|must not|cannot|can't|avoid|without)\b"
    r"|ない|ません|ぬ|べきでは|いけない|いけません|禁止|無効|避け|不要|しないで",
    re.IGNORECASE,
)

VERDICT_SCORES = {"agree": 1.0, "partially": 0.5, "partial": 0.5, "disagree": 0.0}
_VERDICT_WORDS = (
    ("disagree", "disagree"),
    ("partially", "partially"),
    ("partial", "partially"),
    ("agree", "agree"),
    ("部分的", "partially"),
    ("反対", "disagree"),
    ("不同意", "disagree"),
    ("同意", "agree"),
    ("賛成", "agree"),
)


@dataclass(frozen=True)
class Parsed:
    """One answer split into its body, one-line final answer and (bounce mode) verdict."""

    body: str
    final: str
    verdict: str | None
    has_marker: bool


@dataclass(frozen=True)
class Vote:
    provider: str
    text: str
    weight: float = 1.0


@dataclass(frozen=True)
class Consensus:
    confidence: float
    agreement: float
    similarity: float
    verdict_score: float | None
    coherence: float
    relevance: float
    clusters: list[list[int]]
    chosen: int
    response: str
    agreement_scores: list[float]
    reasoning: str


def parse(text: str) -> Parsed:
    """Body, final answer and verdict of one answer; without a ``FINAL:`` marker the last sentence stands in."""
    finals = _FINAL.findall(text)
    verdicts = _VERDICT.findall(text)
    body = _VERDICT.sub("", _FINAL.sub("", text)).strip()
    verdict = parse_verdict(verdicts[-1]) if verdicts else None
    if finals:
        return Parsed(body or finals[-1], finals[-1].strip(), verdict, True)
    sentences = [s for s in _SENTENCE_END.split(body) if s.strip()]
    return Parsed(body, sentences[-1].strip() if sentences else body, verdict, False)


def parse_verdict(raw: str) -> str | None:
    lowered = raw.strip().lower()
    for word, verdict in _VERDICT_WORDS:
        if lowered.startswith(word) or (not lowered.isascii() and word in lowered):
            return verdict
    return None


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", text).strip()


def stance(final: str) -> tuple[int, bool]:
    """(+1 | -1 | 0, explicit): an explicit leading yes/no, else -1 when negated, else 0 (no stance)."""
    text = normalise(final).lstrip("*-#> \"'「『")
    if _NO.match(text):
        return -1, True
    if _YES.match(text):
        return (-1, False) if _NEGATION.search(text[3:]) else (1, True)
    return (-1, False) if _NEGATION.search(text) else (0, False)


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
    sublinear = [0.0] + [1 + math.log(tf) for tf in range(1, 64)]
    vectors = [
        {g: (sublinear[tf] if tf < 64 else 1 + math.log(tf)) * idf_by_df[df[g]] for g, tf in c.items()} for c in counts
    ]
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


def _trigram_set(text: str) -> set[str]:
    compact = re.sub(r"[\W_]+", "", normalise(text))
    if len(compact) < 3:
        return {compact} if compact else set()
    return {compact[i : i + 3] for i in range(len(compact) - 2)}


def relevance_of(prompt: str, answer: str) -> float:
    """Share of the prompt's character trigrams (punctuation and spaces dropped) found in the answer."""
    wanted = _trigram_set(prompt)
    if not wanted:
        return 1.0
    return len(wanted & _trigram_set(answer)) / len(wanted)


def cluster(finals: Sequence[str], threshold: float) -> list[list[int]]:
    """Single-link clusters of final answers: same stance and similar wording, or the same explicit yes/no."""
    stances = [stance(f) for f in finals]
    sims = tfidf_cosines(finals, sizes=(1, 2, 3)) if len(finals) > 1 else [[1.0]]
    parent = list(range(len(finals)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(finals)):
        for j in range(i + 1, len(finals)):
            (si, ei), (sj, ej) = stances[i], stances[j]
            if si and sj and si != sj:
                continue  # opposite stances never agree, however similar the words
            same = (ei and ej and si == sj) or sims[i][j] >= threshold
            if same:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(finals)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def build(
    prompt: str,
    votes: Sequence[Vote],
    settings: ConsensusSettings,
    verdicts: Sequence[str | None] = (),
) -> Consensus:
    """The consensus of ``votes`` (at least one); ``verdicts`` are the bounce reviewers' verdicts, if any."""
    if not votes:
        raise ValueError("no answers to build a consensus from")
    parsed = [parse(v.text) for v in votes]
    weights = [max(v.weight, 0.0) for v in votes]
    total_weight = sum(weights) or 1.0
    groups = cluster([p.final for p in parsed], settings.cluster_threshold)
    best = max(groups, key=lambda g: (sum(weights[i] for i in g), len(g)))
    agreement = sum(weights[i] for i in best) / total_weight

    sims = tfidf_cosines([p.body for p in parsed]) if len(parsed) > 1 else [[1.0]]
    sat = settings.similarity_saturation
    pairs = [(i, j) for i in range(len(parsed)) for j in range(i + 1, len(parsed))]
    similarity = min(1.0, sum(sims[i][j] for i, j in pairs) / len(pairs) / sat) if pairs else 0.0
    agreeing_pairs = [(i, j) for g in groups for i in g for j in g if i < j]
    coherence_pairs = agreeing_pairs or pairs
    coherence = (
        min(1.0, sum(sims[i][j] for i, j in coherence_pairs) / len(coherence_pairs) / sat) if coherence_pairs else 1.0
    )
    relevance = min(
        1.0, sum(relevance_of(prompt, p.body) for p in parsed) / len(parsed) / settings.relevance_saturation
    )

    given = [VERDICT_SCORES[v] for v in verdicts if v is not None and v in VERDICT_SCORES]
    verdict_score = sum(given) / len(given) if given else None

    signals = [(settings.weight_agreement, agreement), (settings.weight_similarity, similarity)]
    if verdict_score is not None:
        signals.append((settings.weight_verdict, verdict_score))
    denom = sum(w for w, _ in signals) or 1.0
    confidence = sum(w * s for w, s in signals) / denom
    if len(votes) < 2:
        confidence = min(confidence, 0.5)
        agreement = min(agreement, 0.5)

    def centrality(i: int) -> float:
        others = [sims[i][j] for j in best if j != i]
        return sum(others) / len(others) if others else 0.0

    chosen = max(best, key=lambda i: (centrality(i), weights[i], -i))
    agreement_scores = []
    for i in range(len(votes)):
        mine = next(g for g in groups if i in g)
        agreement_scores.append(
            round(sum(weights[j] for j in mine if j != i) / (total_weight - weights[i]), 4)
            if len(votes) > 1 and total_weight > weights[i]
            else 0.0
        )

    names = [v.provider for v in votes]
    parts = [
        f"{len(votes)} provider(s) answered ({', '.join(names)}).",
        f"Their one-line final answers fell into {len(groups)} group(s); the largest holds "
        f"{', '.join(names[i] for i in best)} ({agreement:.0%} of the provider weight), final answer: "
        f'"{parsed[best[0]].final[:160]}".',
        f"Mean similarity of the full answers: {similarity:.2f} (normalised).",
    ]
    if verdict_score is not None:
        parts.append(f"Reviewers' verdicts on the previous answers score {verdict_score:.2f}.")
    parts.append(
        f"Returned {names[chosen]}'s answer, the most central of the largest group; confidence {confidence:.2f} "
        f"combines agreement, similarity{' and verdicts' if verdict_score is not None else ''}."
    )
    response = _VERDICT.sub("", votes[chosen].text).strip()
    return Consensus(
        confidence=round(confidence, 4),
        agreement=round(agreement, 4),
        similarity=round(similarity, 4),
        verdict_score=None if verdict_score is None else round(verdict_score, 4),
        coherence=round(coherence, 4),
        relevance=round(relevance, 4),
        clusters=groups,
        chosen=chosen,
        response=response,
        agreement_scores=agreement_scores,
        reasoning=" ".join(parts),
    )
