"""Anthropic's wire format: ``POST /v1/messages``; structured output arrives as a forced tool call (a ``tool_use``
block whose ``input`` is the object), with usage fields (cache reads apart) and Anthropic's error bodies."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .wire import bearer, content_text, read_json

if TYPE_CHECKING:
    from .server import Simulator

VENDOR = "anthropic"


def forced_tool(data: dict[str, Any]) -> dict[str, Any] | None:
    """The tool the request forces (``tool_choice`` of type tool), if it offers it."""
    choice = data.get("tool_choice") or {}
    if not isinstance(choice, dict) or choice.get("type") != "tool":
        return None
    for tool in data.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name") == choice.get("name"):
            return tool
    return None


async def messages(sim: Simulator, request: web.Request) -> web.StreamResponse:
    key = request.headers.get("x-api-key") or bearer(request)
    data = await read_json(request)
    if data is None or "model" not in data or "max_tokens" not in data:
        return sim.fail(VENDOR, 400, key)
    system = data.get("system") or ""
    system_text = system if isinstance(system, str) else " ".join(content_text(b) for b in system)
    user = "\n".join(content_text(m.get("content")) for m in data.get("messages", []) if isinstance(m, dict))
    prompt = f"{user}\n{system_text}"
    refusal = await sim.gate(VENDOR, request, key, prompt, str(data["model"]))
    if refusal is not None:
        return refusal
    tool = forced_tool(data)
    properties = list(((tool or {}).get("input_schema") or {}).get("properties") or {}) if tool else None
    text, structured = sim.reply(VENDOR, user, properties)
    inp, out = sim.tokens(VENDOR, prompt, text)
    script = sim.scripts[VENDOR]
    sim.stats[VENDOR].answered += 1
    if tool is not None and structured is not None:
        content: list[dict[str, Any]] = [
            {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": tool["name"], "input": structured}
        ]
        stop = "tool_use"
    else:
        content = [{"type": "text", "text": text}] if text else []
        stop = "end_turn"
    body = {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": data["model"],
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_input_tokens": script.cached_tokens,
            "cache_creation_input_tokens": 0,
        },
    }
    return web.Response(text=json.dumps(body, ensure_ascii=False), content_type="application/json",
                        headers=sim.headers(VENDOR, 200))


_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_body(status: int) -> dict[str, Any]:
    kind = _ERRORS.get(status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": kind.replace("_", " ").capitalize()},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }
