"""When two prompts may share one cached answer: the same question spelled differently, never a different question.

A cosine of character n-grams cannot tell "recursively delete the cache folder" from "recursively delete the root
of the filesystem", nor "enable it" from "do not enable it" (both pairs scored above 0.92 with the old cache). So a
prompt is reduced to its *words* (Unicode NFKC, case-folded; punctuation, spacing and a few filler words such as
"the" and "please" dropped) and two prompts match only when their word sequences line up one to one, where each pair
of words is equal, or both are ASCII words of five or more letters with the same first two letters and one typo
between them (an edit or a swap of neighbours). Numbers, paths and URLs, quoted text, negations (English ``not``,
``never``, ``n't``…, Japanese ``ない``, ``ません``, ``無``, ``不``…) and every non-ASCII word must be identical.
What this proves: the two prompts differ only in spelling, case, punctuation and filler words. What it cannot
prove: that two different wordings mean the same — those are misses. The cache stays off unless configured.

``SimilarIndex`` keeps, per tenant, user and scope, recent prompts' word sequences in buckets keyed by what must be
equal, bounded in bytes; prompts longer than ``MAX_CHARS`` are not indexed (a similar-query cache serves short
questions).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import OrderedDict

MAX_CHARS = 4000
BUCKET_ENTRIES = 8
ENTRY_OVERHEAD = 300

_FILLER = frozenset(
    {"an", "the", "please", "pls", "plz", "kindly", "hi", "hello", "hey", "thanks", "thank", "um", "uh"}
)
_NEGATIONS = frozenset(
    {
        "not", "no", "never", "none", "nothing", "nobody", "nowhere", "neither", "nor", "without", "except",
        "cannot", "cant", "dont", "doesnt", "didnt", "wont", "wouldnt", "shouldnt", "couldnt", "isnt", "arent",
        "wasnt", "werent", "havent", "hasnt", "hadnt", "mustnt", "neednt", "avoid", "stop", "disable", "disallow",
        "deny", "forbid", "prevent", "un", "non", "anti",
    }
)  # fmt: skip
_JA_NEGATION = re.compile(r"ない|ません|ぬ|ず|無|不|非|未|禁止|否")
# inside a whitespace-separated chunk without a slash: numbers (with their separators) and words
_TOKEN = re.compile(r"\d+(?:[.,:]\d+)*|[^\W_]+")


def words(prompt: str) -> list[str]:
    """The prompt as the word sequence that the match compares (see the module's docstring)."""
    text = unicodedata.normalize("NFKC", prompt).casefold()
    out: list[str] = []
    for chunk in text.split():
        if "/" in chunk or "\\" in chunk:
            out.append(chunk.strip(".,;:!?()[]{}\"'`"))  # a path or URL: compared whole
            continue
        for token in _TOKEN.findall(chunk.replace("'", "").replace("\u2019", "")):
            if token not in _FILLER:
                out.append(token)
    return out


def _fuzzy(word: str) -> bool:
    """May this word match another with one typo? ASCII letters only, five or more, not a negation."""
    return len(word) >= 5 and word.isascii() and word.isalpha() and word not in _NEGATIONS


def _bucket_part(word: str) -> str:
    if _fuzzy(word):
        return word[:2] + "~"
    if _JA_NEGATION.search(word) and not word.isascii():
        return word  # identical anyway; kept whole so negated and plain Japanese never share a bucket
    return word


def bucket_key(tokens: list[str]) -> str:
    """What two matching prompts must share: the exact words, and the first two letters of the fuzzy ones."""
    return hashlib.sha256("\x1f".join(_bucket_part(t) for t in tokens).encode()).hexdigest()


def one_typo(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ by at most one insertion, deletion, substitution or neighbour swap."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    if len(a) == len(b):
        if a[i + 1 :] == b[i + 1 :]:
            return True
        return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[i + 1 :] == shorter[i:]


def same_question(a: list[str], b: list[str]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        if not (_fuzzy(x) and _fuzzy(y) and x[:2] == y[:2] and one_typo(x, y)):
            return False
    return True


class SimilarIndex:
    """Recent prompts per (tenant, user, scope) bucket, each pointing at its exact-cache key; bounded in bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._buckets: OrderedDict[str, OrderedDict[str, tuple[str, ...]]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def add(self, space: str, prompt: str, exact_key: str) -> None:
        if len(prompt) > MAX_CHARS:
            return
        tokens = tuple(words(prompt))
        if not tokens:
            return
        key = space + ":" + bucket_key(list(tokens))
        bucket = self._buckets.setdefault(key, OrderedDict())
        self._buckets.move_to_end(key)
        if exact_key in bucket:
            self.bytes -= _size(exact_key, bucket.pop(exact_key))
        bucket[exact_key] = tokens
        self.bytes += _size(exact_key, tokens)
        while len(bucket) > BUCKET_ENTRIES:
            old_key, old_tokens = bucket.popitem(last=False)
            self.bytes -= _size(old_key, old_tokens)
        while self.bytes > self.max_bytes and self._buckets:
            _, evicted = self._buckets.popitem(last=False)
            self.bytes -= sum(_size(k, t) for k, t in evicted.items())

    def find(self, space: str, prompt: str) -> str | None:
        """The exact-cache key of an indexed prompt that is the same question as ``prompt``, if any."""
        if len(prompt) > MAX_CHARS:
            return None
        tokens = words(prompt)
        bucket = self._buckets.get(space + ":" + bucket_key(tokens))
        if not bucket:
            return None
        for exact_key, other in reversed(bucket.items()):
            if same_question(tokens, list(other)):
                return exact_key
        return None


def _size(key: str, tokens: tuple[str, ...]) -> int:
    return len(key) + sum(len(t) + 8 for t in tokens) + ENTRY_OVERHEAD
