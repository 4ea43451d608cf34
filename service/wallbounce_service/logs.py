"""Log lines: one JSON object per line (or readable text on a terminal), every string redacted on the way out.

``configure_logging`` installs the one handler of the service on the root logger. Nothing logs prompt text unless
``log_prompts`` is set (a debug flag), and then only a redacted preview.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from .redact import redact, redact_value

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime", "taskName"}
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extra fields, all redacted."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(redact_value(payload), ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Readable terminal lines, redacted too."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


#: loggers of the SDKs and HTTP clients: at DEBUG they print whole request bodies, prompts included
SDK_LOGGERS = ("openai", "anthropic", "google_genai", "google.genai", "httpx", "httpcore", "aiohttp.client")


def configure_logging(
    fmt: str = "json", level: str = "INFO", stream: Any = None, log_prompts: bool = False
) -> logging.Handler:
    """Installs one redacting handler on the root logger (replacing earlier ones of ours) and returns it.

    The SDKs' loggers stay at WARNING or above unless ``log_prompts``: their DEBUG lines carry the prompts."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(message)s"))
    handler.set_name("wallbounce")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "wallbounce":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(root.level if log_prompts else max(root.level, logging.WARNING))
    return handler
