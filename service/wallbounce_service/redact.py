"""Masking built on the scanner: ``[REDACTED]`` in logs, and the prompt that leaves for a provider.

- ``redact(text)`` replaces every secret and piece of personal data by ``[REDACTED]`` (log lines).
- ``Anonymiser`` prepares a prompt for the providers: secrets become ``[REDACTED_<KIND>]`` for good (or, with the
  ``refuse`` action, the prompt is refused naming the kinds found, never the values); e-mail addresses and phone
  numbers become placeholders (``<EMAIL_1>``) that ``restore`` puts back into the answer for the same request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .scanner import Finding, TooManyFindings, scan

REDACTED = "[REDACTED]"
TOO_MANY = "[REDACTED: too many sensitive values]"
#: a log string is scanned up to this length; the rest is cut (a log line is no place for a prompt)
LOG_SCAN_CHARS = 16_384


def redact(text: str) -> str:
    """``text`` with every secret and piece of personal data replaced by ``[REDACTED]``."""
    if len(text) > LOG_SCAN_CHARS:
        text = text[:LOG_SCAN_CHARS] + "…"
    try:
        findings = scan(text, max_findings=200)
    except TooManyFindings:
        return TOO_MANY
    return _replace(text, findings, lambda _f, _v: REDACTED)


def redact_value(value: Any) -> Any:
    """Recursively redacts the strings of a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


class SecretsFound(Exception):
    """The prompt holds secrets and the configured action is ``refuse``."""

    def __init__(self, kinds: list[str]) -> None:
        super().__init__(", ".join(kinds))
        self.kinds = kinds


@dataclass
class Anonymiser:
    """Prepares one request's prompt for the providers and restores its placeholders in the answer."""

    action: Literal["redact", "refuse"] = "redact"
    anonymise_pii: bool = True
    max_findings: int = 500
    mapping: dict[str, str] = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)

    def anonymise(self, text: str) -> str:
        """``text`` as it may leave; raises ``SecretsFound`` (refuse) or ``TooManyFindings``."""
        findings = scan(text, self.max_findings)
        secrets = sorted({f.kind for f in findings if not f.pii})
        self.kinds = sorted({f.kind for f in findings})
        if secrets and self.action == "refuse":
            raise SecretsFound(secrets)
        counters: dict[str, int] = {}
        for placeholder in self.mapping:
            kind_of = placeholder[1:].rsplit("_", 1)[0]
            counters[kind_of] = counters.get(kind_of, 0) + 1
        by_value: dict[str, str] = {v: k for k, v in self.mapping.items()}

        def replacement(finding: Finding, value: str) -> str:
            if not finding.pii:
                return f"[REDACTED_{finding.kind.upper()}]"
            if not self.anonymise_pii:
                return value
            if value in by_value:
                return by_value[value]
            kind = finding.kind.upper()
            counters[kind] = counters.get(kind, 0) + 1
            placeholder = f"<{kind}_{counters[kind]}>"
            self.mapping[placeholder] = value
            by_value[value] = placeholder
            return placeholder

        return _replace(text, findings, replacement)

    def restore(self, text: str) -> str:
        for placeholder, original in self.mapping.items():
            text = text.replace(placeholder, original)
        return text


def _replace(text: str, findings: list[Finding], replacement: Any) -> str:
    if not findings:
        return text
    parts: list[str] = []
    last = 0
    for finding in findings:
        parts.append(text[last : finding.start])
        parts.append(replacement(finding, text[finding.start : finding.end]))
        last = finding.end
    parts.append(text[last:])
    return "".join(parts)


def without_secrets(text: str) -> str:
    """``text`` with its secrets replaced by ``[REDACTED_<KIND>]`` and its personal data kept (session turns)."""
    try:
        findings = [f for f in scan(text, max_findings=10_000) if not f.pii]
    except TooManyFindings:
        return REDACTED
    return _replace(text, findings, lambda f, _v: f"[REDACTED_{f.kind.upper()}]")
