"""Blocking JSON over HTTP to the stack's own loopback servers (simulators, exporter, services, Gateway):
what the driver, the components, the benchmarks and the demo use to talk to them."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def http_json(url: str, body: Any = None, *, method: str | None = None, timeout: float = 5.0,
              headers: dict[str, str] | None = None) -> Any:
    """``body`` as JSON (POST unless ``method`` says otherwise; GET without a body); the answer's JSON, or None
    for an empty one. HTTP errors raise ``urllib.error.HTTPError``."""
    data = json.dumps(body).encode() if body is not None else None
    verb = method or ("POST" if data is not None else "GET")
    req = urllib.request.Request(url, data=data, method=verb,  # noqa: S310 - loopback URLs we built
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        return json.loads(resp.read() or b"null")
