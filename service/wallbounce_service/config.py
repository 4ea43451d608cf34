"""Configuration of the wall-bounce service: pydantic-settings from environment variables plus an optional YAML file.

Precedence (highest first): constructor arguments, environment variables (prefix ``WALLBOUNCE_``, nested keys
separated by ``__``), the YAML file named by ``WALLBOUNCE_CONFIG_FILE`` (a ConfigMap mount), then the defaults below.
API keys and base URLs are *not* here: each SDK reads its own environment variables (``OPENAI_API_KEY``,
``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``/``GOOGLE_API_KEY`` and the matching base URLs); see ``providers``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from .consensus_config import ConsensusSettings

ProviderName = Literal["openai", "gemini", "anthropic"]
TaskType = Literal["basic", "premium", "critical"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("openai", "gemini", "anthropic")
TASK_TYPES: tuple[TaskType, ...] = ("basic", "premium", "critical")
_DEFAULT_FALLBACK: tuple[ProviderName, ...] = ("gemini", "anthropic", "openai")

#: the environment variable naming the YAML configuration file
CONFIG_FILE_VARIABLE = "WALLBOUNCE_CONFIG_FILE"

#: Version of the built-in price table below (list prices per million tokens, checked 2026-11).
PRICE_TABLE_VERSION = "2026-11-24"


class Price(BaseModel):
    """List price of one model in USD per million tokens; ``*_above`` apply past ``tier_threshold`` prompt tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    tier_threshold: int | None = Field(default=None, ge=1)
    input_above: float | None = Field(default=None, ge=0)
    output_above: float | None = Field(default=None, ge=0)


def _default_prices() -> dict[str, Price]:
    return {
        "gpt-5": Price(input=1.25, output=10.0, cached_input=0.125),
        "gemini-2.5-pro": Price(
            input=1.25, output=10.0, cached_input=0.125, tier_threshold=200_000, input_above=2.5, output_above=15.0
        ),
        "claude-sonnet-4-5": Price(input=3.0, output=15.0, cached_input=0.30, cache_write=3.75),
        "claude-sonnet-4-6": Price(input=3.0, output=15.0, cached_input=0.30, cache_write=3.75),
    }


class ProviderSettings(BaseModel):
    """Per-provider knobs: model id, deadline of one call, weight in the consensus vote."""

    model: str
    timeout_s: float = Field(default=25.0, gt=0)
    weight: float = Field(default=1.0, gt=0)
    max_output_tokens: int = Field(default=2048, ge=16)


def _default_providers() -> dict[str, ProviderSettings]:
    return {
        "openai": ProviderSettings(model="gpt-5", weight=1.0),
        "gemini": ProviderSettings(model="gemini-2.5-pro", weight=1.0),
        "anthropic": ProviderSettings(model="claude-sonnet-4-6", weight=1.0),
    }


def _default_selection() -> dict[str, list[ProviderName]]:
    # The guide's table: basic → Gemini, Claude; premium → GPT-5, Gemini; critical → all three.
    return {
        "basic": ["gemini", "anthropic"],
        "premium": ["openai", "gemini"],
        "critical": ["openai", "anthropic", "gemini"],
    }


class RetrySettings(BaseModel):
    """The service's single retry loop (the SDKs' own retries are off)."""

    attempts: int = Field(default=3, ge=1, le=10)
    base_delay_s: float = Field(default=0.5, ge=0)
    max_delay_s: float = Field(default=8.0, ge=0)
    max_retry_after_s: float = Field(default=30.0, ge=0)


class CooldownSettings(BaseModel):
    """LiteLLM's defaults: > 50 % failures over >= 5 calls in the window, or a 429, cools a provider for 5 s."""

    failure_threshold: float = Field(default=0.5, ge=0, le=1)
    min_requests: int = Field(default=5, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    cooldown_s: float = Field(default=5.0, ge=0)


class CacheSettings(BaseModel):
    """The caches (exact answer, similar query, provider result), all keyed by tenant and user.

    ``enabled: false`` turns every cache off. The similar-query cache is off unless ``similar_enabled``: it can only
    prove that two prompts differ in spelling, not that they mean the same (see ``similarity``). ``max_bytes`` bounds
    the in-process store and, separately, the similar-query index; ``max_value_bytes`` bounds one stored value.
    """

    enabled: bool = True
    similar_enabled: bool = False
    ttl_s: float = Field(default=3600.0, gt=0)
    max_entries: int = Field(default=1024, ge=1)
    max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    max_value_bytes: int = Field(default=256 * 1024, ge=1024)
    provider_results: bool = True


class SessionSettings(BaseModel):
    """Conversation history: 24 h TTL, caps on turns, on sessions and on bytes kept in memory.

    Only what goes back to the providers is stored: ``context_chars`` of each prompt and answer.
    """

    ttl_s: float = Field(default=24 * 3600.0, gt=0)
    max_turns: int = Field(default=20, ge=1)
    max_sessions: int = Field(default=10_000, ge=1)
    max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    context_turns: int = Field(default=4, ge=0)
    context_chars: int = Field(default=1000, ge=1)


class TenantLimits(BaseModel):
    """What one tenant may use. Rates are token buckets (``burst`` requests at once, refilled at
    ``requests_per_s``; ``tokens_per_min`` of provider tokens, input and output), the budget is USD per UTC day,
    ``max_concurrent`` is per service process, ``max_request_usd`` caps the estimated cost of one request (the
    client's ``budget_usd`` can only lower it). ``task_types`` the tenant may ask for (others: 403)."""

    model_config = ConfigDict(extra="forbid")

    requests_per_s: float = Field(default=5.0, gt=0)
    burst: int = Field(default=10, ge=1)
    tokens_per_min: int = Field(default=200_000, ge=1)
    usd_per_day: float = Field(default=10.0, ge=0)
    max_request_usd: float = Field(default=0.5, gt=0)
    max_concurrent: int = Field(default=16, ge=1)
    task_types: list[TaskType] = Field(default_factory=lambda: list(TASK_TYPES))


class AuthSettings(BaseModel):
    """API keys: a YAML file (a mounted Secret) re-read when it changes. ``required: false`` serves requests without
    a key as the tenant ``anonymous`` with ``anonymous_limits`` — for development only."""

    required: bool = True
    keys_file: Path | None = None
    reload_s: float = Field(default=5.0, gt=0)
    anonymous_limits: TenantLimits = Field(default_factory=TenantLimits)


class LimitSettings(BaseModel):
    """Process-wide caps and the HTTP parser's limits. Beyond ``max_inflight`` requests (or the tenant's
    ``max_concurrent``) a request is refused at once with Retry-After: nothing queues without bound."""

    max_inflight: int = Field(default=256, ge=1)
    max_upstream: int = Field(default=96, ge=1)
    retry_after_s: int = Field(default=1, ge=1)
    body_read_timeout_s: float = Field(default=10.0, gt=0)
    max_json_depth: int = Field(default=8, ge=2)
    max_number_chars: int = Field(default=64, ge=8)
    max_line_size: int = Field(default=8190, ge=256)
    max_field_size: int = Field(default=8190, ge=256)
    max_headers: int = Field(default=64, ge=8)
    keepalive_timeout_s: float = Field(default=75.0, gt=0)


class SecretSettings(BaseModel):
    """What happens to secrets found in a prompt before it leaves: ``redact`` (replaced by ``[REDACTED_KIND]``) or
    ``refuse`` (HTTP 400 naming the kinds). E-mail addresses and phone numbers become placeholders either way
    (``anonymise_prompts``). More than ``max_findings`` sensitive values in one prompt is refused."""

    action: Literal["redact", "refuse"] = "redact"
    max_findings: int = Field(default=500, ge=1)


class Settings(BaseSettings):
    """Everything the service reads at start-up."""

    model_config = SettingsConfigDict(env_prefix="WALLBOUNCE_", env_nested_delimiter="__", extra="ignore")

    variant: Literal["stable", "canary"] = "stable"
    revision: str = Field(default="unknown", min_length=1, max_length=128)
    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")

    providers: dict[str, ProviderSettings] = Field(default_factory=_default_providers)
    prices: dict[str, Price] = Field(default_factory=_default_prices)
    price_table_version: str = PRICE_TABLE_VERSION
    selection: dict[str, list[ProviderName]] = Field(default_factory=_default_selection)
    fallback_order: list[ProviderName] = Field(default_factory=lambda: list(_DEFAULT_FALLBACK))
    min_confidence: dict[str, float] = Field(default_factory=lambda: {"basic": 0.7, "premium": 0.75, "critical": 0.8})
    agreement_target: float = Field(default=0.6, ge=0, le=1)
    expected_output_tokens: int = Field(default=800, ge=1)

    retry: RetrySettings = Field(default_factory=RetrySettings)
    cooldown: CooldownSettings = Field(default_factory=CooldownSettings)
    consensus: ConsensusSettings = Field(default_factory=ConsensusSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    sessions: SessionSettings = Field(default_factory=SessionSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    secrets: SecretSettings = Field(default_factory=SecretSettings)

    request_deadline_s: float = Field(default=30.0, gt=0, le=600)
    max_prompt_chars: int = Field(default=32_000, ge=1)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    heartbeat_s: float = Field(default=15.0, gt=0)
    anonymise_prompts: bool = True
    log_prompts: bool = False

    @field_validator("revision", mode="before")
    @classmethod
    def _unset_revision(cls, value: Any) -> Any:
        # the downward API gives an empty string when the pod has no pod-template-hash label (a bare Pod)
        return "unknown" if value is None or value == "" else value

    @field_validator("selection")
    @classmethod
    def _two_per_task(cls, value: dict[str, list[ProviderName]]) -> dict[str, list[ProviderName]]:
        for task in ("basic", "premium", "critical"):
            chosen = value.get(task)
            if chosen is None or len(set(chosen)) < 2:
                raise ValueError(f"selection.{task} must name at least two distinct providers")
        return value

    @model_validator(mode="after")
    def _known_models(self) -> Settings:
        for name in self.providers:
            if name not in PROVIDER_NAMES:
                raise ValueError(f"providers.{name}: unknown provider (known: {', '.join(PROVIDER_NAMES)})")
        for name, provider in self.providers.items():
            if provider.model not in self.prices:
                raise ValueError(f"providers.{name}.model {provider.model!r} has no entry in prices")
        return self

    @property
    def srp_processed(self) -> bool:
        """The canary is the new path of the original's SRP migration."""
        return self.variant == "canary"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Constructor arguments, then the environment, then the YAML file named by ``WALLBOUNCE_CONFIG_FILE``
        (pydantic-settings' own YAML source); a named file that does not exist is an error, never ignored."""
        path = os.environ.get(CONFIG_FILE_VARIABLE)
        if not path:
            return init_settings, env_settings
        if not Path(path).is_file():
            raise ValueError(f"{CONFIG_FILE_VARIABLE}={path}: no such file")
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=path)
