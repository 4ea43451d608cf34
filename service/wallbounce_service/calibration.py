"""The shipped calibration: raw evidence → confidence, and the topic-drift band; fitted on the evaluation set.

``data/calibration.json`` holds a monotone piecewise-linear map (knots ``raw`` → ``confidence``) fitted by
isotonic regression (pool-adjacent-violators) of the evaluation set's labels on the raw evidence score, each block's
rate shrunk towards 1/2 by a prior of ``prior_weight`` pseudo-cases, so that a confidence reads as the estimated
probability that the providers' answers really agree (agreement cases 1, contradictions and drift 0, two against
one 2/3). The operator averages it over requests: a canary's mean confidence estimates the share of its answers
that are backed by agreeing providers, which is what its gates (promote at 0.7, roll back under 0.6) assume.
It also holds ``drift_low``/``drift_high``: an answer whose topicality (share of the question's character trigrams
it covers) is at or below ``drift_low`` is off-topic (factor 0), at or above ``drift_high`` on topic (factor 1).

``fit`` is what ``bench/consensus_eval.py --fit`` runs; ``load`` reads the shipped file once.
"""

from __future__ import annotations

import bisect
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
CALIBRATION_FILE = DATA_DIR / "calibration.json"


@dataclass(frozen=True)
class Calibration:
    raw: tuple[float, ...]
    confidence: tuple[float, ...]
    drift_low: float
    drift_high: float
    prior_weight: float = 2.0
    fitted_on: str = ""

    def map(self, raw: float) -> float:
        """The calibrated confidence of a raw evidence score (linear between knots, flat outside)."""
        xs, ys = self.raw, self.confidence
        if raw <= xs[0]:
            return ys[0]
        if raw >= xs[-1]:
            return ys[-1]
        k = bisect.bisect_right(xs, raw)
        x0, x1, y0, y1 = xs[k - 1], xs[k], ys[k - 1], ys[k]
        return y0 if x1 == x0 else y0 + (y1 - y0) * (raw - x0) / (x1 - x0)

    def topic_factor(self, topicality: float) -> float:
        """1 for an answer on topic, 0 for one off topic, linear in between."""
        if self.drift_high <= self.drift_low:
            return 1.0 if topicality > self.drift_low else 0.0
        return min(1.0, max(0.0, (topicality - self.drift_low) / (self.drift_high - self.drift_low)))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


@functools.cache
def load(path: Path = CALIBRATION_FILE) -> Calibration:
    data = json.loads(path.read_text(encoding="utf-8"))
    return Calibration(
        tuple(float(x) for x in data["raw"]),
        tuple(float(y) for y in data["confidence"]),
        float(data["drift_low"]),
        float(data["drift_high"]),
        float(data.get("prior_weight", 2.0)),
        str(data.get("fitted_on", "")),
    )


def _pav(blocks: list[list[float]]) -> list[list[float]]:
    """Pool adjacent violators over blocks [x·w, w, y·v, v] sorted by x: the y means (Σy·v / Σv) become
    non-decreasing; x means (Σx·w / Σw) are carried along."""
    out: list[list[float]] = []
    for block in blocks:
        out.append(list(block))
        while len(out) > 1 and out[-2][2] / out[-2][3] > out[-1][2] / out[-1][3]:
            last = out.pop()
            out[-1] = [a + b for a, b in zip(out[-1], last, strict=True)]
    return out


def fit_map(points: Iterable[tuple[float, float, float]], prior_weight: float = 2.0) -> tuple[list[float], list[float]]:
    """Knots of the isotonic fit of labels on raw scores: ``points`` are (raw, label in [0, 1], weight)."""
    grouped: dict[float, list[float]] = {}
    for raw, label, weight in points:
        g = grouped.setdefault(round(raw, 6), [0.0, 0.0, 0.0, 0.0])
        g[0] += raw * weight
        g[1] += weight
        g[2] += label * weight
        g[3] += weight
    if not grouped:
        raise ValueError("no points to fit")
    blocks = _pav([grouped[k] for k in sorted(grouped)])
    # each block's rate shrunk towards 1/2 by the prior; shrinking can reorder small blocks: pool again
    shrunk = _pav([[b[0], b[1], b[2] + prior_weight * 0.5, b[3] + prior_weight] for b in blocks])
    xs = [round(b[0] / b[1], 6) for b in shrunk]
    ys = [round(b[2] / b[3], 6) for b in shrunk]
    return xs, ys


def fit_drift(on_topic: Sequence[float], off_topic: Sequence[float], width: float = 0.2) -> tuple[float, float]:
    """The drift band: from the highest off-topic topicality up by ``width`` (at most to the lowest on-topic one),
    so that a real model's paraphrased restatement, which covers less of the question than the evaluation set's,
    still counts as on topic; when the two overlap, the single threshold that misclassifies the fewest answers."""
    if not off_topic or not on_topic:
        return 0.0, 0.0
    low, high = max(off_topic), min(on_topic)
    if low < high:
        return round(low, 6), round(min(high, low + width), 6)
    candidates = sorted(set(on_topic) | set(off_topic))
    best = min(candidates, key=lambda t: sum(x > t for x in off_topic) + sum(x <= t for x in on_topic))
    return round(best, 6), round(best, 6)
