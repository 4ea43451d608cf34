"""``python -m wallbounce_local.demo [--fast|--slow] [--happy-only] [--bad disagree|errors]``: the whole system
on this machine, live in the terminal (what ``make demo`` runs).

Act 1: a WallBounceRollout walks a time-compressed ladder (1 → 2 → 10 → 20 → 35 → 50 %) while a load generator
drives the Gateway; the view shows the phase, the step, the weight the operator wrote, the share of requests
the canary really answered through Traefik, and the canary's error rate, p95 and consensus confidence as
Prometheus and the operator see them.
Act 2: a new canary whose providers start contradicting each other (or failing) mid-ladder; the operator sees
its consensus confidence (or error rate) breach the rollback limit and takes the canary out of the route.

The stack keeps running afterwards (``KUBECONFIG`` printed) so ``kubectl get wbr`` and ``kubectl wallbounce
status techsapo`` work; ``make demo-down`` (``wallbounce-local down``) stops it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from . import cli, controlplane, procs, testbin
from .driver import SETTLED
from .loadgen import LOCAL_API_KEY, LoadGenerator, WeightLog, summarize
from .stack import Stack, StackInfo, compressed_ladder, stop_state_dir

LADDER = (1, 2, 10, 20, 35, 50)
SPEEDS = {"fast": 2.0, "normal": 4.0, "slow": 10.0}
PHASE_STYLE = {"Progressing": "green", "Holding": "yellow", "Paused": "magenta", "Completed": "bold green",
               "RolledBack": "bold red", "Aborted": "red"}


@dataclass
class Act:
    """What one act recorded: the route's weights over time and how it ended."""

    name: str
    rollout: str
    started: float = field(default_factory=time.time)
    weights: WeightLog = field(default_factory=WeightLog)
    final: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)


def _fmt(value: Any, spec: str, unit: str = "") -> str:
    if value is None:
        return "—"
    try:
        return f"{float(value):{spec}}{unit}"
    except (TypeError, ValueError):
        return str(value)


def view(stack: Stack, act: Act, load: LoadGenerator, note: str) -> Panel:
    """The live panel: the rollout as the operator wrote it and the traffic as the Gateway delivered it."""
    try:
        st = stack.rollouts.status(act.rollout)
        stable_w, canary_w = stack.rollouts.route_weights()
    except Exception as exc:  # noqa: BLE001 - the API server is busy: show it, try again next frame
        return Panel(Text(f"waiting for the API server: {exc}"), title=act.name)
    act.weights.record(canary_w)
    now = time.time()
    recent = summarize(load.between(now - 3.0, now))
    analysis = st.get("analysis") or {}
    phase = st.get("phase", "—")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("phase", Text(str(phase), style=PHASE_STYLE.get(str(phase), "")))
    grid.add_row("step", f"{st.get('step', '—')} / {st.get('steps', '—')}")
    bar = "█" * int(canary_w / 2) + "░" * (50 - int(canary_w / 2))
    grid.add_row("route weight", f"canary {canary_w:>3}%  stable {stable_w:>3}%  [cyan]{bar}[/]")
    grid.add_row("observed share", f"canary answered {recent.share('canary') * 100:5.1f}% of the last "
                                   f"{sum(recent.by_variant.values())} requests through the Gateway")
    grid.add_row("canary analysis", f"verdict {analysis.get('verdict', '—')}  ·  "
                                    f"requests {_fmt(analysis.get('requests'), '.0f')}  ·  "
                                    f"error rate {_fmt(analysis.get('errorRate'), '.2%')}  ·  "
                                    f"p95 {_fmt(analysis.get('latencyP95'), '.3f', ' s')}  ·  "
                                    f"confidence {_fmt(analysis.get('consensusConfidence'), '.3f')}")
    grid.add_row("load", f"{load.rate:.0f} req/s through Traefik · client p95 {recent.p95 * 1000:.0f} ms · "
                         f"5xx {recent.errors}")
    grid.add_row("message", Text(str(st.get("message", "")), overflow="fold"))
    history = Table("time", "to", "step", "weight", "reason", box=None, header_style="dim")
    for h in (st.get("history") or [])[-6:]:
        history.add_row(str(h.get("time", ""))[11:19], str(h.get("to", "")), str(h.get("step", "")),
                        f"{h.get('weight', '')}%", str(h.get("reason", "")))
    elapsed = now - act.started
    return Panel(Group(grid, Text(""), history, Text(note, style="dim")),
                 title=f"{act.name} — {elapsed:5.1f} s", border_style="blue")


def watch(console: Console, stack: Stack, act: Act, load: LoadGenerator, until: Collection[str], timeout: float,
          note: str = "", on_tick: Any = None) -> dict[str, Any]:
    """Refresh the view until the rollout reaches one of ``until`` (or ``timeout``); return its status."""
    st: dict[str, Any] = {}

    def frame() -> bool:
        nonlocal st
        if on_tick is not None:
            on_tick()
        live.update(view(stack, act, load, note))
        st = stack.rollouts.status(act.rollout)
        return st.get("phase") in until

    with Live(view(stack, act, load, note), console=console, refresh_per_second=4, transient=False) as live:
        try:
            procs.wait_for(f"{act.rollout} to reach {sorted(until)}", frame, timeout, every=0.25,
                           tolerate=(Exception,))  # the API server busy: the next frame tries again
            live.update(view(stack, act, load, note))
        except procs.WaitTimeout:
            pass  # the summary says where it stood
    act.final = st
    act.seconds = time.time() - act.started
    return st


def shares(act: Act, load: LoadGenerator) -> list[tuple[int, int, int, float]]:
    """(weight, requests, canary answers, observed share) per constant-weight span of an act."""
    out = []
    for w, t0, t1 in act.weights.segments(act.started + act.seconds):
        s = summarize(load.between(t0, t1))
        n = sum(s.by_variant.values())
        if n:
            out.append((w, n, s.by_variant.get("canary", 0), s.share("canary")))
    return out


def act_one(console: Console, stack: Stack, load: LoadGenerator, dwell: float) -> Act:
    act = Act("Act 1 · a healthy canary walks the ladder", "techsapo")
    stack.rollouts.apply(act.rollout, phases=compressed_ladder(dwell, LADDER))
    watch(console, stack, act, load, SETTLED, timeout=60 + 20 * dwell,
          note=f"ladder {' → '.join(f'{w}%' for w in LADDER)}, {dwell:g} s minimum dwell per step, "
               "analysis every 1 s over a 6 s window")
    return act


def act_two(console: Console, stack: Stack, load: LoadGenerator, dwell: float, bad: str) -> Act:
    act = Act(f"Act 2 · a bad canary ({'its providers disagree' if bad == 'disagree' else 'its providers fail'})",
              "techsapo-v2")
    rollouts = stack.rollouts
    rollouts.delete("techsapo")  # the route stays as the finished rollout left it (documented behaviour)
    rollouts.healthy()
    rollouts.set_route_weights(100, 0)  # a new canary build arrives: all traffic on stable again
    with console.status("a new canary build arrives: route back to 100/0, waiting for the canary's analysis "
                        "window to empty so act 2 is judged on its own traffic"):
        try:
            procs.wait_for("the canary's analysis window to empty", stack.canary.empty, 30, every=0.5)
        except procs.WaitTimeout:
            pass  # act 2 starts anyway: a few seconds of act 1's traffic only delay its first verdicts
    act.started = time.time()
    rollouts.apply(act.rollout, phases=compressed_ladder(dwell, LADDER))

    def inject() -> None:
        if "bad" in act.marks:
            if "breach" not in act.marks:  # first: the breach, as the operator's query would see it
                value = stack.canary.confidence() if bad == "disagree" else stack.canary.error_rate()
                if value is not None and (value < 0.6 if bad == "disagree" else value > 0.1):
                    act.marks["breach"] = time.time()
            if "route0" not in act.marks and rollouts.route_weights()[1] == 0:
                act.marks["route0"] = time.time()
            return
        st = rollouts.status(act.rollout)
        if (st.get("step") or 0) >= 3 and st.get("phase") == "Progressing":
            rollouts.break_canary(bad)  # "disagree" or "errors"
            act.marks["bad"] = time.time()

    watch(console, stack, act, load, SETTLED, timeout=60 + 20 * dwell,
          note="at step 3 the canary's simulators start "
               + ("contradicting each other (consensus collapse)" if bad == "disagree" else "answering 500"),
          on_tick=inject)
    def marked() -> bool:
        inject()
        return {"route0", "breach"} <= act.marks.keys()

    try:  # the last marks, if the final frame came first
        procs.wait_for("the last marks", marked, 2, every=0.1)
    except procs.WaitTimeout:
        pass  # the summary leaves out what was not seen
    return act


def summary(console: Console, stack: Stack, info: StackInfo, acts: list[Act], load: LoadGenerator,
            total: float) -> None:
    table = Table(title="observed canary share through the Gateway, per route weight", title_justify="left")
    for col in ("act", "weight", "requests", "canary answers", "observed share", "error"):
        table.add_column(col, justify="right")
    for i, act in enumerate(acts, 1):
        for w, n, c, share in shares(act, load):
            table.add_row(str(i), f"{w}%", str(n), str(c), f"{share * 100:.1f}%", f"{(share - w / 100) * 100:+.1f} pt")
    console.print(table)
    for i, act in enumerate(acts, 1):
        st = act.final
        line = (f"Act {i}: {act.rollout} ended {st.get('phase')} at step {st.get('step')}/{st.get('steps')} "
                f"(weight {st.get('weight')}%) after {act.seconds:.1f} s — {st.get('message', '')}")
        console.print(line)
        if "bad" in act.marks and "route0" in act.marks:
            delay = act.marks["route0"] - act.marks["bad"]
            extra = (f"; {max(0.0, act.marks['route0'] - act.marks['breach']):.1f} s after the breach was visible "
                     "in Prometheus (checked at the view's 4 Hz)" if "breach" in act.marks else "")
            console.print(f"        canary out of the route {delay:.1f} s after it went bad{extra}")
    whole = summarize(load.samples)
    console.print(f"load: {whole.count} requests through Traefik, {whole.errors} with a 5xx, "
                  f"client p95 {whole.p95 * 1000:.0f} ms; demo wall time {total:.0f} s "
                  f"(stack started in {info.start_seconds:.0f} s)")
    tools = Path(info.state_dir) / "bin"
    default = Path(info.state_dir) == cli.default_state_dir()
    cli_path = Path(sys.executable).parent / "wallbounce-local"
    down = "make demo-down" if default else f"{cli_path} --state-dir {info.state_dir} down"
    console.print(Panel(
        f"The stack is still running (state and logs in {info.state_dir}).\n\n"
        f"  export KUBECONFIG={info.kubeconfig}\n  export PATH={tools}:$PATH\n"
        f"  kubectl get wbr\n  kubectl wallbounce status {acts[-1].rollout}\n  kubectl get httproute techsapo -o yaml\n"
        f"  curl -s {info.gateway_url}/api/v1/generate -H 'Content-Type: application/json' "
        f"-H 'Authorization: Bearer {LOCAL_API_KEY}' "
        "-d '{\"prompt\": \"Should we enable keep-alive?\"}'\n"
        f"  Prometheus: {info.prometheus_url}\n\n"
        f"Stop everything with: {down}", title="what next", border_style="green"))


def _default_namespace(kubeconfig: Path, namespace: str) -> None:
    """Make ``namespace`` the kubeconfig context's default, so ``kubectl get wbr`` needs no ``-n``."""
    import yaml

    config = yaml.safe_load(kubeconfig.read_text())
    for ctx in config.get("contexts", []):
        ctx.setdefault("context", {})["namespace"] = namespace
    kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))


def quickstart_help(console: Console, state_dir: Path, gateway_url: str) -> None:
    """What to type next: the stack stays up for the README's quickstart."""
    console.print(f"""the stack keeps running (Gateway {gateway_url}); next:

  export KUBECONFIG={state_dir}/kubeconfig PATH={state_dir}/bin:$PATH
  kubectl annotate httproute techsapo wallbounce.dev/rollout=techsapo
  kubectl apply -f manifests/samples/rollout-quickstart.yaml
  .venv/bin/wallbounce-local load --rate 50 --seconds 300 &
  kubectl wait --for=condition=Ready wbr/techsapo --timeout=5m

and `make demo-down` to stop it.""", highlight=False)


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wallbounce_local.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--fast", action="store_const", dest="speed", const="fast", help="2 s per step")
    speed.add_argument("--slow", action="store_const", dest="speed", const="slow", help="10 s per step")
    parser.add_argument("--happy-only", action="store_true", help="act 1 only (no bad canary)")
    parser.add_argument("--bad", choices=["disagree", "errors"], default="disagree",
                        help="how the act-2 canary goes bad (default: its providers disagree)")
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second through the Gateway")
    parser.add_argument("--state-dir", type=Path, default=None, help="default: .wallbounce/ in the repository")
    parser.add_argument("--stack-only", action="store_true",
                        help="start the stack, print how to use it and leave it running (the README's quickstart)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    dwell = SPEEDS[args.speed or "normal"]
    console = Console()
    state_dir = (args.state_dir or cli.default_state_dir()).resolve()
    begun = time.monotonic()

    console.rule("[bold]wall-bounce rollouts: the whole system on this machine")
    console.print("Binaries (etcd, kube-apiserver, kubectl, Traefik) come from testbin/ "
                  "(the first run builds them from Go modules: minutes).")
    try:
        testbin.bin_dir("core")
        testbin.bin_dir("traefik")
    except testbin.TestbinError as exc:
        console.print(f"[red]{exc}")
        return 1
    if controlplane.read_state(state_dir) is not None or procs.pids_mentioning(str(state_dir)):
        console.print(f"stopping the previous stack in {state_dir}")
    stop_state_dir(state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)
    stack = Stack(state_dir, progress=lambda msg: console.print(f"  [cyan]starting[/] {msg}"))
    load: LoadGenerator | None = None
    try:
        info = stack.start()
        cli._link_tools(state_dir, testbin.bin_dir("core"))
        _default_namespace(Path(info.kubeconfig), info.namespace)
        console.print(f"stack ready in {info.start_seconds:.0f} s: Gateway {info.gateway_url}, "
                      f"Prometheus {info.prometheus_url}, services {info.services['stable']} (stable) and "
                      f"{info.services['canary']} (canary), behind Traefik")
        if args.stack_only:
            quickstart_help(console, state_dir, info.gateway_url)
            return 0
        load = LoadGenerator(info.gateway_url, rate=args.rate, concurrency=10, max_seconds=1800).start()
        acts = [act_one(console, stack, load, dwell)]
        if not args.happy_only:
            acts.append(act_two(console, stack, load, dwell, args.bad))
        load.stop()
        summary(console, stack, info, acts, load, time.monotonic() - begun)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping the stack")
        if load is not None:
            load.stop()
        stack.stop()
        shutil.rmtree(state_dir, ignore_errors=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - whatever broke, say so and leave nothing running
        if load is not None:
            load.stop()
        console.print(f"[red]the demo failed: {exc}\nlogs: {stack.log_dir}; stopping the stack")
        stack.stop()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
