"""What every part of the local stack is: a ``Component`` with one small protocol — ``start()`` (returns
once it is ready, or raises ``procs.StartError`` naming it and its log), ``ready()``, ``stop()`` and
``logs`` — and ``ProcessComponent``, the shared body of the parts that are one child process.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

from .. import procs


@runtime_checkable
class Component(Protocol):
    """One part of the stack."""

    name: str

    def start(self) -> object:
        """Start and wait until ready (returns itself, or what it started); ``procs.StartError`` (naming the
        part and its log) if it cannot."""
        ...

    def ready(self) -> bool:
        """Whether it serves now (may raise while it does not)."""
        ...

    def stop(self) -> None:
        """Stop it, leaving no process behind; a no-op when it does not run."""
        ...

    @property
    def logs(self) -> dict[str, Path]:
        """Its log files by name (attached to a failing test's report)."""
        ...


class ProcessComponent:
    """A part that is one child process in its own process group, with its output in ``log``.

    Subclasses give ``command()`` (called for each attempt, after ``prepare()`` picked fresh ports) and
    ``ready()``; a start that fails because a port was taken meanwhile is retried on new ports.
    """

    name = "process"
    readiness = "ready"  # how a start failure reads: "<name>: not <readiness> after N s"
    start_timeout = 60.0
    attempts = 3

    def __init__(self, log: Path, env: Mapping[str, str] | None = None) -> None:
        self.log = log
        self.env = dict(env) if env is not None else None
        self.process: procs.Process | None = None

    def prepare(self, attempt: int) -> None:
        """Choose ports and write configuration before attempt ``attempt`` (0-based)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> Self:
        for attempt in range(self.attempts):
            self.launch(attempt)
            try:
                return self.wait_ready()
            except procs.StartError:
                self.stop()
                if attempt + 1 < self.attempts and procs.port_in_use_message(self.log):
                    continue
                raise
        raise AssertionError("unreachable")

    def launch(self, attempt: int = 0) -> None:
        """Start the process without waiting for it (``start_together`` launches several, then waits)."""
        self.prepare(attempt)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log.write_text("")
        self.process = procs.Process(self.name, self.command(), self.log, env=self.env).start()

    def wait_ready(self) -> Self:
        assert self.process is not None, f"{self.name} was not launched"
        self.process.wait_until(self.ready, self.start_timeout, self.readiness)
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def kill(self) -> None:
        """SIGKILL the process group: no cleanup, as a crash or an OOM kill would."""
        assert self.process is not None and self.process.pid is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.popen is not None:
            self.process.popen.wait(timeout=10)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    @property
    def logs(self) -> dict[str, Path]:
        return {self.name: self.log}


def start_together(parts: Sequence[ProcessComponent]) -> None:
    """Launch every part, then wait for each: independent parts start in parallel (no port retry)."""
    for part in parts:
        part.launch()
    for part in parts:
        part.wait_ready()


def python(*args: str, marker: str | None = None) -> list[str]:
    """This interpreter running ``args``; ``marker`` (``-X key=value``, ignored by Python) puts a state directory
    on the command line, so ``wallbounce-local down`` finds the process."""
    return [sys.executable, *(("-X", marker) if marker else ()), *args]
