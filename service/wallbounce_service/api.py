"""HTTP schemas of the service (pydantic) and the OpenAPI 3.1 document built from them.

The response keeps the original TechSapo field names (``response``, ``confidence``, ``reasoning``,
``wall_bounce_analysis.llm_votes``…) and adds the honest scores (``agreement``, ``coherence``, ``relevance``), the
``variant`` that served it and ``srp_processed``. Errors are ``{"error": {"code", "message", "field"}}``; a 422 for
low consensus also carries the whole result next to the error.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import models_json_schema

VARIANT_HEADER = "X-Wallbounce-Variant"
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


class GenerateRequest(BaseModel):
    """Strict: a JSON string is no number and ``true`` is no depth (what the OpenAPI schema says, exactly)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    prompt: str = Field(
        min_length=1,
        description="The question; not blank (length limit: see maxLength).",
        json_schema_extra={"pattern": r"\S"},
    )
    task_type: Literal["basic", "premium", "critical"] = "basic"
    mode: Literal["parallel", "sequential"] = "parallel"
    depth: int = Field(
        default=3, ge=1, le=5, description="Bounce (review) rounds after the first proposal, in sequential mode."
    )
    session_id: str | None = Field(
        default=None,
        description="A session minted by the service (new_session) for this key's tenant and this user_id.",
        json_schema_extra={"pattern": ID_PATTERN},
    )
    new_session: bool = Field(default=False, description="Start a session; its id comes back in session_id.")
    user_id: str | None = Field(default=None, json_schema_extra={"pattern": ID_PATTERN})
    budget_usd: float | None = Field(
        default=None, gt=0, le=1000, description="Cap on the estimated cost (never above the tenant's own cap)."
    )

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain a non-whitespace character")
        return value

    @field_validator("depth", mode="before")
    @classmethod
    def _integral(cls, value: Any) -> Any:
        # JSON Schema's "integer" includes 3.0; a string or a boolean stays refused
        return int(value) if isinstance(value, float) and value.is_integer() else value

    @field_validator("session_id", "user_id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        # Python's re.search: the same semantics a JSON Schema validator gives the documented pattern
        if value is not None and not re.search(ID_PATTERN, value):
            raise ValueError(f"must match {ID_PATTERN}")
        return value


class LlmVote(BaseModel):
    provider: str
    model: str
    agreement_score: float = Field(ge=0, le=1)
    latency_ms: float = Field(ge=0)
    input_tokens: int = Field(ge=0)
    output_tokens: int = Field(ge=0)
    cost_usd: float = Field(ge=0)
    error: str | None = None
    round: int = Field(default=1, ge=1)
    verdict: Literal["agree", "partially", "disagree"] | None = None


class WallBounceAnalysis(BaseModel):
    providers_used: list[str]
    llm_votes: list[LlmVote]
    rounds: int = Field(ge=0)
    total_cost: float = Field(ge=0)
    processing_time_ms: float = Field(ge=0)
    degraded: bool = Field(description="True when a selected provider failed and another one stood in.")


class GenerateResponse(BaseModel):
    response: str
    confidence: float = Field(ge=0, le=1)
    reasoning: str
    session_id: str | None
    task_type: Literal["basic", "premium", "critical"]
    wall_bounce_analysis: WallBounceAnalysis
    agreement: float = Field(ge=0, le=1)
    coherence: float = Field(ge=0, le=1)
    relevance: float = Field(ge=0, le=1)
    variant: Literal["stable", "canary"]
    srp_processed: bool
    cached: bool
    timestamp: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class LowConsensusResponse(GenerateResponse):
    """422: the consensus stayed below the task's minimum confidence; the answer and its scores are included."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok", "not ready"]
    variant: Literal["stable", "canary"]
    providers: list[str]
    problems: list[str] = Field(default_factory=list)


SSE_EVENTS = ["thinking", "provider_response", "consensus", "final_answer", "error"]
#: one event of the stream (comment lines, the heartbeats, carry no event); ``data`` is a JSON document
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": SSE_EVENTS},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "required": ["event", "data"],
}


def _error(description: str, retry_after: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    if retry_after:
        response["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    return response


def _votes_error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VotesErrorResponse"}}},
    }


def _generate_errors(max_body_bytes: int) -> dict[str, Any]:
    return {
        "400": _error("Malformed, too deep or oversized JSON, an invalid field (named in error.field), or "
                      "(configured so) a prompt holding secrets."),
        "401": _error("No API key, or an unknown or disabled one."),
        "403": _error("The key's tenant may not use this task type."),
        "404": _error("session_id names no session of this tenant and user (unknown, expired or another's)."),
        "408": _error("The body did not arrive within the body-read timeout."),
        "413": _error(f"The body is larger than {max_body_bytes} bytes."),
        "415": _error("The content type is not application/json."),
        "422": {
            "description": "The consensus stayed below the task's minimum confidence (result included), "
            "the budget is below the cheapest pair of providers, or every provider refused the input.",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/LowConsensusResponse"},
                            {"$ref": "#/components/schemas/VotesErrorResponse"},
                        ]
                    }
                }
            },
        },
        "429": _error("The tenant's request rate, token rate, daily budget or concurrency is used up.", True),
        "503": _votes_error("The service is at its cap of requests in flight (Retry-After), or fewer than two "
                            "providers answered or are available; no answer is fabricated."),
        "504": _votes_error("The request deadline passed; the votes that did arrive are listed."),
    }


def _operation(operation_id: str, ok: dict[str, Any], errors: dict[str, Any], description: str = "") -> dict[str, Any]:
    json_body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GenerateRequest"}}},
    }
    op: dict[str, Any] = {
        "operationId": operation_id,
        "security": [{"apiKey": []}],
        "requestBody": json_body,
        "responses": {"200": ok, **errors},
    }
    if description:
        op["description"] = description
    return {"post": op}


def _open_get(operation_id: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"operationId": operation_id, "security": [], "responses": responses}}


def _schemas(max_prompt_chars: int) -> dict[str, Any]:
    _, defs = models_json_schema(
        [
            (m, "validation" if m is GenerateRequest else "serialization")
            for m in (GenerateRequest, GenerateResponse, LowConsensusResponse, ErrorResponse, Health)
        ],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = defs.get("$defs", {})
    schemas["GenerateRequest"]["properties"]["prompt"]["maxLength"] = max_prompt_chars
    schemas["VotesErrorResponse"] = {
        "type": "object",
        "properties": {
            "error": {"$ref": "#/components/schemas/ErrorDetail"},
            "llm_votes": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["error"],
    }
    return schemas


def openapi_document(max_prompt_chars: int, max_body_bytes: int) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the running service (limits filled in from its configuration)."""
    variant_header = {VARIANT_HEADER: {"schema": {"type": "string", "enum": ["stable", "canary"]}}}
    errors = _generate_errors(max_body_bytes)
    health = {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wall-bounce service",
            "version": "1.0.0",
            "description": "Multi-provider LLM consensus with honest, computed quality scores.",
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/api/v1/generate": _operation(
                "generate",
                {
                    "description": "The consensus answer.",
                    "headers": variant_header,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GenerateResponse"}}},
                },
                errors,
            ),
            "/api/v1/generate/stream": _operation(
                "generateStream",
                {
                    "description": "An event stream.",
                    "headers": variant_header,
                    "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
                },
                {k: v for k, v in errors.items() if k not in ("422", "504")},
                "Server-Sent Events: thinking, provider_response, consensus, final_answer, error; comment lines as "
                "heartbeats. A client that disconnects cancels the provider calls.",
            ),
            "/healthz": _open_get("healthz", {"200": {"description": "Alive.", "content": health}}),
            "/readyz": _open_get(
                "readyz",
                {
                    "200": {"description": "Two providers configured and the API keys loaded.", "content": health},
                    "503": {"description": "Not ready; problems listed.", "content": health},
                },
            ),
            "/metrics": _open_get(
                "metrics",
                {"200": {"description": "Prometheus text exposition.",
                         "content": {"text/plain": {"schema": {"type": "string"}}}}},
            ),
            "/api/v1/openapi.json": _open_get(
                "openapi",
                {"200": {"description": "This document.",
                         "content": {"application/json": {"schema": {"type": "object"}}}}},
            ),
        },
        "components": {
            "schemas": _schemas(max_prompt_chars),
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "An API key."}},
        },
    }
