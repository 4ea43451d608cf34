"""What each simulated vendor is told to do (``VendorScript``) and what it saw (``VendorStats``)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

Reviewer = Literal["honest", "blind", "capitulating"]
REVIEWERS: tuple[Reviewer, ...] = ("honest", "blind", "capitulating")


@dataclass
class VendorScript:
    latency_s: float = 0.0
    error_status: int | None = None
    error_rate: float = 0.0
    fail_first: int = 0  # when set, error_status applies to the first N requests only
    retry_after_s: float | None = None
    rate_limit_per_s: int | None = None
    answer: str | None = None  # the answer text (a last line ``FINAL: ...`` gives the final answer)
    final: str = "Yes, this is the recommended approach."
    verdict: str | None = None  # a fixed verdict on every answer reviewed (None: judge as ``reviewer`` says)
    reviewer: Reviewer = "honest"  # how it reviews: honest, blind (agrees with everything), capitulating
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    empty: bool = False
    ignore_format: bool = False  # answer plain text even when structured (JSON) output is requested
    seed: int | None = None


@dataclass
class VendorStats:
    requests: int = 0
    errors: int = 0
    aborted: int = 0
    answered: int = 0
    structured: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    auth_headers: deque[str] = field(default_factory=lambda: deque(maxlen=100))
    paths: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    prompts: deque[str] = field(default_factory=lambda: deque(maxlen=100))
    models: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    rounds: deque[str] = field(default_factory=lambda: deque(maxlen=100))  # answer | cross-examination | review
