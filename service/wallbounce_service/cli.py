"""``wallbounce-service``: start the service from environment configuration (``--host``, ``--port``, default 4000)."""

from __future__ import annotations

import argparse
import logging

import uvloop
from aiohttp import web
from pydantic import ValidationError

from .app import create_app
from .config import Settings
from .redact import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wallbounce-service", description="Run the wall-bounce service.")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")  # noqa: S104
    parser.add_argument("--port", type=int, default=4000, help="port to listen on (default 4000)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except (ValidationError, ValueError, OSError) as exc:
        configure_logging("text")
        logging.getLogger("wallbounce").error("invalid configuration: %s", exc)
        return 2
    configure_logging(settings.log_format, settings.log_level)
    web.run_app(
        create_app(settings),
        host=args.host,
        port=args.port,
        print=None,
        handler_cancellation=True,
        shutdown_timeout=10,
        loop=uvloop.new_event_loop(),  # libuv's loop: less CPU per request than asyncio's own
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
