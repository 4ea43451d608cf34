"""The simulator server: one aiohttp app that speaks three vendors' wire formats on one port.

Routes (what the official SDKs call when pointed here by base URL), one module per vendor as in the service's
``providers/``:
- OpenAI (``openai_api``): ``POST /v1/responses``, ``POST /v1/chat/completions`` (``OPENAI_BASE_URL=<url>/v1``)
- Anthropic (``anthropic_api``): ``POST /v1/messages`` (``ANTHROPIC_BASE_URL=<url>``)
- Gemini (``gemini_api``): ``POST /{v1,v1beta}/models/{model}:generateContent`` (``GOOGLE_GEMINI_BASE_URL=<url>``)
- Control: ``GET /_sim/stats``, ``POST /_sim/script`` (``{"openai": {...VendorScript fields}}``, merged),
  ``POST /_sim/reset`` (default scripts, zero counters), ``POST /_sim/cases`` (``{"builtin": true}`` loads the
  service's evaluation set; ``{"cases": {...}}`` a document of the same format).

Each vendor follows a ``VendorScript`` (``scripts``): latency, a fixed error status, an error rate, failing the first
N calls, Retry-After, a per-second rate limit, what it answers and how it reviews. What a vendor answers — plain
text or the structured object of the service's rounds, from its script or from a loaded evaluation case — is the
``player``'s job; this module only gates, counts and delivers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from wallbounce_service.evalset import Case, load_cases, parse_cases

from . import anthropic_api, gemini_api, openai_api
from .player import Player, round_of
from .scripts import VendorScript, VendorStats

VENDORS = ("openai", "gemini", "anthropic")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Simulator:
    """The three simulated vendors; ``start`` binds a loopback port, ``script``/``stats`` drive and inspect them."""

    def __init__(self, scripts: dict[str, VendorScript] | None = None, cases: Iterable[Case] = ()) -> None:
        self.scripts: dict[str, VendorScript] = {v: VendorScript() for v in VENDORS}
        self.scripts.update(scripts or {})
        self.stats: dict[str, VendorStats] = {v: VendorStats() for v in VENDORS}
        self.player = Player(cases)
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

    def load_cases(self, cases: Iterable[Case]) -> None:
        """Questions of these evaluation cases are answered from the cases (see ``player``)."""
        self.player.load(cases)

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

        def bound(handler: Callable[[Simulator, web.Request], Awaitable[web.StreamResponse]]) -> Handler:
            async def handle(request: web.Request) -> web.StreamResponse:
                return await handler(self, request)

            return handle

        app.router.add_post("/v1/responses", bound(openai_api.responses))
        app.router.add_post("/v1/chat/completions", bound(openai_api.chat_completions))
        app.router.add_post("/v1/messages", bound(anthropic_api.messages))
        app.router.add_post("/{version}/models/{target}", bound(gemini_api.generate_content))
        app.router.add_get("/_sim/stats", self._stats)
        app.router.add_post("/_sim/script", self._control_script)
        app.router.add_post("/_sim/reset", self._control_reset)
        app.router.add_post("/_sim/cases", self._control_cases)
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
                "rounds": list(st.rounds),
            }
        return web.json_response({"stats": out, "scripts": {v: dataclasses.asdict(s) for v, s in self.scripts.items()},
                                  "cases": len(self.player.cases)})

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

    async def _control_cases(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            cases = list(load_cases()) if body.get("builtin") else parse_cases(body["cases"])
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"error": f"bad cases: {exc}"}, status=400)
        self.load_cases(cases)
        return web.json_response({"loaded": len(cases)})

    # --- shared behaviour ------------------------------------------------------------------------------------------
    async def gate(
        self, vendor: str, request: web.Request, key: str | None, prompt: str, model: str
    ) -> web.StreamResponse | None:
        """Records the call and waits the latency; the error response the script calls for, or None to answer."""
        self.stats[vendor].models.append(model)
        status = await self._behave(vendor, request, key, prompt)
        if status == 499:
            return web.Response(status=499)
        if status is not None:
            return self.fail(vendor, status, key)
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

    def reply(self, vendor: str, user: str, properties: list[str] | None) -> tuple[str, dict[str, Any] | None]:
        """What ``vendor`` answers to ``user``: the text sent, and the structured object when the request asked for
        one (by its schema's properties) and the script does not ignore it."""
        script = self.scripts[vendor]
        if script.empty:
            return "", None
        kind = round_of(properties)
        self.stats[vendor].rounds.append(kind or "plain")
        if kind is None or script.ignore_format:
            return self.player.plain(script, user, vendor), None
        data = self.player.structured(vendor, script, user, kind)
        self.stats[vendor].structured += 1
        return json.dumps(data, ensure_ascii=False), data

    def tokens(self, vendor: str, prompt: str, text: str) -> tuple[int, int]:
        script = self.scripts[vendor]
        inp = script.input_tokens if script.input_tokens is not None else max(1, len(prompt) // 4)
        out = script.output_tokens if script.output_tokens is not None else max(1, len(text) // 4)
        return inp, out

    def headers(self, vendor: str, status: int) -> dict[str, str]:
        script = self.scripts[vendor]
        headers = {}
        if status in (429, 503, 529) and script.retry_after_s is not None:
            headers["retry-after"] = f"{script.retry_after_s:g}"
        if vendor in ("openai", "anthropic"):
            headers["x-request-id" if vendor == "openai" else "request-id"] = f"req_{uuid.uuid4().hex[:16]}"
        return headers

    def fail(self, vendor: str, status: int, key: str | None) -> web.Response:
        self.stats[vendor].errors += 1
        if vendor == "openai":
            body = openai_api.error_body(status, key)
        elif vendor == "anthropic":
            body = anthropic_api.error_body(status)
        else:
            body = gemini_api.error_body(status)
        return web.json_response(body, status=status, headers=self.headers(vendor, status))
