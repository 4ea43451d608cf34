"""Anthropic Claude through the official SDK's Messages API; SDK retries off, errors typed.

Structured output is tool use: the schema is offered as the one tool and ``tool_choice`` forces Claude to call it;
the tool call's ``input`` is the structured answer. Key and base URL come from ``ANTHROPIC_API_KEY`` and
``ANTHROPIC_BASE_URL`` (host only). Anthropic's ``input_tokens`` excludes cache reads and writes: they are added
here so ``input_tokens`` is the whole prompt.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic

from ..protocol import OutputSchema
from .base import ErrorKind, ProviderCallError, RawAnswer, Usage, kind_for_status, parse_retry_after


def tool_for(schema: OutputSchema) -> dict[str, Any]:
    return {"name": schema.name, "description": schema.description, "input_schema": schema.schema}


class AnthropicClient:
    name = "anthropic"

    def __init__(self, model: str) -> None:
        self.model = model
        # aiohttp as the SDK's transport (its documented option for concurrency): less CPU per call
        self._client = anthropic.AsyncAnthropic(max_retries=0, http_client=anthropic.DefaultAioHttpClient())
        self._messages = self._client.messages  # bound now: the SDK imports it lazily, on first use

    async def complete(
        self, system: str, prompt: str, max_output_tokens: int, timeout_s: float, schema: OutputSchema | None = None
    ) -> RawAnswer:
        extra: dict[str, Any] = {}
        if schema is not None:
            extra = {"tools": [tool_for(schema)], "tool_choice": {"type": "tool", "name": schema.name}}
        try:
            message = await self._messages.create(
                model=self.model,
                max_tokens=max_output_tokens,
                system=system,
                messages=[{"role": "user", "content": prompt}],
                timeout=timeout_s,
                **extra,
            )
        except anthropic.APITimeoutError as exc:
            raise ProviderCallError(ErrorKind.TIMEOUT, "anthropic: request timed out") from exc
        except anthropic.APIConnectionError as exc:
            raise ProviderCallError(ErrorKind.CONNECTION, "anthropic: connection failed") from exc
        except anthropic.APIStatusError as exc:
            raise ProviderCallError(
                kind_for_status(exc.status_code),
                f"anthropic: HTTP {exc.status_code}",
                exc.status_code,
                parse_retry_after(exc.response.headers),
                detail=str(exc),
            ) from exc
        data: dict[str, Any] | None = None
        if schema is not None:
            for block in message.content:
                if block.type == "tool_use" and block.name == schema.name and isinstance(block.input, dict):
                    data = dict(block.input)
                    break
        text = json.dumps(data, ensure_ascii=False) if data is not None else "".join(
            getattr(block, "text", "") for block in message.content if block.type == "text"
        )
        if not text.strip():
            raise ProviderCallError(ErrorKind.EMPTY, "anthropic: the answer had no text")
        u = message.usage
        reads = u.cache_read_input_tokens or 0
        writes = u.cache_creation_input_tokens or 0
        return RawAnswer(
            text=text,
            model=message.model or self.model,
            usage=Usage(
                input_tokens=u.input_tokens + reads + writes,
                output_tokens=u.output_tokens,
                cached_input_tokens=reads,
                cache_write_tokens=writes,
            ),
            data=data,
        )

    async def close(self) -> None:
        await self._client.close()
