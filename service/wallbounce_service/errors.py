"""Domain errors of the service: what went wrong, in the service's words, with no HTTP in them.

The core (``core.WallBounce``), the request reader, the key store and the limiters raise these; one middleware
(``middleware.error_middleware``) turns each into an HTTP status and JSON body, and the metrics outcome follows from
that mapping. ``field`` names the request field at fault, when there is one; ``retry_after_s`` says when a refused
request may be tried again; ``extra`` carries body fields that belong to the answer (the low-consensus result, the
votes that arrived before a deadline).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the service reports to its client."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: str | None = None,
        retry_after_s: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        self.retry_after_s = retry_after_s
        self.extra = extra or {}


# --- the client's problem ---------------------------------------------------------------------------------------


class InvalidRequest(DomainError):
    """The request cannot be served as sent (malformed, invalid field, unknown session, secret refused…)."""

    code = "invalid_field"


class UnknownSession(DomainError):
    """A session id that this tenant and user do not own (never minted, expired, or someone else's)."""

    code = "unknown_session"


class UnsupportedMediaType(DomainError):
    code = "unsupported_media_type"


class PayloadTooLarge(DomainError):
    code = "payload_too_large"


class BodyTimeout(DomainError):
    """The body did not arrive within the body-read timeout."""

    code = "body_timeout"


class BudgetTooLow(DomainError):
    """The per-request budget is below the cheapest pair of providers."""

    code = "budget_too_low"


class ProvidersRefusedInput(DomainError):
    """Every provider refused the input itself (a 4xx other than auth or rate limit): the client's problem."""

    code = "refused_by_providers"


# --- refusals: who may ask, how much, how many at once ----------------------------------------------------------


class Unauthenticated(DomainError):
    code = "unauthenticated"


class Forbidden(DomainError):
    code = "forbidden"


class RateLimited(DomainError):
    """A tenant's request rate, token rate, spend budget or concurrency is used up."""

    code = "rate_limited"


class Overloaded(DomainError):
    """The process is at its cap of requests in flight."""

    code = "overloaded"


# --- an answer that is not good enough ----------------------------------------------------------------------------


class LowConsensus(DomainError):
    """The consensus stayed below the task's minimum confidence; ``extra`` holds the whole result."""

    code = "low_consensus"

    def __init__(self, message: str, confidence: float, body: dict[str, Any]) -> None:
        super().__init__(message, field="confidence", extra=body)
        self.confidence = confidence


# --- the service's fault (or its providers') ----------------------------------------------------------------------


class ProvidersUnavailable(DomainError):
    code = "providers_unavailable"


class NotEnoughProviders(DomainError):
    code = "not_enough_providers"


class DeadlineExceeded(DomainError):
    code = "deadline_exceeded"
