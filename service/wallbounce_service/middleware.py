"""The two middlewares: domain errors to HTTP (the only place that does it), and the accounting of each request.

``error_middleware`` (inner) turns every ``DomainError`` into its status and ``{"error": {code, message, field}}``
body (plus ``Retry-After`` for refusals), aiohttp's own HTTP errors into the same JSON, and anything unexpected into
a logged 500. ``accounting_middleware`` (outer) counts each generate request once, with its outcome:

| outcome | status |
|---|---|
| ``success`` | 2xx |
| ``low_consensus`` | 422 ``low_consensus`` (the confidence gate) |
| ``rejected`` | 401, 403, 429, and 503 ``overloaded`` (refused before any work: auth, rate limit, overload) |
| ``client_error`` | every other 4xx (bad input, unknown session, refused secret, budget below every pair…) |
| ``cancelled`` | the client went away before the answer (never an error) |
| ``error`` | 5xx: the service's fault (or its providers') — 500, 503 ``not_enough_providers``/
  ``providers_unavailable``, 504 |

and writes one audit line per request (tenant, key id, task type, providers called, tokens, cost, outcome,
latency — never content; a redacted prompt preview only with ``log_prompts``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import errors as e
from .api import VARIANT_HEADER
from .metrics import OUTCOMES, Metrics
from .redact import redact
from .upstream import Meter

log = logging.getLogger("wallbounce.app")
audit_log = logging.getLogger("wallbounce.audit")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: domain error → HTTP status (subclasses before their bases)
STATUS: tuple[tuple[type[e.DomainError], int], ...] = (
    (e.Unauthenticated, 401),
    (e.Forbidden, 403),
    (e.RateLimited, 429),
    (e.Overloaded, 503),
    (e.UnknownSession, 404),
    (e.UnsupportedMediaType, 415),
    (e.PayloadTooLarge, 413),
    (e.BodyTimeout, 408),
    (e.BudgetTooLow, 422),
    (e.ProvidersRefusedInput, 422),
    (e.LowConsensus, 422),
    (e.InvalidRequest, 400),
    (e.ProvidersUnavailable, 503),
    (e.NotEnoughProviders, 503),
    (e.DeadlineExceeded, 504),
)
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_timeout",
    413: "payload_too_large",
    415: "unsupported_media_type",
}
GENERATE_PATHS = frozenset({"/api/v1/generate", "/api/v1/generate/stream"})
CANCELLED = 499  # nginx's "client closed request": the status recorded (never sent) for a client that went away


@dataclass
class RequestRecord:
    """What the audit line and the metrics say about one request; the handler fills it in as it learns."""

    start: float = field(default_factory=time.monotonic)
    tenant: str | None = None
    key_id: str | None = None
    task_type: str = "unknown"
    mode: str | None = None
    user_hash: str | None = None
    status: int | None = None
    code: str | None = None
    cached: bool | None = None
    prompt: str | None = None
    meter: Meter = field(default_factory=Meter)


RECORD = web.RequestKey("wallbounce_record", RequestRecord)


def record_of(request: web.Request) -> RequestRecord:
    rec = request.get(RECORD)
    if rec is None:
        rec = RequestRecord()
        request[RECORD] = rec
    return rec


def status_of(exc: e.DomainError) -> int:
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return 500


def outcome_of(status: int, code: str | None) -> str:
    if status == CANCELLED:
        return "cancelled"
    if status < 400:
        return "success"
    if code == e.LowConsensus.code:
        return "low_consensus"
    if status in (401, 403, 429) or (status == 503 and code == e.Overloaded.code):
        return "rejected"
    return "client_error" if status < 500 else "error"


def error_body(exc: e.DomainError, status: int) -> dict[str, Any]:
    return {**exc.extra, "error": {"code": exc.code, "message": exc.message, "field": exc.field}, "status": status}


def error_response(exc: e.DomainError, variant: str) -> web.Response:
    status = status_of(exc)
    body = error_body(exc, status)
    body.pop("status")
    headers = {VARIANT_HEADER: variant}
    if exc.retry_after_s is not None:
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    return web.json_response(
        body, status=status, headers=headers, dumps=lambda v: json.dumps(v, ensure_ascii=False)
    )


def make_error_middleware(variant: str) -> Any:
    @web.middleware
    async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every error leaves as JSON; unexpected exceptions are logged (redacted) and become a 500."""
        rec = record_of(request)
        try:
            response = await handler(request)
        except e.DomainError as exc:
            rec.code = exc.code
            return error_response(exc, variant)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = _HTTP_CODES.get(exc.status, "http_error")
            rec.code = code
            resp = error_response(e.DomainError(exc.reason or code, code=code), variant)
            resp.set_status(exc.status)
            if exc.status == 405 and "Allow" in exc.headers:
                resp.headers["Allow"] = exc.headers["Allow"]
            return resp
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("unhandled error", extra={"path": request.path})
            rec.code = "internal"
            return error_response(e.DomainError("internal error", code="internal"), variant)
        if not response.prepared:
            response.headers.setdefault(VARIANT_HEADER, variant)
        return response

    return error_middleware


def make_accounting_middleware(metrics: Metrics, log_prompts: bool) -> Any:
    gauge = metrics.inflight.labels(metrics.variant, metrics.revision)

    @web.middleware
    async def accounting_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in GENERATE_PATHS:
            return await handler(request)
        rec = record_of(request)
        gauge.inc()
        status = 500
        try:
            response = await handler(request)
            status = rec.status or response.status
            return response
        except asyncio.CancelledError:
            status = CANCELLED
            raise
        finally:
            gauge.dec()
            if rec.status == CANCELLED:
                status = CANCELLED
            outcome = outcome_of(status, rec.code)
            assert outcome in OUTCOMES
            metrics.request(rec.task_type, outcome, time.monotonic() - rec.start)
            _audit(request, rec, status, outcome, log_prompts)

    return accounting_middleware


def _audit(request: web.Request, rec: RequestRecord, status: int, outcome: str, log_prompts: bool) -> None:
    line: dict[str, Any] = {
        "endpoint": request.path,
        "status": status,
        "outcome": outcome,
        "code": rec.code,
        "tenant": rec.tenant,
        "key_id": rec.key_id,
        "user": rec.user_hash,
        "task_type": rec.task_type,
        "mode": rec.mode,
        "providers": rec.meter.calls,
        "input_tokens": rec.meter.input_tokens,
        "output_tokens": rec.meter.output_tokens,
        "cost_usd": round(rec.meter.cost_usd, 8),
        "cached": rec.cached,
        "ms": round((time.monotonic() - rec.start) * 1000, 2),
    }
    if log_prompts and rec.prompt is not None:
        line["prompt_preview"] = redact(rec.prompt[:200])
    audit_log.info("request", extra=line)
