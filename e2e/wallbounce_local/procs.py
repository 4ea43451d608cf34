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


class StartError(RuntimeError):
    """A component failed to start; the message names it and its log file."""

    def __init__(self, component: str, reason: str, log: Path | None) -> None:
        self.component = component
        self.log = log
        where = f" (log: {log})" if log else ""
        tail = f"\n--- last lines of {log} ---\n{tail_of(log)}" if log and log.exists() else ""
        super().__init__(f"{component}: {reason}{where}{tail}")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy (returned); AssertionError naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _ancestors() -> set[int]:
    """This process and its parents up to init: never stopped, even when their command line names the state dir."""
    chain, pid = set(), os.getpid()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return chain


def pids_mentioning(marker: str) -> list[int]:
    """Processes whose command line mentions ``marker`` (a state directory): orphans to clean."""
    found = []
    skip = _ancestors()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        pid = int(entry.name)
        if any(marker in arg for arg in cmdline(pid)) and pid_alive(pid):
            found.append(pid)
    return found


def terminate(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL; the process group too when the pid leads one."""
    if not pid_alive(pid):
        return
    group = _group_of(pid)
    _signal(pid, group, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            break
        time.sleep(0.05)
    _signal(pid, group, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while (pid_alive(pid) or (group is not None and _group_members(group))) and time.monotonic() < deadline:
        time.sleep(0.05)


def _group_members(group: int) -> list[int]:
    """Live (non-zombie) processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == group:
            members.append(int(entry.name))
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
        """Poll ``check`` until true; fail with the log's tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                code = self.popen.returncode if self.popen is not None else "?"
                raise StartError(self.name, f"exited with code {code} before {what}", self.log)
            try:
                if check():
                    return
            except Exception:  # noqa: BLE001, S110 - not ready yet, whatever the reason
                pass
            if time.monotonic() > deadline:
                raise StartError(self.name, f"not {what} after {timeout:.0f} s", self.log)
            time.sleep(0.1)
