"""Request helpers shared by the vendors' wire formats: credentials, JSON bodies, message content as text."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    return auth[7:].strip() or None if auth.lower().startswith("bearer ") else None


async def read_json(request: web.Request) -> dict[str, Any] | None:
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(content_text(c) for c in content)
    if isinstance(content, dict):
        return str(content.get("text") or content_text(content.get("content")) or "")
    return ""
