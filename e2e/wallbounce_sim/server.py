"""The simulator server: one aiohttp app that speaks three vendors' wire formats on one port.

Routes (what the official SDKs call when pointed here by base URL):
- OpenAI: ``POST /v1/responses``, ``POST /v1/chat/completions`` (``OPENAI_BASE_URL=<url>/v1``)
- Anthropic: ``POST /v1/messages`` (``ANTHROPIC_BASE_URL=<url>``)
- Gemini: ``POST /{v1,v1beta}/models/{model}:generateContent`` (``GOOGLE_GEMINI_BASE_URL=<url>``)
- Control: ``GET /_sim/stats``, ``POST /_sim/script`` (``{"openai": {...VendorScript fields}}``, merged),
  ``POST /_sim/reset`` (default scripts, zero counters).

Each vendor follows a ``VendorScript``: latency, a fixed error status, an error rate, failing the first N calls,
Retry-After, a per-second rate limit, the answer text (or a default answer ending in ``FINAL: <final>``, prefixed
by ``VERDICT: <verdict>`` when the prompt asks for a review), token counts. Error bodies follow each vendor's
documented shape; the 401 body echoes the key it was given, as a worst case for the service's log masking.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

VENDORS = ("openai", "gemini", "anthropic")
_MARKER_FINAL = re.compile(r"^\s*FINAL\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_MARKER_VERDICT = re.compile(r"^\s*VERDICT\s*:\s*(\w+).*$", re.IGNORECASE | re.MULTILINE)


@dataclass
class VendorScript:
    latency_s: float = 0.0
    error_status: int | None = None
    error_rate: float = 0.0
    fail_first: int = 0  # when set, error_status applies to the first N requests only
    retry_after_s: float | None = None
    rate_limit_per_s: int | None = None
    answer: str | None = None
    final: str = "Yes, this is the recommended approach."
    verdict: str = "agree"
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    empty: bool = False
    ignore_format: bool = False  # answer plain text even when structured (JSON) output is requested
    seed: int | None = None


@dataclass
class VendorStats:
    requests: int = 0
    errors: int = 0
    aborted: int = 0
    answered: int = 0
    structured: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    auth_headers: deque[str] = field(default_factory=lambda: deque(maxlen=100))
    paths: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    prompts: deque[str] = field(default_factory=lambda: deque(maxlen=100))
    models: deque[str] = field(default_factory=lambda: deque(maxlen=50))


def default_answer(prompt: str, script: VendorScript) -> str:
    topic = " ".join(prompt.split())[:300]
    text = (
        f"Considering the question ({topic}), the recommended approach follows from the usual trade-offs: "
        "measure first, change one thing at a time, and keep a way back.\n"
        f"FINAL: {script.final}"
    )
    if "VERDICT" in prompt:
        text = f"VERDICT: {script.verdict}\n{text}"
    return text


class Simulator:
    """The three simulated vendors; ``start`` binds a loopback port, ``script``/``stats`` drive and inspect them."""

    def __init__(self, scripts: dict[str, VendorScript] | None = None) -> None:
        self.scripts: dict[str, VendorScript] = {v: VendorScript() for v in VENDORS}
        self.scripts.update(scripts or {})
        self.stats: dict[str, VendorStats] = {v: VendorStats() for v in VENDORS}
        self._buckets: dict[str, tuple[float, int]] = {}
        self._rngs: dict[str, random.Random] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.app = self._build()

    # --- control ---------------------------------------------------------------------------------------------------
    def script(self, vendor: str, **fields: Any) -> VendorScript:
        """Replaces ``vendor``'s script with defaults plus ``fields``."""
        self.scripts[vendor] = VendorScript(**fields)
        self._rngs.pop(vendor, None)
        return self.scripts[vendor]

    def update(self, vendor: str, **fields: Any) -> VendorScript:
        """Changes some fields of ``vendor``'s script."""
        self.scripts[vendor] = dataclasses.replace(self.scripts[vendor], **fields)
        self._rngs.pop(vendor, None)
        return self.scripts[vendor]

    def reset(self) -> None:
        self.scripts = {v: VendorScript() for v in VENDORS}
        self.stats = {v: VendorStats() for v in VENDORS}
        self._buckets.clear()
        self._rngs.clear()

    def env(self) -> dict[str, str]:
        """The SDKs' base-URL variables that point them here."""
        return {
            "OPENAI_BASE_URL": f"{self.url}/v1",
            "ANTHROPIC_BASE_URL": self.url,
            "GOOGLE_GEMINI_BASE_URL": self.url,
        }

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        bound = sockets[0].getsockname()[1] if sockets else port
        self.url = f"http://{host}:{bound}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- HTTP ------------------------------------------------------------------------------------------------------
    def _build(self) -> web.Application:
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v1/responses", self._openai_responses)
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_post("/v1/messages", self._anthropic_messages)
        app.router.add_post("/{version}/models/{target}", self._gemini)
        app.router.add_get("/_sim/stats", self._stats)
        app.router.add_post("/_sim/script", self._control_script)
        app.router.add_post("/_sim/reset", self._control_reset)
        return app

    async def _stats(self, _request: web.Request) -> web.Response:
        out = {}
        for vendor, st in self.stats.items():
            out[vendor] = {
                "requests": st.requests,
                "errors": st.errors,
                "aborted": st.aborted,
                "answered": st.answered,
                "structured": st.structured,
                "max_in_flight": st.max_in_flight,
                "paths": list(st.paths),
                "models": list(st.models),
            }
        return web.json_response({"stats": out, "scripts": {v: dataclasses.asdict(s) for v, s in self.scripts.items()}})

    async def _control_script(self, request: web.Request) -> web.Response:
        body = await request.json()
        for vendor, fields in body.items():
            if vendor not in VENDORS or not isinstance(fields, dict):
                return web.json_response({"error": f"unknown vendor {vendor}"}, status=400)
            try:
                self.update(vendor, **fields)
            except TypeError as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({v: dataclasses.asdict(s) for v, s in self.scripts.items()})

    async def _control_reset(self, _request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"reset": True})

    # --- shared behaviour ------------------------------------------------------------------------------------------
    async def _gate(
        self, vendor: str, request: web.Request, key: str | None, prompt: str, model: str
    ) -> web.StreamResponse | None:
        """Records the call and waits the latency; the error response the script calls for, or None to answer."""
        self.stats[vendor].models.append(model)
        status = await self._behave(vendor, request, key, prompt)
        if status == 499:
            return web.Response(status=499)
        if status is not None:
            return self._fail(vendor, status, key)
        return None

    async def _behave(self, vendor: str, request: web.Request, key: str | None, prompt: str) -> int | None:
        """Records the call, waits the latency (noting an aborted client), returns an error status or None."""
        script = self.scripts[vendor]
        st = self.stats[vendor]
        st.requests += 1
        st.paths.append(request.path)
        st.prompts.append(prompt)
        st.auth_headers.append("present" if key else "missing")
        if not key:
            return 401
        st.in_flight += 1
        st.max_in_flight = max(st.max_in_flight, st.in_flight)
        try:
            end = time.monotonic() + script.latency_s
            for _ in range(int(script.latency_s / 0.02) + 2):
                remaining = end - time.monotonic()
                if remaining <= 0:
                    break
                transport = request.transport
                if transport is None or transport.is_closing():
                    st.aborted += 1
                    return 499
                await asyncio.sleep(min(0.02, remaining))
        finally:
            st.in_flight -= 1
        if script.rate_limit_per_s is not None:
            second = int(time.monotonic())
            start, count = self._buckets.get(vendor, (second, 0))
            if start != second:
                start, count = second, 0
            self._buckets[vendor] = (start, count + 1)
            if count + 1 > script.rate_limit_per_s:
                return 429
        if script.fail_first:  # error_status (default 500) for the first N requests only
            return (script.error_status or 500) if st.requests <= script.fail_first else None
        if script.error_rate > 0:
            rng = self._rngs.setdefault(vendor, random.Random(script.seed))
            if rng.random() < script.error_rate:
                return script.error_status or 500
            return None
        return script.error_status

    def _text(self, vendor: str, prompt: str) -> str:
        script = self.scripts[vendor]
        if script.empty:
            return ""
        if script.answer is not None:
            answer = script.answer
            if "VERDICT" in prompt and "VERDICT" not in answer:
                answer = f"VERDICT: {script.verdict}\n{answer}"
            return answer
        return default_answer(prompt, script)

    def _maybe_structured(self, vendor: str, text: str, requested: bool) -> str:
        """The answer as the JSON object the request's schema asks for (unless scripted to ignore it)."""
        if not requested or not text or self.scripts[vendor].ignore_format:
            return text
        self.stats[vendor].structured += 1
        final = _MARKER_FINAL.findall(text)
        verdict = _MARKER_VERDICT.findall(text)
        body = _MARKER_VERDICT.sub("", _MARKER_FINAL.sub("", text)).strip()
        return json.dumps(
            {
                "answer": body,
                "final_answer": final[-1].strip() if final else "",
                "verdict": verdict[-1].strip().lower() if verdict else "none",
            },
            ensure_ascii=False,
        )

    def _tokens(self, vendor: str, prompt: str, text: str) -> tuple[int, int]:
        script = self.scripts[vendor]
        inp = script.input_tokens if script.input_tokens is not None else max(1, len(prompt) // 4)
        out = script.output_tokens if script.output_tokens is not None else max(1, len(text) // 4)
        return inp, out

    def _headers(self, vendor: str, status: int) -> dict[str, str]:
        script = self.scripts[vendor]
        headers = {}
        if status in (429, 503, 529) and script.retry_after_s is not None:
            headers["retry-after"] = f"{script.retry_after_s:g}"
        if vendor in ("openai", "anthropic"):
            headers["x-request-id" if vendor == "openai" else "request-id"] = f"req_{uuid.uuid4().hex[:16]}"
        return headers

    def _fail(self, vendor: str, status: int, key: str | None) -> web.Response:
        self.stats[vendor].errors += 1
        headers = self._headers(vendor, status)
        if vendor == "openai":
            body = _openai_error(status, key)
        elif vendor == "anthropic":
            body = _anthropic_error(status)
        else:
            body = _gemini_error(status)
        return web.json_response(body, status=status, headers=headers)

    # --- vendors ---------------------------------------------------------------------------------------------------
    async def _openai_responses(self, request: web.Request) -> web.StreamResponse:
        key = _bearer(request)
        data = await _json(request)
        if data is None or "model" not in data:
            return self._fail("openai", 400, key)
        user = _openai_input_text(data.get("input"))
        prompt = user + "\n" + str(data.get("instructions") or "")
        refusal = await self._gate("openai", request, key, prompt, str(data["model"]))
        if refusal is not None:
            return refusal
        text_format = (data.get("text") or {}).get("format") or {}
        text = self._maybe_structured("openai", self._text("openai", user), text_format.get("type") == "json_schema")
        inp, out = self._tokens("openai", prompt, text)
        script = self.scripts["openai"]
        self.stats["openai"].answered += 1
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
        return web.json_response(body, headers=self._headers("openai", 200))

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        key = _bearer(request)
        data = await _json(request)
        if data is None or "model" not in data or not isinstance(data.get("messages"), list):
            return self._fail("openai", 400, key)
        prompt = "\n".join(_content_text(m.get("content")) for m in data["messages"] if isinstance(m, dict))
        user = "\n".join(
            _content_text(m.get("content")) for m in data["messages"] if isinstance(m, dict) and m.get("role") == "user"
        )
        refusal = await self._gate("openai", request, key, prompt, str(data["model"]))
        if refusal is not None:
            return refusal
        text = self._text("openai", user)
        inp, out = self._tokens("openai", prompt, text)
        script = self.scripts["openai"]
        self.stats["openai"].answered += 1
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
        return web.json_response(body, headers=self._headers("openai", 200))

    async def _anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get("x-api-key") or _bearer(request)
        data = await _json(request)
        if data is None or "model" not in data or "max_tokens" not in data:
            return self._fail("anthropic", 400, key)
        system = data.get("system") or ""
        system_text = system if isinstance(system, str) else " ".join(_content_text(b) for b in system)
        prompt = "\n".join(_content_text(m.get("content")) for m in data.get("messages", []) if isinstance(m, dict))
        user = prompt
        prompt = f"{prompt}\n{system_text}"
        refusal = await self._gate("anthropic", request, key, prompt, str(data["model"]))
        if refusal is not None:
            return refusal
        text = self._text("anthropic", user)
        inp, out = self._tokens("anthropic", prompt, text)
        script = self.scripts["anthropic"]
        self.stats["anthropic"].answered += 1
        body = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": data["model"],
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": inp,
                "output_tokens": out,
                "cache_read_input_tokens": script.cached_tokens,
                "cache_creation_input_tokens": 0,
            },
        }
        return web.json_response(body, headers=self._headers("anthropic", 200))

    async def _gemini(self, request: web.Request) -> web.StreamResponse:
        target = request.match_info["target"]
        model, _, action = target.partition(":")
        if request.match_info["version"] not in ("v1", "v1beta") or action != "generateContent":
            return web.json_response(_gemini_error(404), status=404)
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        data = await _json(request)
        if data is None or not isinstance(data.get("contents"), list):
            return self._fail("gemini", 400, key)
        parts = []
        for content in data["contents"]:
            for part in content.get("parts", []) if isinstance(content, dict) else []:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    parts.append(part["text"])
        user = "\n".join(parts)
        system = data.get("systemInstruction") or data.get("system_instruction") or {}
        for part in system.get("parts", []) if isinstance(system, dict) else []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        prompt = "\n".join(parts)
        refusal = await self._gate("gemini", request, key, prompt, model)
        if refusal is not None:
            return refusal
        generation = data.get("generationConfig") or {}
        text = self._maybe_structured(
            "gemini", self._text("gemini", user), generation.get("responseMimeType") == "application/json"
        )
        inp, out = self._tokens("gemini", prompt, text)
        script = self.scripts["gemini"]
        self.stats["gemini"].answered += 1
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


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() or None if auth.lower().startswith("bearer ") else None


async def _json(request: web.Request) -> dict[str, Any] | None:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(_content_text(c) for c in content)
    if isinstance(content, dict):
        return str(content.get("text") or _content_text(content.get("content")) or "")
    return ""


def _openai_input_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_content_text(item.get("content")) if isinstance(item, dict) else str(item) for item in value)
    return ""


_OPENAI_ERRORS = {
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


def _openai_error(status: int, key: str | None) -> dict[str, Any]:
    kind, code, message = _OPENAI_ERRORS.get(status, ("server_error", None, "The server had an error."))
    return {"error": {"message": message.format(key=key or "(none)"), "type": kind, "param": None, "code": code}}


_ANTHROPIC_ERRORS = {
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


def _anthropic_error(status: int) -> dict[str, Any]:
    kind = _ANTHROPIC_ERRORS.get(status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": kind.replace("_", " ").capitalize()},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }


_GEMINI_STATUS = {
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


def _gemini_error(status: int) -> dict[str, Any]:
    name = _GEMINI_STATUS.get(status, "INTERNAL")
    return {"error": {"code": status, "message": f"Simulated {name.lower().replace('_', ' ')}.", "status": name}}
