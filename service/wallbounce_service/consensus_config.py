"""Settings of the consensus engine and the cross-examination round (the ``consensus`` key of the configuration).

Kept apart from ``config.py`` so the consensus engine owns its knobs; ``config.Settings.consensus`` is this class.
Every number here is documented in the README's consensus section; the calibration (raw evidence → confidence) is
not a setting but data shipped with the code (``data/calibration.json``), refitted by ``bench/consensus_eval.py``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

CrossExamination = Literal["off", "auto", "always"]


def _default_cross_examination() -> dict[str, CrossExamination]:
    # auto: a second round only when the canonical finals cannot be compared by type (free text, mixed kinds)
    return {"basic": "auto", "premium": "auto", "critical": "auto"}


class ConsensusSettings(BaseModel):
    """How answers are compared, when providers cross-examine each other, and how reviewers are trusted."""

    cross_examination: dict[str, CrossExamination] = Field(
        default_factory=_default_cross_examination,
        description="per task type: off (never), auto (when typed finals cannot decide), always",
    )
    number_rel_tolerance: float = Field(default=0.02, ge=0, le=1, description="numbers equal within this share")
    number_abs_tolerance: float = Field(default=1e-9, ge=0, description="numbers equal within this absolute gap")
    unjudged_pair_prior: float = Field(
        default=0.3, ge=0, le=1, description="agreement assumed for a pair no type and no trusted reviewer decides"
    )
    partial_score: float = Field(
        default=0.3, ge=0, le=1, description="what a 'partial' verdict counts (compatible, differing in substance)"
    )
    copy_threshold: float = Field(
        default=0.9, gt=0, le=1, description="char n-gram cosine above which a reviewer's answer is a copy"
    )
    review_answer_chars: int = Field(
        default=1500, ge=100, description="characters of each previous answer shown to a reviewer (sequential)"
    )
    max_key_claims: int = Field(default=5, ge=1, le=20)
