"""The provider adapters through the official SDKs against the simulators, the retry loop, deadlines, the breaker."""

from __future__ import annotations

import time

import pytest
from wallbounce_sim import Simulator

from wallbounce_local.procs import free_port
from wallbounce_service import protocol
from wallbounce_service.config import CooldownSettings, RetrySettings, Settings
from wallbounce_service.metrics import Metrics
from wallbounce_service.providers import build_clients
from wallbounce_service.providers.anthropic_api import AnthropicClient
from wallbounce_service.providers.base import (
    ErrorKind,
    ProviderAnswer,
    ProviderCallError,
    ProviderFailure,
    decode_structured,
)
from wallbounce_service.providers.gemini_api import GeminiClient
from wallbounce_service.providers.openai_api import OpenAIClient
from wallbounce_service.providers.router import Breaker, ProviderPool

CLIENTS = {
    "openai": (OpenAIClient, "gpt-5"),
    "anthropic": (AnthropicClient, "claude-sonnet-4-6"),
    "gemini": (GeminiClient, "gemini-2.5-pro"),
}


def pool_for(
    names: list[str], retry: RetrySettings | None = None, timeout_s: float = 5.0, metrics: Metrics | None = None
) -> ProviderPool:
    settings = Settings()
    providers = {n: settings.providers[n].model_copy(update={"timeout_s": timeout_s}) for n in names}
    clients = {n: CLIENTS[n][0](CLIENTS[n][1]) for n in names}
    return ProviderPool(
        clients,
        providers,
        settings.prices,
        retry or RetrySettings(attempts=3, base_delay_s=0.01, max_delay_s=0.02),
        CooldownSettings(),
        metrics or Metrics("stable"),
    )


async def test_usage_is_normalised_and_costed_per_vendor(sim: Simulator, provider_env: dict[str, str]) -> None:
    for vendor in ("openai", "anthropic", "gemini"):
        sim.script(
            vendor,
            answer=f"{vendor} says hi\nFINAL: Yes.",
            input_tokens=1000,
            output_tokens=500,
            cached_tokens=200,
            reasoning_tokens=100,
        )
    metrics = Metrics("stable")
    pool = pool_for(["openai", "anthropic", "gemini"], metrics=metrics)
    try:
        results = {n: await pool.call(n, "system", "question?") for n in ("openai", "anthropic", "gemini")}
    finally:
        await pool.close()
    for name, result in results.items():
        assert isinstance(result, ProviderAnswer), result
        assert result.text.startswith(f"{name} says hi") and result.attempts == 1
    o, a, g = results["openai"].usage, results["anthropic"].usage, results["gemini"].usage
    # OpenAI: input includes cached, output includes reasoning
    assert (o.input_tokens, o.cached_input_tokens, o.output_tokens, o.reasoning_tokens) == (1200, 200, 600, 100)
    # Anthropic: input excludes cache reads: the adapter adds them back
    assert (a.input_tokens, a.cached_input_tokens, a.output_tokens) == (1200, 200, 500)
    # Gemini: thinking tokens are reported apart from candidates and billed as output
    assert (g.input_tokens, g.cached_input_tokens, g.output_tokens, g.reasoning_tokens) == (1200, 200, 600, 100)
    assert results["openai"].cost_usd == pytest.approx((1000 * 1.25 + 200 * 0.125 + 600 * 10) / 1e6)
    assert results["anthropic"].cost_usd == pytest.approx((1000 * 3 + 200 * 0.30 + 500 * 15) / 1e6)
    assert results["gemini"].cost_usd == pytest.approx((1000 * 1.25 + 200 * 0.125 + 600 * 10) / 1e6)
    assert sim.stats["openai"].paths[-1] == "/v1/responses"
    assert sim.stats["anthropic"].paths[-1] == "/v1/messages"
    assert sim.stats["gemini"].paths[-1].endswith("/models/gemini-2.5-pro:generateContent")
    labels = {"variant": "stable", "revision": "unknown"}
    tokens = metrics.registry.get_sample_value(
        "wallbounce_tokens_total", {**labels, "provider": "anthropic", "direction": "input"}
    )
    assert tokens == 1200
    cost = metrics.registry.get_sample_value("wallbounce_cost_usd_total", {**labels, "provider": "gemini"})
    assert cost == pytest.approx(results["gemini"].cost_usd)


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, ErrorKind.BAD_REQUEST),
        (401, ErrorKind.AUTH),
        (429, ErrorKind.RATE_LIMITED),
        (500, ErrorKind.SERVER),
        (529, ErrorKind.OVERLOADED),
    ],
)
async def test_vendor_errors_are_typed_and_the_sdk_does_not_retry(
    sim: Simulator, provider_env: dict[str, str], vendor: str, status: int, kind: ErrorKind
) -> None:
    sim.script(vendor, error_status=status, retry_after_s=7)
    cls, model = CLIENTS[vendor]
    client = cls(model)
    try:
        with pytest.raises(ProviderCallError) as err:
            await client.complete("system", "question", 64, 5.0)
    finally:
        await client.close()
    assert err.value.kind is kind and err.value.status == status
    assert sim.stats[vendor].requests == 1  # max_retries=0: the SDK made exactly one request
    if status == 429:
        assert err.value.retry_after_s == 7


async def test_empty_answer_is_a_failure(sim: Simulator, provider_env: dict[str, str]) -> None:
    sim.script("gemini", empty=True)
    pool = pool_for(["gemini"])
    try:
        result = await pool.call("gemini", "s", "q")
    finally:
        await pool.close()
    assert isinstance(result, ProviderFailure) and result.kind is ErrorKind.EMPTY and result.attempts == 1


async def test_retry_honours_retry_after_then_succeeds(sim: Simulator, provider_env: dict[str, str]) -> None:
    sim.script("openai", fail_first=2, error_status=429, retry_after_s=0.3)
    pool = pool_for(["openai", "gemini"])
    start = time.monotonic()
    try:
        result = await pool.call("openai", "s", "q")
    finally:
        await pool.close()
    elapsed = time.monotonic() - start
    assert isinstance(result, ProviderAnswer) and result.attempts == 3
    assert sim.stats["openai"].requests == 3
    assert elapsed >= 0.6  # two waits of Retry-After 0.3 s, not the 10 ms backoff


async def test_other_4xx_is_never_retried_and_5xx_is(sim: Simulator, provider_env: dict[str, str]) -> None:
    sim.script("anthropic", error_status=400)
    sim.script("gemini", error_status=500)
    pool = pool_for(["anthropic", "gemini"])
    try:
        bad = await pool.call("anthropic", "s", "q")
        server = await pool.call("gemini", "s", "q")
    finally:
        await pool.close()
    assert isinstance(bad, ProviderFailure) and bad.kind is ErrorKind.BAD_REQUEST and bad.attempts == 1
    assert sim.stats["anthropic"].requests == 1
    assert isinstance(server, ProviderFailure) and server.kind is ErrorKind.SERVER and server.attempts == 3
    assert sim.stats["gemini"].requests == 3


async def test_retry_after_longer_than_allowed_falls_back_at_once(sim: Simulator, provider_env: dict[str, str]) -> None:
    sim.script("openai", error_status=429, retry_after_s=120)
    pool = pool_for(["openai", "gemini"])
    start = time.monotonic()
    try:
        result = await pool.call("openai", "s", "q")
    finally:
        await pool.close()
    assert isinstance(result, ProviderFailure) and result.kind is ErrorKind.RATE_LIMITED
    assert sim.stats["openai"].requests == 1 and time.monotonic() - start < 2


async def test_per_provider_deadline_covers_all_attempts(sim: Simulator, provider_env: dict[str, str]) -> None:
    sim.script("anthropic", latency_s=3)
    pool = pool_for(["anthropic"], timeout_s=0.4)
    start = time.monotonic()
    try:
        result = await pool.call("anthropic", "s", "q")
    finally:
        await pool.close()
    assert isinstance(result, ProviderFailure) and result.kind is ErrorKind.TIMEOUT
    assert result.attempts == 1  # no time was left for another attempt: the deadline covers all of them
    assert time.monotonic() - start < 2.5  # the simulator answers after 3 s


async def test_gemini_refused_connection_is_cut_short_by_our_deadline(
    provider_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK alone sleeps ~9 s on a refused connection before raising a raw aiohttp error."""
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", f"http://127.0.0.1:{free_port()}")
    pool = pool_for(["gemini"], timeout_s=1.0)
    start = time.monotonic()
    try:
        result = await pool.call("gemini", "s", "q")
    finally:
        await pool.close()
    assert isinstance(result, ProviderFailure)
    assert result.kind in (ErrorKind.CONNECTION, ErrorKind.TIMEOUT)
    assert time.monotonic() - start < 5  # the SDK alone takes about 9 s


def test_a_provider_without_a_key_is_not_configured(
    provider_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    assert sorted(build_clients(Settings().providers)) == ["gemini", "openai"]
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaFAKEother0123456789abcdefghijk")
    assert sorted(build_clients(Settings().providers)) == ["gemini", "openai"]


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "gemini"])
async def test_each_vendor_answers_in_structure_through_its_native_feature(
    vendor: str, sim: Simulator, provider_env: dict[str, str]
) -> None:
    """OpenAI json_schema (strict), Gemini response_schema, Anthropic a forced tool call: the simulator sees the
    schema in the vendor's own request field and answers the object; the adapter hands it back decoded."""
    sim.script(vendor, answer="Keep-alive reuses connections.\nFINAL: Yes, enable it.")
    pool = pool_for([vendor])
    try:
        result = await pool.call(vendor, protocol.ANSWER_SYSTEM, "Enable keep-alive?", protocol.ANSWER)
    finally:
        await pool.close()
    assert isinstance(result, ProviderAnswer) and result.data is not None, result
    assert sim.stats[vendor].rounds[-1] == "answer" and sim.stats[vendor].structured == 1
    answer = protocol.parse_answer(result.text, result.data)
    assert answer.structured and answer.answer == "Keep-alive reuses connections."
    assert (answer.final.kind, answer.final.boolean, answer.final.text) == ("boolean", True, "Yes, enable it.")
    assert answer.restated == "Enable keep-alive?"


@pytest.mark.parametrize("vendor", ["openai", "anthropic", "gemini"])
async def test_a_vendor_ignoring_the_schema_gives_text_not_a_fabricated_structure(
    vendor: str, sim: Simulator, provider_env: dict[str, str]
) -> None:
    sim.script(vendor, answer="Plain words.\nFINAL: It depends.", ignore_format=True)
    pool = pool_for([vendor])
    try:
        result = await pool.call(vendor, protocol.ANSWER_SYSTEM, "Enable keep-alive?", protocol.ANSWER)
    finally:
        await pool.close()
    assert isinstance(result, ProviderAnswer) and result.data is None
    answer = protocol.parse_answer(result.text, result.data)
    assert not answer.structured and answer.final.kind == "claim" and answer.final.text == "It depends."


def test_structured_output_is_only_a_json_object() -> None:
    assert decode_structured('{"answer": "x"}') == {"answer": "x"}
    for not_an_object in ("plain text", "[1, 2]", "{broken", "", '"string"'):
        assert decode_structured(not_an_object) is None


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_on_majority_failures_and_closes_after_cooldown() -> None:
    clock = FakeClock()
    changes: list[tuple[str, bool]] = []
    breaker = Breaker(["a", "b"], CooldownSettings(cooldown_s=5), clock, on_change=lambda n, s: changes.append((n, s)))
    for ok in (True, True, False, False):
        breaker.record("a", ok, None if ok else ErrorKind.SERVER)
    assert breaker.available("a")  # 4 calls: below the minimum of 5
    breaker.record("a", False, ErrorKind.SERVER)  # 3 of 5 failed: > 50 %
    assert not breaker.available("a") and breaker.available_names() == ["b"]
    clock.now += 5.01
    assert breaker.available("a")
    assert changes == [("a", False), ("a", True)]


def test_breaker_ignores_client_errors_and_cools_on_429() -> None:
    clock = FakeClock()
    breaker = Breaker(["a", "b"], CooldownSettings(cooldown_s=5), clock)
    for _ in range(10):
        breaker.record("a", False, ErrorKind.BAD_REQUEST)
    assert breaker.available("a")
    breaker.record("a", False, ErrorKind.RATE_LIMITED, retry_after_s=8)
    assert not breaker.available("a")
    clock.now += 5.5
    assert not breaker.available("a")  # Retry-After (8 s) outlasts the default cooldown
    clock.now += 3
    assert breaker.available("a")


def test_the_last_available_provider_is_never_cooled_down() -> None:
    clock = FakeClock()
    breaker = Breaker(["a", "b"], CooldownSettings(cooldown_s=5), clock)
    breaker.record("a", False, ErrorKind.RATE_LIMITED)
    assert breaker.available_names() == ["b"]
    for _ in range(10):
        breaker.record("b", False, ErrorKind.SERVER)
    breaker.record("b", False, ErrorKind.RATE_LIMITED)
    assert breaker.available_names() == ["b"]
