"""Watch-fed caches of the objects the analysis loop reads every tick (canary Deployments, routes), so
a tick of N rollouts costs one status PATCH each instead of two GETs and a PATCH.

Kopf's watch of Deployments and of each mesh's routes feeds ``observe``; only objects that some rollout
names are kept, trimmed to the fields the operator reads. A read the cache cannot answer (an object
not seen yet, or just named by a new rollout) falls back to a GET whose answer is stored; our own
writes are stored from the API server's reply. Newer resourceVersions win, so a late watch event
never overwrites a fresher write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

ObjectKey = tuple[str, str]  # (namespace, name)


def resource_version(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def trim_deployment(obj: dict[str, Any]) -> dict[str, Any]:
    """What the operator reads of a Deployment: its pod template (the revision) and available replicas."""
    meta = obj.get("metadata") or {}
    return {
        "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace"),
                     "resourceVersion": meta.get("resourceVersion")},
        "spec": {"template": (obj.get("spec") or {}).get("template") or {}},
        "status": {"availableReplicas": (obj.get("status") or {}).get("availableReplicas") or 0},
    }


def trim_route(obj: dict[str, Any]) -> dict[str, Any]:
    """A route without its managedFields and status (the weights live in spec)."""
    meta = obj.get("metadata") or {}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
            "metadata": {k: v for k, v in meta.items() if k != "managedFields"}, "spec": obj.get("spec") or {}}


class Informer:
    """The latest trimmed body of each wanted object of one kind, by (namespace, name)."""

    def __init__(self, trim: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self._trim = trim
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._wanted: Counter[ObjectKey] = Counter()  # how many rollouts name each object
        self._deleted: dict[ObjectKey, int] = {}  # resourceVersion at deletion: an older GET reply is stale

    # ----- which objects matter -----

    def want(self, key: ObjectKey) -> None:
        self._wanted[key] += 1

    def unwant(self, key: ObjectKey) -> None:
        self._wanted[key] -= 1
        if self._wanted[key] <= 0:
            del self._wanted[key]
            self._objects.pop(key, None)
            self._deleted.pop(key, None)

    # ----- fed by the watch and by our own reads and writes -----

    def observe(self, event_type: str | None, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if key not in self._wanted:
            return
        if event_type == "DELETED":
            self._objects.pop(key, None)
            self._deleted[key] = resource_version(obj)
            return
        self.store(obj)

    def store(self, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if key not in self._wanted:
            return
        rv = resource_version(obj)
        if rv <= self._deleted.get(key, -1):
            return  # a reply older than the deletion the watch already reported
        current = self._objects.get(key)
        if current is None or rv >= resource_version(current):
            self._objects[key] = self._trim(obj)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get((namespace, name))

    def __len__(self) -> int:
        return len(self._objects)
