"""``python -m wallbounce_sim --port P``: run the simulators as a process (control endpoint under ``/_sim/``)."""

from __future__ import annotations

import argparse
import asyncio
import json

from .server import Simulator, VendorScript


async def _serve(host: str, port: int, script: dict[str, dict[str, object]]) -> None:
    sim = Simulator({name: VendorScript(**fields) for name, fields in script.items()})  # type: ignore[arg-type]
    await sim.start(host, port)
    print(json.dumps({"url": sim.url, **sim.env()}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wallbounce_sim", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--script", default="{}", help='JSON: {"openai": {"latency_s": 0.1}, ...}')
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args.host, args.port, json.loads(args.script)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
