"""OpenAI through the official SDK's Responses API (GPT-5 class models); SDK retries off, errors typed.

Key and base URL come from the SDK's own variables ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (which must include
``/v1``). Usage: ``input_tokens`` includes cached tokens, ``output_tokens`` includes reasoning tokens.
"""

from __future__ import annotations

import openai

from .base import (
    ANSWER_SCHEMA,
    ErrorKind,
    ProviderCallError,
    RawAnswer,
    Usage,
    canonical_text,
    kind_for_status,
    parse_retry_after,
)


class OpenAIClient:
    name = "openai"

    def __init__(self, model: str) -> None:
        self.model = model
        # aiohttp as the SDK's transport (its documented option for concurrency): about a third less CPU per call
        self._client = openai.AsyncOpenAI(max_retries=0, http_client=openai.DefaultAioHttpClient())

    async def complete(self, system: str, prompt: str, max_output_tokens: int, timeout_s: float) -> RawAnswer:
        try:
            response = await self._client.responses.create(
                model=self.model,
                instructions=system,
                input=prompt,
                max_output_tokens=max_output_tokens,
                text={
                    "format": {
                        "type": "json_schema",
                        "name": "wall_bounce_answer",
                        "schema": ANSWER_SCHEMA,
                        "strict": True,
                    }
                },
                timeout=timeout_s,
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
        text = canonical_text(response.output_text or "")
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
        )

    async def close(self) -> None:
        await self._client.close()
