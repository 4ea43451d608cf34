"""Watches of the objects rollouts name — Deployments, ReplicaSets and the routes of each mesh — scoped to the
namespaces that hold rollouts, started with a namespace's first rollout and stopped with its last, so the operator
streams nothing of the rest of the cluster (memory grows with the rollouts, not with everything else).

Each watch is a LIST then a WATCH from its resourceVersion, in a thread of its own (the Kubernetes client blocks),
re-listed after a 410 Gone and re-opened when the server ends it; every event is handed to the event loop as a raw
dict (no model deserialization), where the engine's caches keep only the objects rollouts name, trimmed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.watch.watch import iter_resp_lines

log = logging.getLogger("wallbounce.watches")

Deliver = Callable[[str | None, dict[str, Any]], None]


@dataclass(frozen=True)
class Kind:
    """A namespaced resource to watch: its group, version and plural (the core group is "")."""

    group: str
    version: str
    plural: str

    def lister(self, api: client.ApiClient) -> Callable[..., Any]:
        """``list(namespace, **query)``: the raw (unread) response of a namespaced LIST or WATCH."""
        if (self.group, self.plural) == ("apps", "deployments"):
            return client.AppsV1Api(api).list_namespaced_deployment
        if (self.group, self.plural) == ("apps", "replicasets"):
            return client.AppsV1Api(api).list_namespaced_replica_set
        custom = client.CustomObjectsApi(api)
        return lambda namespace, **query: custom.list_namespaced_custom_object(
            self.group, self.version, namespace, self.plural, **query)


class _Watch(threading.Thread):
    """LIST + WATCH of one kind in one namespace until stopped."""

    def __init__(self, api: client.ApiClient, kind: Kind, namespace: str, deliver: Deliver,
                 loop: asyncio.AbstractEventLoop, timeout: int) -> None:
        super().__init__(name=f"watch-{kind.plural}-{namespace}", daemon=True)
        self.kind, self.namespace = kind, namespace
        self.deliver, self.loop, self.timeout = deliver, loop, timeout
        self.stopped = threading.Event()
        self.list = kind.lister(api)

    def _call(self, **query: Any) -> Any:
        return self.list(self.namespace, _preload_content=False, _request_timeout=self.timeout + 30, **query)

    def _hand(self, event: str | None, obj: dict[str, Any]) -> None:
        self.loop.call_soon_threadsafe(self.deliver, event, obj)

    def _list(self) -> str:
        resp = self._call()
        listed = json.loads(resp.data)
        for item in listed.get("items") or []:
            self._hand("ADDED", item)
        return str((listed.get("metadata") or {}).get("resourceVersion") or "")

    def _watch(self, version: str) -> str | None:
        """Events from ``version`` on; the last version seen, or None when it is too old (410: list again)."""
        resp = self._call(watch=True, resource_version=version, allow_watch_bookmarks=True,
                          timeout_seconds=self.timeout)
        try:
            for line in iter_resp_lines(resp):  # type: ignore[no-untyped-call]
                if self.stopped.is_set():
                    break
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    return None if obj.get("code") == 410 else version
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if event.get("type") != "BOOKMARK":
                    self._hand(event.get("type"), obj)
        finally:
            resp.release_conn()
        return version

    def run(self) -> None:
        version: str | None = None
        backoff = 1.0
        while not self.stopped.is_set():
            try:
                if version is None:
                    version = self._list()
                version = self._watch(version)
                backoff = 1.0
            except Exception as exc:  # the API server restarting, a network blip: list and watch again
                if isinstance(exc, client.ApiException) and exc.status in (403, 404):
                    log.warning("cannot watch %s in %s (HTTP %s): its objects are read with GETs", self.kind.plural,
                                self.namespace, exc.status)
                    self.stopped.wait(300)
                else:
                    log.debug("watch of %s in %s failed", self.kind.plural, self.namespace, exc_info=exc)
                    self.stopped.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                version = None


class NamespaceWatches:
    """The watches of the namespaces that hold rollouts: ``want(namespace, kind)`` once per rollout that reads that
    kind there, ``unwant`` when it no longer does; a watch runs while someone wants it."""

    def __init__(self, api: client.ApiClient, deliver: dict[Kind, Deliver], *, timeout: int = 300) -> None:
        self.api = api
        self.deliver = deliver
        self.timeout = timeout
        self.wanted: Counter[tuple[str, Kind]] = Counter()
        self.running: dict[tuple[str, Kind], _Watch] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on, watches run (those wanted before start now)."""
        self.loop = loop
        for key in self.wanted:
            self._run(key)

    def want(self, namespace: str, kind: Kind) -> None:
        key = (namespace, kind)
        self.wanted[key] += 1
        if self.loop is not None and key not in self.running:
            self._run(key)

    def unwant(self, namespace: str, kind: Kind) -> None:
        key = (namespace, kind)
        self.wanted[key] -= 1
        if self.wanted[key] <= 0:
            del self.wanted[key]
            watch = self.running.pop(key, None)
            if watch is not None:
                watch.stopped.set()  # it ends at its next event or when the server ends the watch

    def _run(self, key: tuple[str, Kind]) -> None:
        namespace, kind = key
        assert self.loop is not None
        watch = _Watch(self.api, kind, namespace, self.deliver[kind], self.loop, self.timeout)
        self.running[key] = watch
        watch.start()

    def stop(self) -> None:
        for watch in self.running.values():
            watch.stopped.set()
        self.running.clear()

    def __len__(self) -> int:
        return len(self.running)
