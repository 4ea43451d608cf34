"""OpenAI through the official SDK's Responses API (GPT-5 class models); SDK retries off, errors typed.

Structured output is the Responses API's own: ``text.format`` of type ``json_schema`` with ``strict: true`` (the
schema is built so that strict mode accepts it: every property required, no additional properties).
Key and base URL come from the SDK's own variables ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (which must include
``/v1``). Usage: ``input_tokens`` includes cached tokens, ``output_tokens`` includes reasoning tokens.
"""

from __future__ import annotations

from typing import Any

import openai

from ..protocol import OutputSchema
from .base import ErrorKind, ProviderCallError, RawAnswer, Usage, decode_structured, kind_for_status, parse_retry_after


def text_format(schema: OutputSchema) -> dict[str, Any]:
    return {
        "format": {
            "type": "json_schema",
            "name": schema.name,
            "description": schema.description,
            "schema": schema.schema,
            "strict": True,
        }
    }


class OpenAIClient:
    name = "openai"

    def __init__(self, model: str) -> None:
        self.model = model
        # aiohttp as the SDK's transport (its documented option for concurrency): about a third less CPU per call
        self._client = openai.AsyncOpenAI(max_retries=0, http_client=openai.DefaultAioHttpClient())
        self._responses = self._client.responses  # bound now: the SDK imports it lazily, on first use
        self._formats: dict[str, dict[str, Any]] = {}

    def _format(self, schema: OutputSchema) -> dict[str, Any]:
        if schema.name not in self._formats:
            self._formats[schema.name] = text_format(schema)
        return self._formats[schema.name]

    async def complete(
        self, system: str, prompt: str, max_output_tokens: int, timeout_s: float, schema: OutputSchema | None = None
    ) -> RawAnswer:
        extra: dict[str, Any] = {"text": self._format(schema)} if schema is not None else {}
        try:
            response = await self._responses.create(
                model=self.model,
                instructions=system,
                input=prompt,
                max_output_tokens=max_output_tokens,
                timeout=timeout_s,
                **extra,
            )
        except openai.APITimeoutError as exc:
            raise ProviderCallError(ErrorKind.TIMEOUT, "openai: request timed out") from exc
        except openai.APIConnectionError as exc:
            raise ProviderCallError(ErrorKind.CONNECTION, "openai: connection failed") from exc
        except openai.APIStatusError as exc:
            code = getattr(exc, "code", None)
            kind = kind_for_status(exc.status_code)
            if exc.status_code == 429 and code == "insufficient_quota":
                kind = ErrorKind.AUTH  # no amount of waiting fixes an empty account
            raise ProviderCallError(
                kind,
                f"openai: HTTP {exc.status_code} {code or ''}".strip(),
                exc.status_code,
                parse_retry_after(exc.response.headers),
                detail=str(exc),
            ) from exc
        usage = response.usage
        text = response.output_text or ""
        if not text.strip():
            raise ProviderCallError(ErrorKind.EMPTY, "openai: the answer had no text")
        return RawAnswer(
            text=text,
            model=response.model or self.model,
            usage=Usage(
                input_tokens=usage.input_tokens if usage else 0,
                output_tokens=usage.output_tokens if usage else 0,
                cached_input_tokens=(usage.input_tokens_details.cached_tokens or 0)
                if usage and usage.input_tokens_details
                else 0,
                reasoning_tokens=(usage.output_tokens_details.reasoning_tokens or 0)
                if usage and usage.output_tokens_details
                else 0,
            ),
            data=decode_structured(text) if schema is not None else None,
        )

    async def close(self) -> None:
        await self._client.close()
