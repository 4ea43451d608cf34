"""Reading a generate request off the wire, with every limit a hostile client could push on.

In order: the content type (415), the declared length (413), the body itself within ``body_read_timeout_s``
(408 ``body_timeout``) and ``max_body_bytes`` (413), JSON that is well-formed (400 ``malformed_json``), not nested
deeper than ``max_json_depth`` (400 ``json_too_deep``; deeper than the parser's recursion limit is caught too), with
no number longer than ``max_number_chars`` (400 ``number_too_long``; Python would refuse 4,300 digits with a 500), no
``NaN``/``Infinity``, an object of at most ``MAX_FIELDS`` fields, then the schema (400 ``invalid_field`` naming the
field). Lone surrogates in the prompt are replaced, so that no later encoding can fail.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pydantic
from aiohttp import web

from .api import GenerateRequest
from .config import Settings
from .errors import BodyTimeout, InvalidRequest, PayloadTooLarge, UnsupportedMediaType

MAX_FIELDS = 32


async def read_generate_request(request: web.Request, settings: Settings) -> GenerateRequest:
    data = parse_json(await read_body(request, settings), settings)
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object", code="invalid_body")
    if len(data) > MAX_FIELDS:
        raise InvalidRequest(f"the body has {len(data)} fields; at most {MAX_FIELDS} are read", code="invalid_body")
    prompt = data.get("prompt")
    if isinstance(prompt, str):
        try:
            prompt.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates (valid JSON escapes) cannot be encoded: replace them
            data["prompt"] = prompt.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    try:
        req = GenerateRequest.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        raise InvalidRequest(f"{field}: {first['msg']}", field=field) from exc
    if len(req.prompt) > settings.max_prompt_chars:
        raise InvalidRequest(f"prompt: longer than {settings.max_prompt_chars} characters", field="prompt")
    return req


async def read_body(request: web.Request, settings: Settings) -> bytes:
    limit = settings.max_body_bytes
    if request.content_type != "application/json":
        raise UnsupportedMediaType("the body must be application/json")
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    try:
        async with asyncio.timeout(settings.limits.body_read_timeout_s):
            return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes") from exc
    except TimeoutError as exc:
        raise BodyTimeout(
            f"the body did not arrive within {settings.limits.body_read_timeout_s:g} s"
        ) from exc


def parse_json(raw: bytes, settings: Settings) -> Any:
    max_digits = settings.limits.max_number_chars

    def number(text: str, kind: type[int] | type[float]) -> int | float:
        if len(text) > max_digits:
            raise InvalidRequest(
                f"a number in the body has {len(text)} characters; at most {max_digits} are accepted",
                code="number_too_long",
            )
        return kind(text)

    def constant(name: str) -> Any:
        raise InvalidRequest(f"the body is not valid JSON: {name} is not a JSON value", code="malformed_json")

    try:
        data = json.loads(
            raw,
            parse_int=lambda t: number(t, int),
            parse_float=lambda t: number(t, float),
            parse_constant=constant,
        )
    except RecursionError as exc:
        raise _too_deep(settings) from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequest(
            f"the body is not valid JSON: {exc.msg if isinstance(exc, json.JSONDecodeError) else 'not UTF-8'}",
            code="malformed_json",
        ) from exc
    if _depth(data) > settings.limits.max_json_depth:
        raise _too_deep(settings)
    return data


def _too_deep(settings: Settings) -> InvalidRequest:
    return InvalidRequest(
        f"the body is nested deeper than {settings.limits.max_json_depth} levels", code="json_too_deep"
    )


def _depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value, without recursion (an explicit stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest
