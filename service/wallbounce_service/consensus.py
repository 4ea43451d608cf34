"""The consensus engine: pure functions from structured answers and reviews to one evidence-based confidence.

The formula (README, "Consensus"): for answers i with provider weights W_i (e_i = W_i, or 0 for an answer that
merely copies one it reviewed), every pair gets an agreement s_ij in [0, 1] from the first source that decides it:

1. **typed comparison** of the canonical finals (``finals.compare``: booleans, numbers within tolerance with their
   units, options, identical claim keys) — 1 or 0; a free-text final that its own provider restated in a type
   (the restatement round) is compared as restated;
2. the **trusted reviewers' direct verdicts** on each other (agree 1, partial ``partial_score``, disagree 0; the
   lowest counts: a sycophant's agree never outvotes a dissent);
3. a **trusted third reviewer** that judged both (agree+agree 1, agree+disagree 0, a partial 0.5);
4. otherwise the pair is undecided and counts ``unjudged_pair_prior``.

``support_i = Σ_{j≠i} e_j·s_ij / Σ_{j≠i} W_j`` (0 for two contradicting answers, 1/2 for two against one, 1 for
agreement); ``topic = min_i factor(topicality_i)`` (lexical coverage of the question: the only use of lexical
similarity); ``raw = max_i support_i × topic``; ``confidence = calibration.map(raw)``.

A reviewer is **not trusted** (its verdicts weigh nothing) when it left the probe or its own answer unjudged, agreed
with an answer and with that answer's negation (the probe), disagreed with its own answer (shown unmarked among the
others), agreed with two answers whose typed finals contradict each other (its own included), gave a
``revised_final`` copied from another answer instead of its own (capitulation), or copied the answer it reviewed.
``coherence`` is the share of pairs decided by evidence (types or trusted reviewers), ``relevance`` the topic
factor, ``agreement`` the provider-weight share backing the chosen answer (itself included).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .calibration import Calibration
from .calibration import load as load_calibration
from .consensus_config import ConsensusSettings
from .finals import Final, compare, normalise_label
from .lexical import containment, cosine, relevance_of, trigram_set
from .protocol import Item, ReviewOutput, StructuredAnswer

__all__ = ["Consensus", "ReviewRecord", "Vote", "build", "is_copy", "topicality"]

VERDICT_SCORE = {"agree": 1.0, "partial": 0.5, "disagree": 0.0}


@dataclass(frozen=True)
class Vote:
    """One provider's (latest) answer; ``restated``: its free-text final restated by itself in a type (the
    restatement round), which the typed comparison uses instead."""

    provider: str
    answer: StructuredAnswer
    weight: float = 1.0
    independent: bool = True  # False: a copy of an answer it reviewed
    restated: Final | None = None

    @property
    def final(self) -> Final:
        """The final the typed comparison reads."""
        return self.restated if self.restated is not None else self.answer.final


@dataclass(frozen=True)
class ReviewRecord:
    """A reviewer's output and the items it was shown (``Item.target``: the vote index shown, -1 when stale)."""

    reviewer: int
    items: tuple[Item, ...]
    output: ReviewOutput
    own_listed: bool  # cross-examination: the reviewer's own final was among the items


@dataclass(frozen=True)
class PairEvidence:
    i: int
    j: int
    score: float
    source: str  # typed | verdicts | third-party | prior


@dataclass(frozen=True)
class ReviewerTrust:
    reviewer: int
    trusted: bool
    reason: str


@dataclass(frozen=True)
class Consensus:
    confidence: float
    raw: float
    support: float
    agreement: float
    coherence: float
    relevance: float
    clusters: list[list[int]]
    chosen: int
    response: str
    final: str
    agreement_scores: list[float]
    reasoning: str
    pairs: list[PairEvidence] = field(default_factory=list)
    reviewers: list[ReviewerTrust] = field(default_factory=list)
    topicality: list[float] = field(default_factory=list)


def topicality(
    prompt: str, answer: StructuredAnswer, enough: float = 2.0, prompt_grams: set[str] | None = None
) -> float:
    """How much an answer is about the question: the larger of the share of its restated question found in the
    prompt (a model that answers another question restates that other question) and the share of the question's
    wording its text covers (answer, final and key claims together). Stops at the first that reaches ``enough``.
    A long prompt is read at its two ends only (``lexical.window``)."""
    grams = trigram_set(prompt) if prompt_grams is None else prompt_grams
    restated = containment(answer.restated, grams) if answer.restated else 0.0
    if restated >= enough:
        return restated
    covered = relevance_of(grams, " ".join([answer.final.text, *answer.key_claims, answer.answer]))
    return max(covered, restated)


def is_copy(candidate: StructuredAnswer, reviewed: StructuredAnswer, settings: ConsensusSettings) -> bool:
    """A reviewer's answer that reproduces the reviewed one, conclusion included (a dissent in copied words is not
    a copy: it says something of its own)."""
    same_final = compare(
        candidate.final, reviewed.final, settings.number_rel_tolerance, settings.number_abs_tolerance
    ) == 1.0 or normalise_label(candidate.final.text) == normalise_label(reviewed.final.text)
    return same_final and cosine(candidate.answer, reviewed.answer) >= settings.copy_threshold


def _typed_matrix(votes: Sequence[Vote], settings: ConsensusSettings) -> list[list[float | None]]:
    n = len(votes)
    rel, abs_tol = settings.number_rel_tolerance, settings.number_abs_tolerance
    m: list[list[float | None]] = [[1.0 if i == j else None for j in range(n)] for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            m[i][j] = m[j][i] = compare(votes[i].final, votes[j].final, rel, abs_tol)
    return m


def _verdicts_by_target(record: ReviewRecord) -> tuple[dict[int, str], dict[int, str]]:
    """(verdict on each shown answer, verdict on the probe negating each answer) of one review."""
    by_id = {item.id: item for item in record.items}
    answers: dict[int, str] = {}
    probes: dict[int, str] = {}
    for review in record.output.reviews:
        item = by_id.get(review.id)
        if item is None or item.target < 0:
            continue
        (probes if item.probe else answers)[item.target] = review.verdict
    return answers, probes


def _trust(
    record: ReviewRecord, votes: Sequence[Vote], typed: list[list[float | None]], settings: ConsensusSettings
) -> ReviewerTrust:
    k = record.reviewer
    answers, probes = _verdicts_by_target(record)
    if not votes[k].independent:
        return ReviewerTrust(k, False, "its answer copies the one it reviewed")
    if not answers:
        return ReviewerTrust(k, False, "no usable verdicts")
    shown_probes = {item.target for item in record.items if item.probe and item.target >= 0}
    if shown_probes - set(probes) or (record.own_listed and k not in answers):
        return ReviewerTrust(k, False, "left an answer it was shown unjudged")
    for target, verdict in probes.items():
        if verdict == "agree" and answers.get(target, "agree" if target == k else None) == "agree":
            return ReviewerTrust(k, False, "agreed with an answer and with its negation")
    if record.own_listed and answers.get(k) == "disagree":
        return ReviewerTrust(k, False, "disagreed with its own answer")
    agreed = [t for t, v in answers.items() if v == "agree"] + ([] if record.own_listed else [k])
    for a in agreed:
        for b in agreed:
            if a < b and typed[a][b] == 0.0:
                return ReviewerTrust(k, False, "agreed with answers whose typed finals contradict each other")
    revised = record.output.revised_final
    if revised and record.own_listed:
        own = votes[k].answer.final.text
        others = [votes[t].answer.final.text for t in answers if t != k and 0 <= t < len(votes)]
        copied = any(_same_text(revised, o) and not _same_text(o, own) for o in others)
        if copied and not _same_text(revised, own):
            return ReviewerTrust(k, False, "capitulated: its revised final copies another answer's")
    return ReviewerTrust(k, True, "consistent")


def _same_text(a: str, b: str) -> bool:
    return normalise_label(a) == normalise_label(b) or cosine(a, b) >= 0.9


def _pair_evidence(
    n: int,
    typed: list[list[float | None]],
    verdicts: dict[int, dict[int, str]],
    settings: ConsensusSettings,
) -> list[list[PairEvidence]]:
    score = {**VERDICT_SCORE, "partial": settings.partial_score}
    grid: list[list[PairEvidence]] = [[PairEvidence(i, j, 1.0, "self") for j in range(n)] for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            t = typed[i][j]
            if t is not None:
                ev = PairEvidence(i, j, t, "typed")
            else:
                direct = [score[v[x]] for r, x in ((i, j), (j, i)) if (v := verdicts.get(r)) and x in v]
                third = []
                for k, v in verdicts.items():
                    if k in (i, j) or i not in v or j not in v:
                        continue
                    a, b = v[i], v[j]
                    if a == "disagree" and b == "disagree":
                        continue  # both wrong says nothing about each other
                    third.append(1.0 if a == b == "agree" else 0.0 if "disagree" in (a, b) else score["partial"])
                if direct:
                    ev = PairEvidence(i, j, min(direct), "verdicts")
                elif third:
                    ev = PairEvidence(i, j, min(third), "third-party")
                else:
                    ev = PairEvidence(i, j, settings.unjudged_pair_prior, "prior")
            grid[i][j] = ev
            grid[j][i] = PairEvidence(j, i, ev.score, ev.source)
    return grid


def _trusted_verdicts(
    reviews: Sequence[ReviewRecord], votes: Sequence[Vote], typed: list[list[float | None]], settings: ConsensusSettings
) -> tuple[dict[int, ReviewerTrust], dict[int, dict[int, str]]]:
    """Each reviewer's trust, and the verdicts of the trusted ones on the other answers (reviewer → answer →
    verdict); a later record of the same reviewer replaces an earlier one."""
    trust: dict[int, ReviewerTrust] = {}
    verdicts: dict[int, dict[int, str]] = {}
    for record in reviews:
        verdict = _trust(record, votes, typed, settings)
        trust[record.reviewer] = verdict
        answers, _ = _verdicts_by_target(record)
        if verdict.trusted:
            verdicts[record.reviewer] = {t: v for t, v in answers.items() if t != record.reviewer}
        else:
            verdicts.pop(record.reviewer, None)
    return trust, verdicts


def _clusters(n: int, grid: list[list[PairEvidence]]) -> list[list[int]]:
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i in range(n):
        for j in range(i + 1, n):
            if grid[i][j].source != "prior" and grid[i][j].score >= 0.75:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


@dataclass(frozen=True)
class _Weights:
    """The provider weights W_i (``nominal``) and e_i (``effective``: 0 for a copy) of the votes."""

    nominal: list[float]
    effective: list[float]

    @staticmethod
    def of(votes: Sequence[Vote]) -> _Weights:
        nominal = [max(v.weight, 0.0) for v in votes]
        return _Weights(nominal, [w if v.independent else 0.0 for w, v in zip(nominal, votes, strict=True)])

    def backing(self, i: int, grid: list[list[PairEvidence]]) -> float:
        """Σ_{j≠i} e_j·s_ij: the effective weight of the others, each as far as it agrees with answer i."""
        return sum(self.effective[j] * grid[i][j].score for j in range(len(self.nominal)) if j != i)

    def support(self, i: int, grid: list[list[PairEvidence]]) -> float:
        """support_i = Σ_{j≠i} e_j·s_ij / Σ_{j≠i} W_j."""
        others = sum(self.nominal) - self.nominal[i]
        return self.backing(i, grid) / others if others else 0.0

    def agreement(self, i: int, grid: list[list[PairEvidence]]) -> float:
        """The share of all provider weight backing answer i, its own included."""
        return min(1.0, (self.effective[i] + self.backing(i, grid)) / (sum(self.nominal) or 1.0))


def build(
    prompt: str,
    votes: Sequence[Vote],
    settings: ConsensusSettings,
    reviews: Sequence[ReviewRecord] = (),
    calibration: Calibration | None = None,
) -> Consensus:
    """The consensus of ``votes`` (at least one) given the reviews; see the module docstring for the formula."""
    if not votes:
        raise ValueError("no answers to build a consensus from")
    cal = calibration or load_calibration()
    n = len(votes)
    typed = _typed_matrix(votes, settings)
    trust, verdicts = _trusted_verdicts(reviews, votes, typed, settings)
    grid = _pair_evidence(n, typed, verdicts, settings)
    weights = _Weights.of(votes)
    candidates = [i for i in range(n) if votes[i].independent] or list(range(n))
    chosen = max(candidates, key=lambda i: (weights.support(i, grid), weights.nominal[i], -i))
    prompt_grams = trigram_set(prompt)
    topics = [topicality(prompt, v.answer, cal.drift_high, prompt_grams) for v in votes]
    topic = min(cal.topic_factor(t) for t in topics)
    best = weights.support(chosen, grid) if n > 1 else 0.0
    raw = best * topic
    confidence = cal.map(raw)
    agreement = weights.agreement(chosen, grid)
    pairs = [grid[i][j] for i in range(n) for j in range(i + 1, n)]
    clusters = _clusters(n, grid)
    reasoning = _reasoning(votes, chosen, clusters, pairs, list(trust.values()), topics, topic, best, raw, confidence,
                           agreement)
    answer = votes[chosen].answer
    return Consensus(
        confidence=round(confidence, 4),
        raw=round(raw, 4),
        support=round(best, 4),
        agreement=round(agreement, 4),
        coherence=round(sum(p.source != "prior" for p in pairs) / len(pairs), 4) if pairs else 0.0,
        relevance=round(topic, 4),
        clusters=clusters,
        chosen=chosen,
        response=f"{answer.answer}\n\nFINAL: {answer.final.text}" if answer.final.text else answer.answer,
        final=answer.final.text,
        agreement_scores=[round(weights.support(i, grid), 4) if n > 1 else 0.0 for i in range(n)],
        reasoning=reasoning,
        pairs=pairs,
        reviewers=sorted(trust.values(), key=lambda t: t.reviewer),
        topicality=[round(t, 4) for t in topics],
    )


def _reasoning(
    votes: Sequence[Vote],
    chosen: int,
    clusters: list[list[int]],
    pairs: list[PairEvidence],
    trust: list[ReviewerTrust],
    topics: list[float],
    topic: float,
    support: float,
    raw: float,
    confidence: float,
    agreement: float,
) -> str:
    names = [v.provider for v in votes]
    counts = {s: sum(1 for p in pairs if p.source == s) for s in ("typed", "verdicts", "third-party", "prior")}
    backing = [names[j] for j in range(len(votes)) if j != chosen and any(
        p.score >= 0.75 and p.source != "prior" and chosen in (p.i, p.j) and j in (p.i, p.j) for p in pairs)]
    parts = [
        f"{len(votes)} provider(s) answered ({', '.join(names)}).",
        f"Their canonical final answers fell into {len(clusters)} group(s); returned {names[chosen]}'s "
        f'"{votes[chosen].answer.final.text[:160]}", backed by {", ".join(backing) or "no other provider"} '
        f"({agreement:.0%} of the provider weight).",
        f"Evidence per pair: {counts['typed']} compared by type, {counts['verdicts']} by the reviewers' verdicts, "
        f"{counts['third-party']} by a third reviewer's verdicts, {counts['prior']} undecided.",
    ]
    copies = [names[i] for i, v in enumerate(votes) if not v.independent]
    if copies:
        parts.append(f"Not independent (copied the answer reviewed): {', '.join(copies)}.")
    if trust:
        parts.append("Reviewers: " + "; ".join(
            f"{names[t.reviewer]} {'trusted' if t.trusted else 'not trusted (' + t.reason + ')'}" for t in trust
        ) + ".")
    off = [names[i] for i, t in enumerate(topics) if t < 1 and topic < 1]
    parts.append(
        "Every answer is on topic." if topic >= 1 else f"Topic drift: {', '.join(off)} cover little of the question "
        f"(topic factor {topic:.2f})."
    )
    parts.append(f"Confidence {confidence:.2f} = calibrated(support {support:.2f} × topic {topic:.2f} = {raw:.2f}).")
    return " ".join(parts)
