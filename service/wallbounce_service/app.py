"""The aiohttp application: routes, the two middlewares, resources in ``cleanup_ctx``, and thin handlers.

``create_app(settings)`` builds the app; its cleanup context opens Redis (when ``REDIS_URL`` is set), the session
store, the cache and limit stores, the provider SDK clients (those whose key is set), the core (``core.WallBounce``
behind the caches) and the API-key watcher, and closes them on shutdown. A generate handler authenticates the key,
admits the request (process and tenant caps), checks the tenant's rate, reads the body within its limits, reserves
tokens and budget, asks the core, and settles what was used — whatever way the request ends.

Open without a key: ``/healthz``, ``/readyz``, ``/metrics`` and ``/api/v1/openapi.json`` (the probes and the scrape
reach them on the service port; keep them off the public route).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from .api import VARIANT_HEADER, openapi_document
from .auth import KeyStore, authorize
from .body import read_generate_request
from .cache import Backend, MemoryBackend, RedisBackend
from .caching import build_consultant
from .config import Settings
from .consult import Panel
from .core import AnswerRequest, WallBounce
from .errors import DomainError
from .limits import Admission, Limiter, LimitStore, MemoryLimitStore, RedisLimitStore
from .metrics import CONTENT_TYPE, Metrics
from .middleware import (
    CANCELLED,
    error_body,
    make_accounting_middleware,
    make_error_middleware,
    record_of,
    status_of,
)
from .providers import build_clients
from .providers.base import ErrorKind, ProviderClient
from .providers.router import ProviderPool
from .selection import CallPlan, estimate_tokens
from .sessions import MemorySessionStore, RedisSessionStore, SessionStore
from .similarity import SimilarIndex
from .upstream import ProviderResultCache

log = logging.getLogger("wallbounce.app")

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
KEYS = web.AppKey("keys", KeyStore)
ADMISSION = web.AppKey("admission", Admission)
POOL = web.AppKey("pool", ProviderPool)
LIMITER = web.AppKey("limiter", Limiter)
CORE = web.AppKey("core", WallBounce)
ClientFactory = Callable[[], Mapping[str, ProviderClient]]
CLIENT_FACTORY: web.AppKey[ClientFactory] = web.AppKey("client_factory")
OPENAPI = web.AppKey("openapi", dict)


def create_app(
    settings: Settings | None = None,
    client_factory: Callable[[], Mapping[str, ProviderClient]] | None = None,
) -> web.Application:
    """The service. ``client_factory`` (tests, benchmarks) replaces the SDK clients built from the environment."""
    settings = settings or Settings()
    metrics = Metrics(settings.variant, settings.revision)
    middlewares = [make_accounting_middleware(metrics, settings.log_prompts), make_error_middleware(settings.variant)]
    app = web.Application(middlewares=middlewares, client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[KEYS] = KeyStore(settings.auth)
    app[KEYS].load()
    app[ADMISSION] = Admission(settings.limits)
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


def server_options(settings: Settings) -> dict[str, Any]:
    """aiohttp server options: header limits, idle timeout (which also bounds a connection that never sends a
    complete request), and cancellation of a handler whose client went away."""
    return {
        "handler_cancellation": True,
        "keepalive_timeout": settings.limits.keepalive_timeout_s,
        "max_line_size": settings.limits.max_line_size,
        "max_field_size": settings.limits.max_field_size,
        "max_headers": settings.limits.max_headers,
    }


async def _resources(app: web.Application) -> AsyncIterator[None]:
    settings, metrics = app[SETTINGS], app[METRICS]
    redis = None
    if settings.redis_url:
        import redis.asyncio as aioredis

        redis = aioredis.from_url(settings.redis_url)
        await redis.ping()
    sess = settings.sessions
    sessions: SessionStore = (
        RedisSessionStore(redis, sess.ttl_s, sess.max_turns)
        if redis is not None
        else MemorySessionStore(sess.ttl_s, sess.max_turns, sess.max_sessions, sess.max_bytes)
    )
    cache = settings.cache
    backend: Backend = (
        RedisBackend(redis, max_value_bytes=cache.max_value_bytes)
        if redis is not None
        else MemoryBackend(cache.max_entries, cache.max_bytes)
    )
    store: LimitStore = RedisLimitStore(redis) if redis is not None else MemoryLimitStore()
    app[LIMITER] = Limiter(store)
    pool = ProviderPool(
        app[CLIENT_FACTORY](), settings.providers, settings.prices, settings.retry, settings.cooldown, metrics
    )
    metrics.prime_providers(pool.names, ["success", "cancelled", *(str(kind) for kind in ErrorKind)])
    app[POOL] = pool
    provider_cache = (
        ProviderResultCache(backend, cache.ttl_s, metrics) if cache.enabled and cache.provider_results else None
    )
    panel = Panel(settings, pool, asyncio.Semaphore(settings.limits.max_upstream), provider_cache)
    consultant = build_consultant(panel, backend, settings, metrics, SimilarIndex(cache.max_bytes))
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="wallbounce-scan")
    app[CORE] = WallBounce(settings, consultant, sessions, metrics, executor)
    watcher = asyncio.create_task(app[KEYS].watch(), name="api-keys-watcher")
    # the modules, SDK clients and settings live as long as the process: out of every later collection (a full
    # collection walks every tracked object: ~0.25 s on the development machine, with the loop blocked)
    gc.collect()
    gc.freeze()
    log.info(
        "service ready",
        extra={
            "variant": settings.variant,
            "revision": settings.revision,
            "providers": pool.names,
            "redis": redis is not None,
            "price_table": settings.price_table_version,
            "auth_required": settings.auth.required,
        },
    )
    try:
        yield
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await pool.close()
        executor.shutdown(wait=False, cancel_futures=True)
        if redis is not None:
            await redis.aclose()


@contextlib.asynccontextmanager
async def _serving(request: web.Request) -> AsyncIterator[AnswerRequest]:
    """Key, admission, rate, body, access, reservation — then the request is the core's; settled on the way out."""
    app, rec = request.app, record_of(request)
    settings, limiter = app[SETTINGS], app[LIMITER]
    principal = app[KEYS].authenticate(request.headers)
    rec.tenant, rec.key_id = principal.tenant, principal.key_id
    with app[ADMISSION].admit(principal):
        await limiter.check_request(principal)
        req = await read_generate_request(request, settings)
        rec.task_type, rec.mode, rec.prompt = req.task_type, req.mode, req.prompt
        rec.user_hash = hashlib.sha256(req.user_id.encode()).hexdigest()[:12] if req.user_id else None
        authorize(principal, req.task_type)
        budget = min(req.budget_usd or math.inf, principal.limits.max_request_usd)
        held = await limiter.reserve(principal, _token_estimate(req.prompt, req.task_type, req.mode, req.depth,
                                                                settings), budget)
        try:
            yield AnswerRequest(
                tenant=principal.tenant,
                prompt=req.prompt,
                task_type=req.task_type,
                mode=req.mode,
                depth=req.depth,
                user_id=req.user_id,
                session_id=req.session_id,
                new_session=req.new_session,
                budget_usd=budget,
                meter=rec.meter,
                started=rec.start,
            )
        finally:
            await limiter.settle(principal, held, rec.meter.tokens, rec.meter.cost_usd)


def _token_estimate(prompt: str, task_type: str, mode: str, depth: int, settings: Settings) -> int:
    """Provider tokens a request may use: every call each selected provider may make (``selection.CallPlan``)."""
    providers = len(set(settings.selection.get(task_type, ()))) or 2
    plan = CallPlan.of(settings, task_type, mode, depth)
    return providers * plan.tokens(estimate_tokens(prompt), settings.expected_output_tokens)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def generate(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    async with _serving(request) as ask:
        body = await request.app[CORE].answer(ask)
    record_of(request).cached = bool(body["cached"])
    return web.json_response(body, headers={VARIANT_HEADER: settings.variant}, dumps=_dumps)


async def generate_stream(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events; errors before the stream starts are plain JSON errors, after it an ``error`` event."""
    settings, rec = request.app[SETTINGS], record_of(request)
    async with _serving(request) as ask:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", VARIANT_HEADER: settings.variant}
        )
        await response.prepare(request)
        lock = asyncio.Lock()

        async def send(event: str, data: dict[str, Any]) -> None:
            async with lock:
                await response.write(f"event: {event}\ndata: {_dumps(data)}\n\n".encode())

        async def heartbeat() -> None:
            for _ in range(int(settings.request_deadline_s / settings.heartbeat_s) + 2):
                await asyncio.sleep(settings.heartbeat_s)
                async with lock:
                    await response.write(b": heartbeat\n\n")

        work = asyncio.create_task(request.app[CORE].answer(ask, send))
        side = [asyncio.create_task(heartbeat()), asyncio.create_task(_watch_disconnect(request))]
        try:
            await asyncio.wait({work, *side}, return_when=asyncio.FIRST_COMPLETED)
            rec.status = await _stream_outcome(work, send, rec)
        finally:
            for task in (work, *side):
                task.cancel()
            await asyncio.gather(work, *side, return_exceptions=True)
    if rec.status != CANCELLED:
        with contextlib.suppress(ConnectionError):
            await response.write_eof()
    return response


async def _stream_outcome(work: asyncio.Task[dict[str, Any]], send: Any, rec: Any) -> int:
    """The status the stream stands for: 200, the error's (sent as an ``error`` event), or ``CANCELLED``."""
    if not work.done():
        # the client went away (watcher) or a heartbeat could not be written: cancel the provider calls
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError, DomainError, ConnectionError):
            await work
        log.info("stream client disconnected; provider calls cancelled")
        return CANCELLED
    exc = work.exception()
    if exc is None:
        return 200
    if not isinstance(exc, DomainError):
        raise exc
    status = status_of(exc)
    rec.code = exc.code
    try:
        await send("error", error_body(exc, status))
    except ConnectionError:
        return CANCELLED
    return status


async def _watch_disconnect(request: web.Request) -> None:
    """Returns when the client's connection closes."""
    while True:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(0.05)


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
    if request.app[KEYS].problem:
        problems.append(str(request.app[KEYS].problem))
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
