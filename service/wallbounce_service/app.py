"""The aiohttp application factory: routes, JSON-error and metrics middlewares, resources in ``cleanup_ctx``.

``create_app(settings)`` builds the app; its cleanup context opens Redis (when ``REDIS_URL`` is set), the session
store, the caches, the provider SDK clients (those whose key is set) and closes them on shutdown. Every response
carries the variant header; every generate request is counted in the metrics contract with an outcome
(``success`` 200, ``rejected`` 4xx, ``error`` 5xx).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic
from aiohttp import web

from . import analyzer as analyzer_mod
from .api import VARIANT_HEADER, GenerateRequest, GenerateResponse, openapi_document
from .cache import Caches, MemoryBackend, RedisBackend
from .config import Settings
from .metrics import CONTENT_TYPE, Metrics
from .providers import build_clients
from .providers.base import ProviderClient
from .providers.router import ProviderPool
from .redact import Anonymiser
from .selection import SelectionError, select
from .sessions import MemorySessionStore, RedisSessionStore, SessionStore, Turn

log = logging.getLogger("wallbounce.app")

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
POOL = web.AppKey("pool", ProviderPool)
CACHES = web.AppKey("caches", Caches)
SESSIONS = web.AppKey("sessions", SessionStore)
ANALYZER = web.AppKey("analyzer", analyzer_mod.Analyzer)
ClientFactory = Callable[[], Mapping[str, ProviderClient]]
CLIENT_FACTORY: web.AppKey[ClientFactory] = web.AppKey("client_factory")
OPENAPI = web.AppKey("openapi", dict)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error that becomes ``{"error": {...}}`` with its HTTP status (and optional extra body fields)."""

    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.extra = extra or {}

    def response(self, variant: str) -> web.Response:
        body = {**self.extra, "error": {"code": self.code, "message": self.message, "field": self.field}}
        return web.json_response(
            body,
            status=self.status,
            headers={VARIANT_HEADER: variant},
            dumps=lambda v: json.dumps(v, ensure_ascii=False),
        )


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as JSON; unexpected exceptions are logged (redacted) and become a 500."""
    variant = request.app[SETTINGS].variant
    try:
        response = await handler(request)
    except ApiError as exc:
        return exc.response(variant)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        err = ApiError(exc.status, code, exc.reason or code)
        resp = err.response(variant)
        if exc.status == 405 and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("unhandled error", extra={"path": request.path})
        return ApiError(500, "internal", "internal error").response(variant)
    if not response.prepared:
        response.headers.setdefault(VARIANT_HEADER, variant)
    return response


def create_app(
    settings: Settings | None = None,
    client_factory: Callable[[], Mapping[str, ProviderClient]] | None = None,
) -> web.Application:
    """The service. ``client_factory`` (tests, benchmarks) replaces the SDK clients built from the environment."""
    settings = settings or Settings()
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = Metrics(settings.variant)
    app[CLIENT_FACTORY] = client_factory or (lambda: build_clients(settings.providers))
    app[OPENAPI] = openapi_document(settings.max_prompt_chars, settings.max_body_bytes)
    app.cleanup_ctx.append(_resources)
    app.router.add_post("/api/v1/generate", generate)
    app.router.add_post("/api/v1/generate/stream", generate_stream)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/api/v1/openapi.json", openapi_handler)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    metrics = app[METRICS]
    redis = None
    if settings.redis_url:
        import redis.asyncio as aioredis

        redis = aioredis.from_url(settings.redis_url)
        await redis.ping()
    sess = settings.sessions
    app[SESSIONS] = (
        RedisSessionStore(redis, sess.ttl_s, sess.max_turns)
        if redis is not None
        else MemorySessionStore(sess.ttl_s, sess.max_turns, sess.max_sessions)
    )
    backend = (
        RedisBackend(redis, max_value_bytes=settings.cache.max_bytes)
        if redis is not None
        else MemoryBackend(settings.cache.max_entries, settings.cache.max_bytes)
    )
    app[CACHES] = Caches(settings.cache, metrics, backend)
    clients = app[CLIENT_FACTORY]()
    pool = ProviderPool(clients, settings.providers, settings.prices, settings.retry, settings.cooldown, metrics)
    app[POOL] = pool
    app[ANALYZER] = analyzer_mod.Analyzer(settings, pool)
    log.info(
        "service ready",
        extra={
            "variant": settings.variant,
            "providers": pool.names,
            "redis": redis is not None,
            "price_table": settings.price_table_version,
        },
    )
    try:
        yield
    finally:
        await pool.close()
        if redis is not None:
            await redis.aclose()


# --- request parsing -----------------------------------------------------------------------------------------------


async def _parse(request: web.Request) -> GenerateRequest:
    settings = request.app[SETTINGS]
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "the body must be application/json")
    if request.content_length is not None and request.content_length > settings.max_body_bytes:
        raise ApiError(413, "payload_too_large", f"the body is larger than {settings.max_body_bytes} bytes")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise ApiError(413, "payload_too_large", f"the body is larger than {settings.max_body_bytes} bytes") from exc
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(
            400, "malformed_json", f"the body is not valid JSON: {exc.msg if hasattr(exc, 'msg') else exc}"
        ) from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "the body must be a JSON object")
    try:
        req = GenerateRequest.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, "invalid_field", f"{field}: {first['msg']}", field) from exc
    if any("\ud800" <= ch <= "\udfff" for ch in req.prompt):  # lone surrogates cannot be encoded: replace them
        req.prompt = req.prompt.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if len(req.prompt) > settings.max_prompt_chars:
        raise ApiError(400, "invalid_field", f"prompt: longer than {settings.max_prompt_chars} characters", "prompt")
    return req


class _Outcome:
    """Counts and logs one generate request, whatever way it ends (the prompt only as a redacted preview)."""

    def __init__(self, metrics: Metrics, endpoint: str) -> None:
        self.metrics = metrics
        self.endpoint = endpoint
        self.task_type = "unknown"
        self.start = time.monotonic()
        self.status = 500
        self.code: str | None = None
        self.request: GenerateRequest | None = None

    def done(self) -> None:
        outcome = "success" if self.status < 400 else "rejected" if self.status < 500 else "error"
        self.metrics.request(self.task_type, outcome, time.monotonic() - self.start)
        req = self.request
        log.info(
            self.endpoint,
            extra={
                "status": self.status,
                "outcome": outcome,
                "code": self.code,
                "task_type": self.task_type,
                "mode": req.mode if req else None,
                "user": _user_hash(req.user_id) if req else None,
                "prompt_preview": req.prompt[:80] if req else None,
                "ms": _ms(self.start),
            },
        )


@contextlib.asynccontextmanager
async def _counted(request: web.Request, endpoint: str) -> AsyncIterator[_Outcome]:
    metrics = request.app[METRICS]
    outcome = _Outcome(metrics, endpoint)
    gauge = metrics.inflight.labels(metrics.variant)
    gauge.inc()
    try:
        yield outcome
    except ApiError as exc:
        outcome.status = exc.status
        outcome.code = exc.code
        raise
    finally:
        gauge.dec()
        outcome.done()


# --- the core of both generate endpoints ---------------------------------------------------------------------------


async def _answer(request: web.Request, req: GenerateRequest, emit: analyzer_mod.Emit) -> dict[str, Any]:
    """The response body for ``req`` (raises ``ApiError`` for 422/503/504)."""
    app = request.app
    settings, caches, pool = app[SETTINGS], app[CACHES], app[POOL]
    start = time.monotonic()
    anonymiser = Anonymiser()
    history = await app[SESSIONS].history(req.session_id) if req.session_id else []
    # the history goes to the providers too: anonymise the whole text that leaves
    full_prompt = _with_history(req.prompt, history, settings.sessions.context_turns)
    if settings.anonymise_prompts:
        full_prompt = anonymiser.anonymise(full_prompt)
    scope = f"{req.task_type}|{req.mode}|{req.depth}"
    use_cache = not history
    if use_cache:
        hit = await caches.get_exact(scope, full_prompt)
        similar = None if hit is not None else await caches.get_similar(scope, full_prompt)
        if hit is None and similar is not None:
            hit = similar[0]
        if hit is not None:
            body = {
                **hit,
                "cached": True,
                "session_id": req.session_id,
                "timestamp": _now(),
                "response": anonymiser.restore(hit["response"]),
                "reasoning": anonymiser.restore(hit["reasoning"]),
                "variant": settings.variant,
                "srp_processed": settings.srp_processed,
            }
            body["wall_bounce_analysis"] = {**hit["wall_bounce_analysis"], "processing_time_ms": _ms(start)}
            await _remember(app, req, body)
            await emit("final_answer", body)
            return body
    # sequential: a proposal plus ``depth`` reviews, alternating over (at least) a pair of providers
    calls = math.ceil((req.depth + 1) / 2) if req.mode == "sequential" else 1
    try:
        selection = select(
            req.task_type,
            full_prompt,
            pool.available(),
            settings,
            req.budget_usd,
            calls,
            {n: pool.model_of(n) for n in pool.names},
        )
    except SelectionError as exc:
        if exc.code == "budget":
            raise ApiError(422, "budget_too_low", str(exc), "budget_usd") from exc
        raise ApiError(503, "providers_unavailable", str(exc)) from exc
    try:
        async with asyncio.timeout(settings.request_deadline_s):
            analysis = await app[ANALYZER].run(full_prompt, req.task_type, req.mode, req.depth, selection, emit)
    except TimeoutError as exc:
        raise ApiError(
            504, "deadline_exceeded", f"no consensus within the request deadline of {settings.request_deadline_s:g} s"
        ) from exc
    except analyzer_mod.NotEnoughAnswers as exc:
        raise ApiError(503, "not_enough_providers", str(exc), extra={"llm_votes": exc.votes}) from exc
    c = analysis.consensus
    app[METRICS].observe_confidence(req.task_type, c.confidence)
    body = {
        "response": anonymiser.restore(c.response),
        "confidence": c.confidence,
        "reasoning": anonymiser.restore(c.reasoning),
        "session_id": req.session_id,
        "task_type": req.task_type,
        "wall_bounce_analysis": {
            "providers_used": analysis.providers_used,
            "llm_votes": analyzer_mod.votes_for_response(analysis),
            "rounds": analysis.rounds,
            "total_cost": round(analysis.total_cost, 8),
            "processing_time_ms": _ms(start),
            "degraded": analysis.degraded,
        },
        "agreement": c.agreement,
        "coherence": c.coherence,
        "relevance": c.relevance,
        "variant": settings.variant,
        "srp_processed": settings.srp_processed,
        "cached": False,
        "timestamp": _now(),
    }
    await emit("consensus", {k: body[k] for k in ("confidence", "agreement", "coherence", "relevance", "reasoning")})
    minimum = settings.min_confidence.get(req.task_type, 0.7)
    if c.confidence < minimum:
        raise ApiError(
            422,
            "low_consensus",
            f"confidence {c.confidence:.2f} is below the minimum {minimum:.2f} for task_type "
            f"{req.task_type} after {analysis.rounds} round(s)",
            "confidence",
            extra=body,
        )
    await _remember(app, req, body)
    if use_cache:
        # cached as sent (placeholders, not personal data); restored per request on a hit
        await caches.put_exact(scope, full_prompt, {**body, "response": c.response, "reasoning": c.reasoning})
    await emit("final_answer", body)
    return body


async def _remember(app: web.Application, req: GenerateRequest, body: dict[str, Any]) -> None:
    if req.session_id:
        await app[SESSIONS].append(req.session_id, Turn(req.prompt, body["response"], time.time()))


def _with_history(prompt: str, history: list[Turn], turns: int) -> str:
    if not history or turns == 0:
        return prompt
    lines = ["Conversation so far:"]
    for turn in history[-turns:]:
        lines.append(f"User: {turn.prompt[:1000]}")
        lines.append(f"Assistant: {turn.response[:1000]}")
    lines.append(f"\nNew question: {prompt}")
    return "\n".join(lines)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _ms(start: float) -> float:
    return round((time.monotonic() - start) * 1000, 2)


def _user_hash(user_id: str | None) -> str | None:
    return hashlib.sha256(user_id.encode()).hexdigest()[:12] if user_id else None


# --- handlers ------------------------------------------------------------------------------------------------------


async def _no_emit(_event: str, _data: dict[str, Any]) -> None:
    return None


async def generate(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    async with _counted(request, "generate") as outcome:
        req = await _parse(request)
        outcome.task_type, outcome.request = req.task_type, req
        body = await _answer(request, req, _no_emit)
        GenerateResponse.model_validate(body)
        outcome.status = 200
        return web.json_response(
            body, headers={VARIANT_HEADER: settings.variant}, dumps=lambda v: json.dumps(v, ensure_ascii=False)
        )


async def generate_stream(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    async with _counted(request, "generate_stream") as outcome:
        req = await _parse(request)
        outcome.task_type, outcome.request = req.task_type, req
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", VARIANT_HEADER: settings.variant}
        )
        await response.prepare(request)
        lock = asyncio.Lock()

        async def send(event: str, data: dict[str, Any]) -> None:
            payload = json.dumps(data, ensure_ascii=False)
            async with lock:
                await response.write(f"event: {event}\ndata: {payload}\n\n".encode())

        async def heartbeat() -> None:
            for _ in range(int(settings.request_deadline_s / settings.heartbeat_s) + 2):
                await asyncio.sleep(settings.heartbeat_s)
                async with lock:
                    await response.write(b": heartbeat\n\n")

        work = asyncio.create_task(_answer(request, req, send))
        beats = asyncio.create_task(heartbeat())
        watcher = asyncio.create_task(_watch_disconnect(request, settings.request_deadline_s + 5))
        try:
            done, _ = await asyncio.wait({work, watcher, beats}, return_when=asyncio.FIRST_COMPLETED)
            if work not in done:
                # the client went away (watcher) or a heartbeat could not be written: cancel the provider calls
                work.cancel()
                with contextlib.suppress(asyncio.CancelledError, ApiError, ConnectionError):
                    await work
                outcome.status = 499
                log.info("stream client disconnected; provider calls cancelled", extra={"task_type": req.task_type})
                return response
            try:
                work.result()
                outcome.status = 200
            except ApiError as exc:
                outcome.status, outcome.code = exc.status, exc.code
                with contextlib.suppress(ConnectionError):
                    await send(
                        "error",
                        {
                            **exc.extra,
                            "error": {"code": exc.code, "message": exc.message, "field": exc.field},
                            "status": exc.status,
                        },
                    )
        finally:
            for task in (work, beats, watcher):
                task.cancel()
            await asyncio.gather(work, beats, watcher, return_exceptions=True)
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
        return response


async def _watch_disconnect(request: web.Request, limit_s: float) -> None:
    """Returns when the client's connection closes (bounded by ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.05)
    await asyncio.sleep(3600)  # never "disconnected" by the time limit itself


async def healthz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(
        {"status": "ok", "variant": settings.variant, "providers": request.app[POOL].names, "problems": []}
    )


async def readyz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    names = request.app[POOL].names
    problems = []
    if len(names) < 2:
        problems.append(f"at least two providers must be configured (API key set); configured: {names or 'none'}")
    return web.json_response(
        {
            "status": "not ready" if problems else "ok",
            "variant": settings.variant,
            "providers": names,
            "problems": problems,
        },
        status=503 if problems else 200,
    )


async def metrics_handler(request: web.Request) -> web.Response:
    return web.Response(body=request.app[METRICS].render(), headers={"Content-Type": CONTENT_TYPE})


async def openapi_handler(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])
