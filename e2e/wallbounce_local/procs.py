"""Child processes of the local stack: free ports, start with a log file, readiness waits,
and a stop that never leaves an orphan (SIGTERM to the process group, then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil


class StartError(RuntimeError):
    """A component failed to start; the message names it and its log file."""

    def __init__(self, component: str, reason: str, log: Path | None) -> None:
        self.component = component
        self.log = log
        where = f" (log: {log})" if log else ""
        tail = f"\n--- last lines of {log} ---\n{tail_of(log)}" if log and log.exists() else ""
        super().__init__(f"{component}: {reason}{where}{tail}")


class WaitTimeout(AssertionError, TimeoutError):
    """A wait ran out of time: an assertion failure in a test, a ``TimeoutError`` anywhere else."""


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.2, *,
             tolerate: tuple[type[BaseException], ...] = ()) -> Any:
    """Poll ``check`` every ``every`` seconds until it returns something truthy, and return that.

    An exception of a ``tolerate`` type counts as "not yet" (a server still starting, a busy API server);
    any other propagates at once. Out of time: ``WaitTimeout`` naming ``what`` and the last answer.
    This is the one deadline loop of the development stack: tests, benchmarks and the demo all wait here.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except tolerate as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(every)


def tail_of(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the caller retries if someone takes it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_in_use_message(log: Path) -> bool:
    text = tail_of(log, 200).lower()
    return "address already in use" in text or "bind: address" in text


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def cmdline(pid: int) -> list[str]:
    try:
        return list(psutil.Process(pid).cmdline())
    except psutil.Error:
        return []


def ancestors() -> set[int]:
    """This process and its parents up to init: never stopped, even when their command line names the state dir."""
    me = psutil.Process()
    return {me.pid, *(parent.pid for parent in me.parents())}


def pids_mentioning(marker: str) -> list[int]:
    """Live processes whose command line mentions ``marker`` (a state directory): orphans to clean."""
    skip = ancestors()
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if proc.pid in skip or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if any(marker in arg for arg in proc.info["cmdline"] or ()):
            found.append(proc.pid)
    return found


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL; the process group too when the pid leads one."""
    if not pid_alive(pid):
        return
    group = _group_of(pid)
    _signal(pid, group, signal.SIGTERM)
    try:
        wait_for(f"process {pid} to end", lambda: not pid_alive(pid), timeout, every=0.05)
    except WaitTimeout:
        pass  # killed below
    _signal(pid, group, signal.SIGKILL)
    try:
        wait_for(f"process {pid} and its group to end",
                 lambda: not pid_alive(pid) and not (group is not None and _group_members(group)), 5, every=0.05)
    except WaitTimeout:
        pass  # SIGKILL cannot be refused: only an uninterruptible sleep outlives it, and it ends on its own


def _group_members(group: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) == group:
                members.append(proc.pid)
        except OSError:
            continue
    return members


def _group_of(pid: int) -> int | None:
    try:
        group = os.getpgid(pid)
    except OSError:
        return None
    return group if group == pid else None


def _signal(pid: int, group: int | None, sig: signal.Signals) -> None:
    try:
        if group is not None:
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Process:
    """One component of the stack started from a binary, with its output in a log file."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    pid: int | None = None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    start_new_session=True,  # own process group: survives the CLI, killed as a group
                )
            except OSError as exc:
                raise StartError(self.name, f"cannot execute {self.argv[0]}: {exc}", self.log) from exc
        self.pid = self.popen.pid
        return self

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return self.pid is not None and pid_alive(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        if self.pid is not None:
            terminate(self.pid, timeout)
        if self.popen is not None:
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``check`` until true (its exceptions count as not yet); ``StartError`` with the log's tail if
        the process dies first or time runs out."""

        def alive_and_ready() -> bool:
            if not self.alive():
                code = self.popen.returncode if self.popen is not None else "?"
                raise StartError(self.name, f"exited with code {code} before {what}", self.log)
            try:
                return check()
            except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
                return False

        try:
            wait_for(what, alive_and_ready, timeout, every=0.1)
        except WaitTimeout:
            raise StartError(self.name, f"not {what} after {timeout:.0f} s", self.log) from None
