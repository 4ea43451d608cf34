"""The plugin's only way to the cluster: the kubectl it is plugged into, run as a subprocess. So the kubeconfig,
the context, the namespace, credentials (exec plugins, OIDC) and proxies are resolved exactly as kubectl resolves
them, and a watch is kubectl's own (``get --watch --output-watch-events``: list, then watch)."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class KubectlError(RuntimeError):
    """kubectl exited non-zero; the message is its error output."""

    def __init__(self, message: str, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


@dataclass(frozen=True)
class Kubectl:
    binary: str = "kubectl"
    context: str | None = None
    kubeconfig: str | None = None

    def command(self, *args: str) -> list[str]:
        cmd = [self.binary]
        if self.kubeconfig:
            cmd += ["--kubeconfig", self.kubeconfig]
        if self.context:
            cmd += ["--context", self.context]
        return [*cmd, *args]

    def run(self, *args: str, timeout: float = 60) -> str:
        """kubectl's output; KubectlError with its message when it fails."""
        proc = subprocess.run(self.command(*args), capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            message = proc.stderr.strip() or f"kubectl {' '.join(args)} exited {proc.returncode}"
            raise KubectlError(message, not_found="NotFound" in message or "not found" in message)
        return proc.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json"))

    def namespace(self) -> str:
        """The namespace of the context in use (``--context`` or the current one), as kubectl defaults it."""
        try:
            found = self.run("config", "view", "--minify", "-o", "jsonpath={.contexts[0].context.namespace}")
        except KubectlError:
            found = ""
        return found.strip() or "default"

    def watch(self, *args: str, deadline: float | None = None) -> Iterator[dict[str, Any]]:
        """The objects ``kubectl get ARGS`` lists, then every change to them, until ``deadline`` (monotonic) passes;
        re-opened when the server ends the watch."""
        while deadline is None or time.monotonic() < deadline:
            yield from self._watch_once(args, deadline)

    def _watch_once(self, args: tuple[str, ...], deadline: float | None) -> Iterator[dict[str, Any]]:
        proc = subprocess.Popen(self.command("get", *args, "--watch", "--output-watch-events", "-o", "json"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        decoder, buffer = json.JSONDecoder(), ""
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        try:
            while True:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    return
                if not selector.select(wait):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                buffer += chunk.decode()
                while buffer.strip():
                    try:
                        event, end = decoder.raw_decode(buffer.lstrip())
                    except ValueError:
                        break
                    buffer = buffer.lstrip()[end:]
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        yield dict(event["object"])
            if proc.wait() != 0:
                assert proc.stderr is not None
                message = proc.stderr.read().decode().strip()
                raise KubectlError(message, not_found="NotFound" in message)
        finally:
            selector.close()
            if proc.poll() is None:
                proc.terminate()
                proc.wait()
