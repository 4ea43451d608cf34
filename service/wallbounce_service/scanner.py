"""The sensitive-data detector: finds secrets and personal data in text, in time linear in its length.

Every pattern runs on RE2 (``google-re2``, Google's automaton engine: no backtracking, so no input can make a match
quadratic — the old e-mail regex took 2.3 s on a 32k-character prompt). RE2 has no look-around, so the few context
rules (a phone number not glued to a word or a version number, a card number that passes the Luhn check, a 40-character
AWS secret that is not part of a longer run) are checked in Python on each candidate. One RE2 set of every pattern
first tells which of them occur at all, so a text with nothing sensitive costs one pass. A text with more than
``max_findings`` candidates is refused (``TooManyFindings``), which bounds the per-match work too.

What is found (``Finding.kind``):

- secrets: ``private_key`` (PEM blocks), ``jwt``, ``wallbounce_key`` (this service's own), ``openai_key``,
  ``anthropic_key``, ``google_api_key``,
  ``google_oauth_token``, ``aws_access_key``, ``aws_secret_key``, ``github_token``, ``gitlab_token``,
  ``slack_token``, ``slack_webhook``, ``stripe_key``, ``huggingface_token``, ``npm_token``, ``pypi_token``,
  ``sendgrid_key``, ``azure_storage_key``, ``bearer_token``, ``url_password`` (``scheme://user:password@``),
  ``password`` (``password=…``, ``api_key: …``, ``token=…``, "password is …" pairs: the value only),
  ``card_number`` (13–19 digits passing the Luhn check);
- personal data (``pii``): ``email``, ``phone``.

The vendor formats follow the vendors' published key prefixes (as secret scanners such as gitleaks and detect-secrets
list them); detect-secrets itself was not used: it scans source files line by line with backtracking regexes and
entropy heuristics that flag ordinary hashes, and its last release is from 2024.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import re2

Check = Callable[[str, int, int], bool]


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int
    pii: bool = False


class TooManyFindings(Exception):
    """More sensitive values than the scanner is willing to handle in one text."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} sensitive values")
        self.limit = limit


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(text: str, start: int, end: int) -> bool:
    digits = "".join(ch for ch in text[start:end] if ch.isdigit())
    return 13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_ok(digits)


def _standalone(text: str, start: int, end: int) -> bool:
    """Not glued to a word, a dot (versions, addresses) or more digits on either side."""
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    decimal_after = after == "." and end + 1 < len(text) and text[end + 1].isdigit()
    return not (before.isalnum() or before in "._") and not (after.isalnum() or after == "_" or decimal_after)


def _base64_run(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    return not (before.isalnum() or before in "/+") and not (after.isalnum() or after in "/+=")


_KEYWORDS = (
    r"password|passwd|pwd|passphrase|secret|client[_-]?secret|secret[_-]?key|api[_-]?key|apikey|x-api-key|"
    r"access[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token|token|private[_-]?key|authorization|"
    r"credentials?"
)

#: (kind, pattern, context check, pii). A pattern with a capture group redacts only that group.
_PATTERNS: tuple[tuple[str, str, Check | None, bool], ...] = (
    (
        "private_key",
        r"(?s)-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----.*?"
        r"(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\z)",
        None,
        False,
    ),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", None, False),
    ("wallbounce_key", r"\bwbk_[A-Za-z0-9_-]{16,}", None, False),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_-]{12,}", None, False),
    ("openai_key", r"\bsk-[A-Za-z0-9_-]{12,}", None, False),
    ("google_api_key", r"\bAIza[0-9A-Za-z_-]{20,}", None, False),
    ("google_oauth_token", r"\bya29\.[0-9A-Za-z_-]{20,}", None, False),
    ("aws_access_key", r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA|AGPA|AIPA|ANPA|ANVA|APKA)[A-Z0-9]{16}\b", None, False),
    ("aws_secret_key", r"(?i)(?:aws|secret)[^\n]{0,40}?([A-Za-z0-9/+]{40})", _base64_run, False),
    ("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,})", None, False),
    ("gitlab_token", r"\bglpat-[A-Za-z0-9_-]{20,}", None, False),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", None, False),
    ("slack_webhook", r"https://hooks\.slack\.com/services/[A-Za-z0-9/_-]{20,}", None, False),
    ("stripe_key", r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}", None, False),
    ("huggingface_token", r"\bhf_[A-Za-z0-9]{30,}", None, False),
    ("npm_token", r"\bnpm_[A-Za-z0-9]{36}\b", None, False),
    ("pypi_token", r"\bpypi-AgE[A-Za-z0-9_-]{50,}", None, False),
    ("sendgrid_key", r"\bSG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}", None, False),
    ("azure_storage_key", r"(?i)AccountKey=([A-Za-z0-9+/=]{40,})", None, False),
    ("bearer_token", r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{12,})", None, False),
    ("url_password", r"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@]{1,128}:([^\s@/]{1,256})@", None, False),
    ("password", r"(?i)(?:\b|_)(?:" + _KEYWORDS + r")\b[\"']?\s*[:=]\s*[\"']?([^\s\"',;{}]{4,})", None, False),
    ("password", r"(?i)\b(?:password|passphrase|passcode|pin)\s+(?:is|was)\s+[\"']?([^\s\"',;]{4,})", None, False),
    ("password", r"(?:パスワード|暗証番号)\s*(?:は|:|：|=)\s*[\"'「]?([^\s\"'」、。]{4,})", None, False),
    ("email", r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}", None, True),
    ("card_number", r"\b\d(?:[ -]?\d){12,18}\b", _card, False),
    ("phone", r"(?:\+\d{1,3}[ -]?)?(?:\(?\d{2,4}\)?[ -]?)\d{2,4}[ -]\d{3,4}", _standalone, True),
)

_COMPILED: tuple[tuple[str, Any, Check | None, bool, int], ...] = tuple(
    (kind, re2.compile(pattern), check, pii, priority) for priority, (kind, pattern, check, pii) in enumerate(_PATTERNS)
)


def _prefilter() -> Any:
    """One automaton for every pattern: which of them occur at all (one pass; most texts hold none)."""
    found = re2.Set.SearchSet(re2.Options())
    for _, pattern, _, _ in _PATTERNS:
        found.Add(pattern)
    found.Compile()
    return found


_ANY = _prefilter()

SECRET_KINDS = tuple(dict.fromkeys(kind for kind, _, _, pii in _PATTERNS if not pii))
PII_KINDS = tuple(dict.fromkeys(kind for kind, _, _, pii in _PATTERNS if pii))


def scan(text: str, max_findings: int = 500) -> list[Finding]:
    """Every sensitive value in ``text``, in order, without overlaps (the earlier, longer, more specific one wins).

    Raises ``TooManyFindings`` past ``max_findings`` candidates of any kind.
    """
    if not text:
        return []
    present = _ANY.Match(text)
    if not present:
        return []
    candidates: list[tuple[int, int, int, str, bool]] = []
    budget = max_findings
    for index in sorted(present):
        kind, regex, check, pii, priority = _COMPILED[index]
        for match in regex.finditer(text):
            budget -= 1
            if budget < 0:
                raise TooManyFindings(max_findings)
            group = 1 if match.re.groups else 0
            start, end = match.start(group), match.end(group)
            if start < 0 or end <= start:
                continue
            if check is not None and not check(text, start, end):
                continue
            candidates.append((start, -(end - start), priority, kind, pii))
    return _without_overlaps(candidates)


def _without_overlaps(candidates: list[tuple[int, int, int, str, bool]]) -> list[Finding]:
    """Secrets first (the earlier, then longer, then more specific one wins), then personal data where no secret is:
    ``user:password@host`` is a password, not an e-mail address."""
    candidates.sort()
    chosen: list[Finding] = []
    covered = 0
    for start, neg_len, _, kind, pii in candidates:
        if not pii and start >= covered:
            chosen.append(Finding(kind, start, start - neg_len, pii))
            covered = start - neg_len
    starts = [f.start for f in chosen]
    for start, neg_len, _, kind, pii in candidates:
        end = start - neg_len
        if not pii:
            continue
        i = bisect.bisect_right(starts, start)
        clash = (i > 0 and chosen[i - 1].end > start) or (i < len(chosen) and chosen[i].start < end)
        if not clash:
            chosen.insert(i, Finding(kind, start, end, pii))
            starts.insert(i, start)
    return chosen
