"""Google Gemini through the official ``google-genai`` SDK (``generateContent``); errors typed.

Key from ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``), base URL from ``GOOGLE_GEMINI_BASE_URL`` (passed explicitly as
``http_options.base_url``). The SDK does not retry HTTP errors unless asked (we don't), but on a refused connection
its aiohttp transport sleeps and retries for ~9 s before raising a raw ``aiohttp`` error: the caller's deadline
(``asyncio.timeout`` in the router) cuts that short, and raw transport errors are typed as ``CONNECTION`` here.
Gemini reports thinking tokens apart from candidates; both are billed as output. Structured output is Gemini's own:
``response_mime_type="application/json"`` with the schema as ``response_json_schema`` (the JSON-Schema form of
``response_schema``, the same schema the other vendors get). Not the ``Schema``-object form: the SDK deep-copies the
request config twice per call, and a ``Schema`` object made that cost about 3 ms of CPU per call (measured against
the simulator), more than the rest of the call; the plain dict costs nothing measurable.
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from ..protocol import OutputSchema
from .base import ErrorKind, ProviderCallError, RawAnswer, Usage, decode_structured, kind_for_status, parse_retry_after


def api_key() -> str | None:
    return os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or None


class GeminiClient:
    name = "gemini"

    def __init__(self, model: str) -> None:
        self.model = model
        base_url = os.environ.get("GOOGLE_GEMINI_BASE_URL") or None
        self._client = genai.Client(api_key=api_key(), http_options=types.HttpOptions(base_url=base_url))
        self._models = self._client.aio.models  # bound now: the SDK imports it lazily, on first use

    async def complete(
        self, system: str, prompt: str, max_output_tokens: int, timeout_s: float, schema: OutputSchema | None = None
    ) -> RawAnswer:
        structured: dict[str, Any] = {}
        if schema is not None:
            structured = {"response_mime_type": "application/json", "response_json_schema": schema.schema}
        config = types.GenerateContentConfig(
            system_instruction=system,
            max_output_tokens=max_output_tokens,
            http_options=types.HttpOptions(timeout=max(1, int(timeout_s * 1000))),
            **structured,
        )
        try:
            response = await self._models.generate_content(model=self.model, contents=prompt, config=config)
        except genai_errors.APIError as exc:
            headers = getattr(getattr(exc, "response", None), "headers", None)
            raise ProviderCallError(
                kind_for_status(exc.code),
                f"gemini: HTTP {exc.code} {exc.status or ''}".strip(),
                exc.code,
                parse_retry_after(headers),
                detail=str(exc),
            ) from exc
        except TimeoutError as exc:  # before ClientError: aiohttp's timeouts are both
            raise ProviderCallError(ErrorKind.TIMEOUT, "gemini: request timed out") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProviderCallError(ErrorKind.CONNECTION, f"gemini: connection failed ({type(exc).__name__})") from exc
        text = response.text or ""
        if not text.strip():
            raise ProviderCallError(ErrorKind.EMPTY, "gemini: the answer had no text")
        meta = response.usage_metadata
        prompt_tokens = (meta.prompt_token_count or 0) if meta else 0
        thoughts = (meta.thoughts_token_count or 0) if meta else 0
        candidates = (meta.candidates_token_count or 0) if meta else 0
        return RawAnswer(
            text=text,
            model=response.model_version or self.model,
            usage=Usage(
                input_tokens=prompt_tokens,
                output_tokens=candidates + thoughts,
                cached_input_tokens=(meta.cached_content_token_count or 0) if meta else 0,
                reasoning_tokens=thoughts,
            ),
            data=decode_structured(text) if schema is not None else None,
        )

    async def close(self) -> None:
        await self._client.aio.aclose()

