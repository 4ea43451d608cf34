"""``wallbounce-service``: start the service from environment configuration (``--host``, ``--port``, default 4000);
``wallbounce-service keygen --tenant T --id I`` prints a new API key and the keys-file entry that holds its hash."""

from __future__ import annotations

import argparse
import logging

import uvloop
import yaml
from aiohttp import web
from pydantic import ValidationError

from .app import create_app, server_options
from .auth import hash_key, new_key
from .config import Settings
from .logs import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wallbounce-service", description="Run the wall-bounce service.")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default 0.0.0.0)")  # noqa: S104
    parser.add_argument("--port", type=int, default=4000, help="port to listen on (default 4000)")
    return parser


def build_keygen_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wallbounce service keygen",
        description="Print a new API key (give it to the client) and the keys-file entry with its SHA-256 (put it "
        "in the keys file; the key itself need not be stored anywhere else).",
    )
    parser.add_argument("--tenant", required=True, help="the tenant the key belongs to")
    parser.add_argument("--id", required=True, help="the key's id, shown in audit lines")
    return parser


def keygen(argv: list[str]) -> int:
    args = build_keygen_parser().parse_args(argv)
    key = new_key()
    entry = yaml.safe_dump([{"id": args.id, "tenant": args.tenant, "sha256": hash_key(key)}], sort_keys=False)
    print(f"key: {key}")
    print("keys-file entry (under 'keys:'):")
    print(entry.rstrip())
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv and argv[0] == "keygen":
        return keygen(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except (ValidationError, ValueError, TypeError, OSError) as exc:
        configure_logging("text")
        logging.getLogger("wallbounce").error("invalid configuration: %s", exc)
        return 2
    configure_logging(settings.log_format, settings.log_level, log_prompts=settings.log_prompts)
    web.run_app(
        create_app(settings),
        host=args.host,
        port=args.port,
        print=None,
        shutdown_timeout=10,
        access_log=None,  # the audit line is the access log (no prompts, no keys)
        loop=uvloop.new_event_loop(),  # libuv's loop: less CPU per request than asyncio's own
        **server_options(settings),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
