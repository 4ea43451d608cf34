"""OpenAI's wire format: ``POST /v1/responses`` (structured output via ``text.format`` json_schema) and
``POST /v1/chat/completions``, with usage fields and OpenAI's error bodies (the 401 echoes the key it was given, as
a worst case for the service's log masking)."""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .wire import bearer, content_text, read_json

if TYPE_CHECKING:
    from .server import Simulator

VENDOR = "openai"


def _input_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(content_text(item.get("content")) if isinstance(item, dict) else str(item) for item in value)
    return ""


def schema_properties(data: dict[str, Any]) -> list[str] | None:
    fmt = (data.get("text") or {}).get("format") or {}
    if fmt.get("type") != "json_schema":
        return None
    return list(((fmt.get("schema") or {}).get("properties") or {}).keys())


async def responses(sim: Simulator, request: web.Request) -> web.StreamResponse:
    key = bearer(request)
    data = await read_json(request)
    if data is None or "model" not in data:
        return sim.fail(VENDOR, 400, key)
    user = _input_text(data.get("input"))
    prompt = user + "\n" + str(data.get("instructions") or "")
    refusal = await sim.gate(VENDOR, request, key, prompt, str(data["model"]))
    if refusal is not None:
        return refusal
    text, _ = sim.reply(VENDOR, user, schema_properties(data))
    inp, out = sim.tokens(VENDOR, prompt, text)
    script = sim.scripts[VENDOR]
    sim.stats[VENDOR].answered += 1
    content = [{"type": "output_text", "text": text, "annotations": []}] if text else []
    body = {
        "id": f"resp_{uuid.uuid4().hex}",
        "object": "response",
        "created_at": int(time.time()),
        "model": data["model"],
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": data.get("instructions"),
        "metadata": {},
        "parallel_tool_calls": True,
        "temperature": 1.0,
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "output": [
            {
                "type": "message",
                "id": f"msg_{uuid.uuid4().hex}",
                "role": "assistant",
                "status": "completed",
                "content": content,
            }
        ],
        "usage": {
            "input_tokens": inp + script.cached_tokens,
            "input_tokens_details": {"cached_tokens": script.cached_tokens},
            "output_tokens": out + script.reasoning_tokens,
            "output_tokens_details": {"reasoning_tokens": script.reasoning_tokens},
            "total_tokens": inp + script.cached_tokens + out + script.reasoning_tokens,
        },
    }
    return web.json_response(body, headers=sim.headers(VENDOR, 200))


async def chat_completions(sim: Simulator, request: web.Request) -> web.StreamResponse:
    key = bearer(request)
    data = await read_json(request)
    if data is None or "model" not in data or not isinstance(data.get("messages"), list):
        return sim.fail(VENDOR, 400, key)
    messages = [m for m in data["messages"] if isinstance(m, dict)]
    prompt = "\n".join(content_text(m.get("content")) for m in messages)
    user = "\n".join(content_text(m.get("content")) for m in messages if m.get("role") == "user")
    refusal = await sim.gate(VENDOR, request, key, prompt, str(data["model"]))
    if refusal is not None:
        return refusal
    text, _ = sim.reply(VENDOR, user, None)
    inp, out = sim.tokens(VENDOR, prompt, text)
    script = sim.scripts[VENDOR]
    sim.stats[VENDOR].answered += 1
    body = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": inp + script.cached_tokens,
            "completion_tokens": out + script.reasoning_tokens,
            "total_tokens": inp + script.cached_tokens + out + script.reasoning_tokens,
            "prompt_tokens_details": {"cached_tokens": script.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": script.reasoning_tokens},
        },
    }
    return web.json_response(body, headers=sim.headers(VENDOR, 200))


_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: {key}."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported.",
    ),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(status: int, key: str | None) -> dict[str, Any]:
    kind, code, message = _ERRORS.get(status, ("server_error", None, "The server had an error."))
    return {"error": {"message": message.format(key=key or "(none)"), "type": kind, "param": None, "code": code}}
