"""``wallbounce-local``: start, inspect and stop the local control plane (etcd + kube-apiserver), and send traffic
through the local stack's Gateway.

    wallbounce-local up        start it in the background (idempotent) and print the exports to use it
    wallbounce-local status    say what runs
    wallbounce-local down      stop everything it started (the control plane or the whole stack) and remove its state
    wallbounce-local load      requests through the Gateway of the stack `make quickstart` (or `make demo`) left up
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from . import controlplane, procs, testbin


def default_state_dir() -> Path:
    env = os.environ.get("WALLBOUNCE_STATE_DIR")
    if env:
        return Path(env).resolve()
    try:
        return testbin.repo_root() / ".wallbounce"
    except testbin.TestbinError:
        return Path.cwd() / ".wallbounce"


def _link_tools(state_dir: Path, bin_dir: Path) -> Path:
    """``<state>/bin`` holds kubectl (and, next to it, our kubectl plugin when installed)."""
    tools = state_dir / "bin"
    tools.mkdir(parents=True, exist_ok=True)
    names = ["kubectl"]
    for name in names:
        link = tools / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(bin_dir / name)
    for script in ("kubectl-wallbounce", "kubectl_complete-wallbounce"):
        plugin = shutil.which(script, path=str(Path(sys.executable).parent))
        if plugin:
            link = tools / script
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(plugin)
    return tools


def _exports(state: controlplane.State) -> str:
    tools = Path(state.state_dir) / "bin"
    return f"export KUBECONFIG={state.kubeconfig}\nexport PATH={tools}:$PATH"


def cmd_up(state_dir: Path) -> int:
    state = controlplane.read_state(state_dir)
    if state is not None:
        alive = controlplane.running(state)
        if all(alive.values()):
            print(f"already running: kube-apiserver {state.version} at {state.server} (state {state_dir})",
                  file=sys.stderr)
            print(_exports(state))
            return 0
        dead = ", ".join(name for name, ok in alive.items() if not ok)
        print(f"found a broken control plane ({dead} not running): cleaning up and starting anew",
              file=sys.stderr)
        cmd_down(state_dir, quiet=True)
    print("starting etcd and kube-apiserver (the first run builds them: minutes)...", file=sys.stderr)
    plane = controlplane.ControlPlane(state_dir)
    try:
        state = plane.start()
    except (procs.StartError, testbin.TestbinError) as exc:
        print(f"wallbounce-local up failed: {exc}", file=sys.stderr)
        return 1
    _link_tools(state_dir, Path(state.bin_dir))
    print(
        f"kube-apiserver {state.version} ready at {state.server} in {state.start_seconds:.1f} s "
        f"(logs in {plane.log_dir})",
        file=sys.stderr,
    )
    print(_exports(state))
    return 0


def cmd_status(state_dir: Path) -> int:
    state = controlplane.read_state(state_dir)
    if state is None:
        orphans = procs.pids_mentioning(str(state_dir))
        print("not running" + (f" (orphan processes: {orphans}; run `wallbounce-local down`)" if orphans else ""))
        return 1 if orphans else 3
    alive = controlplane.running(state)
    age = time.time() - state.started_at
    for name, pid in state.pids.items():
        print(f"{name:15} pid {pid:<8} {'running' if alive[name] else 'NOT RUNNING'}  log {state.logs[name]}")
    print(f"server          {state.server} ({state.version}), up {age:.0f} s")
    print(f"kubeconfig      {state.kubeconfig}")
    return 0 if all(alive.values()) else 1


def cmd_down(state_dir: Path, quiet: bool = False) -> int:
    stopped = controlplane.stop_by_state_dir(state_dir)
    if state_dir.exists():
        shutil.rmtree(state_dir)
    if not quiet:
        print(f"stopped {len(stopped)} process(es); removed {state_dir}")
    return 0


def cmd_load(state_dir: Path, rate: float, seconds: float) -> int:
    """Steady traffic through the stack's Gateway for ``seconds``, then what the canary answered."""
    from .loadgen import LoadGenerator
    from .stack import read_info

    info = read_info(state_dir)
    if info is None:
        print(f"no stack in {state_dir}: start one with `make quickstart`", file=sys.stderr)
        return 1
    print(f"sending {rate:g} requests/s to {info.gateway_url} for {seconds:g} s", file=sys.stderr)
    load = LoadGenerator(info.gateway_url, rate=rate, concurrency=20, max_seconds=seconds).start()
    try:
        while load.running():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    load.stop()
    samples = load.since(0)
    canary = sum(1 for s in samples if s.variant == "canary")
    failed = sum(1 for s in samples if s.status >= 500 or s.error)
    print(f"{len(samples)} requests, {canary} answered by the canary, {failed} failed")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wallbounce-local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="where state, logs and the kubeconfig live (default: .wallbounce/ in the repo)")
    parser.add_argument("command", choices=["up", "down", "status", "load"])
    parser.add_argument("--rate", type=float, default=50.0, help="load: requests per second (default 50)")
    parser.add_argument("--seconds", type=float, default=300.0, help="load: for how long (default 300)")
    args = parser.parse_args(argv)
    state_dir = (args.state_dir or default_state_dir()).resolve()
    if args.command == "load":
        return cmd_load(state_dir, args.rate, args.seconds)
    return {"up": cmd_up, "down": cmd_down, "status": cmd_status}[args.command](state_dir)


if __name__ == "__main__":
    sys.exit(main())
