"""``python -m wallbounce_sim --port P [--cases]``: run the simulators as a process (control endpoint under
``/_sim/``); ``--cases`` loads the service's consensus evaluation set so its questions are answered from it."""

from __future__ import annotations

import argparse
import asyncio
import json

from wallbounce_service.evalset import load_cases

from .scripts import VendorScript
from .server import Simulator


async def _serve(host: str, port: int, script: dict[str, dict[str, object]], cases: bool) -> None:
    sim = Simulator({name: VendorScript(**fields) for name, fields in script.items()})  # type: ignore[arg-type]
    if cases:
        sim.load_cases(load_cases())
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
    parser.add_argument("--cases", action="store_true", help="answer the consensus evaluation set's questions")
    args = parser.parse_args(argv)
    try:
        asyncio.run(_serve(args.host, args.port, json.loads(args.script), args.cases))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
