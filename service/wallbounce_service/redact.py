"""Masking of secrets and personal data: ``[REDACTED]`` in logs, reversible placeholders in prompts, JSON log lines.

- ``redact(text)`` replaces API keys, bearer tokens, e-mail addresses, phone numbers and card-like numbers.
- ``Anonymiser`` swaps personal data in a prompt for placeholders (``<EMAIL_1>``) before it leaves for a provider and
  puts the originals back into the answer.
- ``JsonFormatter`` writes one JSON object per log line and passes every string through ``redact``;
  ``configure_logging`` installs it on the root logger.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any

REDACTED = "[REDACTED]"

_SECRET_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE),
    re.compile(r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bAIza[0-9A-Za-z_-]{20,}"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    re.compile(
        r"(?i)\b(api[_-]?key|x-api-key|x-goog-api-key|token|secret|password|passwd|authorization)"
        r"(\"?\s*[:=]\s*\"?)([^\s\"',;}]{6,})"
    ),
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<![\w.])(?:\+\d{1,3}[\s-]?)?(?:\(?\d{2,4}\)?[\s-]?)\d{2,4}[\s-]\d{3,4}(?![\w.])")
CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")


def redact(text: str) -> str:
    """``text`` with every secret and piece of personal data replaced by ``[REDACTED]``."""
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 3:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        else:
            text = pattern.sub(REDACTED, text)
    text = EMAIL.sub(REDACTED, text)
    text = CARD.sub(REDACTED, text)
    return PHONE.sub(REDACTED, text)


def redact_value(value: Any) -> Any:
    """Recursively redacts the strings of a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


@dataclass
class Anonymiser:
    """Reversible replacement of e-mail addresses and phone numbers by placeholders, for one request."""

    mapping: dict[str, str] = field(default_factory=dict)

    def anonymise(self, text: str) -> str:
        def swap(kind: str) -> Any:
            def inner(match: re.Match[str]) -> str:
                original = match.group(0)
                for placeholder, value in self.mapping.items():
                    if value == original:
                        return placeholder
                placeholder = f"<{kind}_{sum(1 for k in self.mapping if k.startswith('<' + kind)) + 1}>"
                self.mapping[placeholder] = original
                return placeholder

            return inner

        text = EMAIL.sub(swap("EMAIL"), text)
        return PHONE.sub(swap("PHONE"), text)

    def restore(self, text: str) -> str:
        for placeholder, original in self.mapping.items():
            text = text.replace(placeholder, original)
        return text


_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields, all redacted."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(redact_value(payload), ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Readable terminal lines, redacted too."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def configure_logging(fmt: str = "json", level: str = "INFO", stream: Any = None) -> logging.Handler:
    """Installs one redacting handler on the root logger (replacing earlier ones of ours) and returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(message)s"))
    handler.set_name("wallbounce")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "wallbounce":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
