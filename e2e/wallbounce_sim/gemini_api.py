"""Gemini's wire format: ``POST /{v1,v1beta}/models/{model}:generateContent``; structured output when
``generationConfig`` asks for ``application/json`` with a ``responseSchema`` (or ``responseJsonSchema``), with
``usageMetadata`` (thinking tokens apart) and Google's error bodies."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .wire import read_json

if TYPE_CHECKING:
    from .server import Simulator

VENDOR = "gemini"


def schema_properties(generation: dict[str, Any]) -> list[str] | None:
    if generation.get("responseMimeType") != "application/json":
        return None
    schema = generation.get("responseSchema") or generation.get("responseJsonSchema") or {}
    return list((schema.get("properties") or {}).keys()) if isinstance(schema, dict) else None


def _texts(content: Any) -> list[str]:
    parts = content.get("parts", []) if isinstance(content, dict) else []
    return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str)]


async def generate_content(sim: Simulator, request: web.Request) -> web.StreamResponse:
    target = request.match_info["target"]
    model, _, action = target.partition(":")
    if request.match_info["version"] not in ("v1", "v1beta") or action != "generateContent":
        return web.json_response(error_body(404), status=404)
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    data = await read_json(request)
    if data is None or not isinstance(data.get("contents"), list):
        return sim.fail(VENDOR, 400, key)
    user = "\n".join(t for content in data["contents"] for t in _texts(content))
    system = data.get("systemInstruction") or data.get("system_instruction") or {}
    prompt = "\n".join([user, *_texts(system)])
    refusal = await sim.gate(VENDOR, request, key, prompt, model)
    if refusal is not None:
        return refusal
    text, _ = sim.reply(VENDOR, user, schema_properties(data.get("generationConfig") or {}))
    inp, out = sim.tokens(VENDOR, prompt, text)
    script = sim.scripts[VENDOR]
    sim.stats[VENDOR].answered += 1
    body = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}] if text else []},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": inp + script.cached_tokens,
            "candidatesTokenCount": out,
            "thoughtsTokenCount": script.reasoning_tokens,
            "cachedContentTokenCount": script.cached_tokens,
            "totalTokenCount": inp + script.cached_tokens + out + script.reasoning_tokens,
        },
        "modelVersion": model,
        "responseId": uuid.uuid4().hex[:20],
    }
    return web.json_response(body)


_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}


def error_body(status: int) -> dict[str, Any]:
    name = _STATUS.get(status, "INTERNAL")
    return {"error": {"code": status, "message": f"Simulated {name.lower().replace('_', ' ')}.", "status": name}}
