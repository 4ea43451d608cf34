"""Masking: secrets and personal data never reach a log line; prompts are anonymised and restored."""

from __future__ import annotations

import io
import json
import logging

import pytest

from wallbounce_service.logs import JsonFormatter, configure_logging
from wallbounce_service.redact import REDACTED, Anonymiser, redact


@pytest.mark.parametrize(
    "secret",
    [
        "sk-proj-abcdefghijklmnop1234",
        "sk-ant-api03-abcdefghijklmnop",
        "AIzaSyA1234567890abcdefghijklmnopqrstu",
        "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
        "alice.smith+test@example.co.jp",
        "090-1234-5678",
        "+1 415 555 0100",
        "4111 1111 1111 1111",
    ],
)
def test_redact_masks(secret: str) -> None:
    out = redact(f"before {secret} after")
    assert secret not in out
    assert REDACTED in out
    assert out.startswith("before ") and out.endswith(" after")


def test_redact_masks_key_value_pairs_and_keeps_the_key_name() -> None:
    out = redact('{"api_key": "abcdef123456", "password=hunter2hunter"}')
    assert "abcdef123456" not in out and "hunter2hunter" not in out
    assert "api_key" in out


def test_redact_keeps_ordinary_text() -> None:
    text = "Enable keep-alive on 3 of 12 load balancers by 2026-11-30."
    assert redact(text) == text


def test_anonymiser_round_trip() -> None:
    anon = Anonymiser()
    prompt = "Mail bob@example.com or call 03-1234-5678; cc bob@example.com."
    masked = anon.anonymise(prompt)
    assert "bob@example.com" not in masked and "03-1234-5678" not in masked
    assert masked.count("<EMAIL_1>") == 2 and "<PHONE_1>" in masked
    assert anon.restore(f"Reply to <EMAIL_1> about {masked}") == f"Reply to bob@example.com about {prompt}"


def test_json_formatter_redacts_message_and_extra_fields() -> None:
    stream = io.StringIO()
    handler = configure_logging("json", "INFO", stream)
    try:
        logging.getLogger("wallbounce.test").warning(
            "key %s used", "sk-test-abcdefghijkl", extra={"detail": {"email": "eve@example.org"}}
        )
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue().strip()
    record = json.loads(line)
    assert record["level"] == "warning" and record["logger"] == "wallbounce.test"
    assert "sk-test-abcdefghijkl" not in line and "eve@example.org" not in line
    assert record["detail"]["email"] == REDACTED


def test_json_formatter_includes_exceptions_redacted() -> None:
    try:
        raise RuntimeError("failed for token=abcdef0123456789")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, exc_info=__import__("sys").exc_info())
    line = JsonFormatter().format(record)
    assert "abcdef0123456789" not in line and "RuntimeError" in line
