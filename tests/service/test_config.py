"""Configuration: defaults, the YAML file (a ConfigMap mount), environment overrides, refusal of bad values."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from wallbounce_service.cli import main
from wallbounce_service.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WALLBOUNCE_CONFIG_FILE", "WALLBOUNCE_VARIANT", "REDIS_URL", "WALLBOUNCE_REQUEST_DEADLINE_S"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_follow_the_guide() -> None:
    s = Settings()
    assert s.variant == "stable" and s.srp_processed is False
    assert s.selection["basic"] == ["gemini", "anthropic"] and s.min_confidence["basic"] == 0.7
    assert s.prices["gpt-5"].input == 1.25 and s.prices["gpt-5"].output == 10
    assert s.prices["claude-sonnet-4-6"].input == 3 and s.prices["gemini-2.5-pro"].tier_threshold == 200_000
    assert s.cooldown.cooldown_s == 5 and s.cooldown.min_requests == 5 and s.cooldown.failure_threshold == 0.5
    assert s.sessions.ttl_s == 24 * 3600
    # secure defaults: keys required, a deadline of at most 30 s, the similar-query cache off, prompts never logged
    assert s.auth.required and s.request_deadline_s <= 30 and not s.cache.similar_enabled and not s.log_prompts
    assert s.secrets.action == "redact" and s.revision == "unknown"


def test_revision_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WALLBOUNCE_REVISION", "7d9f8c6b5")
    assert Settings().revision == "7d9f8c6b5"
    monkeypatch.setenv("WALLBOUNCE_REVISION", "")  # the downward API on a pod without the label
    assert Settings().revision == "unknown"


def test_yaml_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "wallbounce.yaml"
    path.write_text(
        "variant: canary\n"
        "request_deadline_s: 42\n"
        "providers:\n"
        "  anthropic: {model: claude-sonnet-4-5, timeout_s: 30, weight: 0.5}\n"
        "  openai: {model: gpt-5}\n"
        "  gemini: {model: gemini-2.5-pro}\n"
        "cache: {enabled: false}\n"
    )
    monkeypatch.setenv("WALLBOUNCE_CONFIG_FILE", str(path))
    s = Settings()
    assert s.variant == "canary" and s.srp_processed and s.request_deadline_s == 42
    assert s.providers["anthropic"].model == "claude-sonnet-4-5" and s.providers["anthropic"].weight == 0.5
    assert s.cache.enabled is False
    monkeypatch.setenv("WALLBOUNCE_REQUEST_DEADLINE_S", "7")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    s = Settings()
    assert s.request_deadline_s == 7 and s.redis_url == "redis://127.0.0.1:1/0"


def test_bad_configuration_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="no entry in prices"):
        Settings(providers={"openai": {"model": "gpt-unknown"}})
    with pytest.raises(ValidationError):
        Settings(variant="beta")
    path = tmp_path / "bad.yaml"
    path.write_text("- not a mapping\n")
    monkeypatch.setenv("WALLBOUNCE_CONFIG_FILE", str(path))
    assert main(["--port", "0"]) == 2  # the CLI refuses to start with an invalid configuration


@pytest.mark.parametrize("content", [None, "42\n", "- a list\n"], ids=["missing", "a scalar", "a list"])
def test_a_configuration_file_that_is_missing_or_no_mapping_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None
) -> None:
    path = tmp_path / "wallbounce.yaml"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("WALLBOUNCE_CONFIG_FILE", str(path))
    with pytest.raises((ValueError, TypeError)):
        Settings()
    assert main(["--port", "0"]) == 2  # never started on the defaults instead
