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
    model_config = ConfigDict(extra="forbid")

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
    session_id: str | None = Field(default=None, json_schema_extra={"pattern": ID_PATTERN})
    user_id: str | None = Field(default=None, json_schema_extra={"pattern": ID_PATTERN})
    budget_usd: float | None = Field(default=None, gt=0, le=1000, description="Cap on the estimated cost.")

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must contain a non-whitespace character")
        return value

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


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }


def openapi_document(max_prompt_chars: int, max_body_bytes: int) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the running service (limits filled in from its configuration)."""
    _, defs = models_json_schema(
        [
            (m, "validation" if m is GenerateRequest else "serialization")
            for m in (GenerateRequest, GenerateResponse, LowConsensusResponse, ErrorResponse, Health)
        ],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = defs.get("$defs", {})
    schemas["GenerateRequest"]["properties"]["prompt"]["maxLength"] = max_prompt_chars
    json_body = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/GenerateRequest"}}},
    }
    generate_errors = {
        "400": _error("Malformed JSON or an invalid field (named in error.field)."),
        "413": _error(f"The body is larger than {max_body_bytes} bytes."),
        "415": _error("The content type is not application/json."),
        "422": {
            "description": "The consensus stayed below the task's minimum confidence (result included), "
            "or the budget is below the cheapest pair of providers.",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/LowConsensusResponse"},
                            {"$ref": "#/components/schemas/ErrorResponse"},
                        ]
                    }
                }
            },
        },
        "503": _error("Fewer than two providers answered; no answer is fabricated."),
        "504": _error("The request deadline passed."),
    }
    variant_header = {VARIANT_HEADER: {"schema": {"type": "string", "enum": ["stable", "canary"]}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "wall-bounce service",
            "version": "1.0.0",
            "description": "Multi-provider LLM consensus with honest, computed quality scores.",
        },
        "paths": {
            "/api/v1/generate": {
                "post": {
                    "operationId": "generate",
                    "requestBody": json_body,
                    "responses": {
                        "200": {
                            "description": "The consensus answer.",
                            "headers": variant_header,
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/GenerateResponse"}}
                            },
                        },
                        **generate_errors,
                    },
                }
            },
            "/api/v1/generate/stream": {
                "post": {
                    "operationId": "generateStream",
                    "description": "Server-Sent Events: thinking, provider_response, consensus, final_answer, error; "
                    "comment lines as heartbeats. A client that disconnects cancels the provider calls.",
                    "requestBody": json_body,
                    "responses": {
                        "200": {
                            "description": "An event stream.",
                            "headers": variant_header,
                            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
                        },
                        "400": generate_errors["400"],
                        "413": generate_errors["413"],
                        "415": generate_errors["415"],
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "responses": {
                        "200": {
                            "description": "Alive.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                        }
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "responses": {
                        "200": {
                            "description": "Configuration valid and at least two providers configured.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                        },
                        "503": {
                            "description": "Not ready; problems listed.",
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}},
                        },
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "responses": {
                        "200": {
                            "description": "This document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {"schemas": schemas},
    }
