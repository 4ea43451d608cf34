"""Watch-fed caches of the objects the analysis loop reads every tick (the stable and canary Deployments, their
ReplicaSets, the routes), so a tick of N rollouts costs no GETs.

Kopf's watches feed ``observe``; only objects that some rollout names are kept (ReplicaSets: those owned by a named
Deployment), trimmed to the fields the operator reads. A read the cache cannot answer (an object not seen yet, or
just named by a new rollout) falls back to a GET or LIST whose answer is stored; our own writes are stored from the
API server's reply. Newer resourceVersions win, so a late watch event never overwrites a fresher write.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

ObjectKey = tuple[str, str]  # (namespace, name)
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
TEMPLATE_HASH_LABEL = "pod-template-hash"


def resource_version(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


def key_of(obj: dict[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace")), str(meta.get("name"))


def _meta(obj: dict[str, Any], *, labels: tuple[str, ...] = (), annotations: tuple[str, ...] = ()) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {"name": meta.get("name"), "namespace": meta.get("namespace"),
                           "resourceVersion": meta.get("resourceVersion"), "generation": meta.get("generation"),
                           "uid": meta.get("uid")}
    if labels:
        out["labels"] = {k: v for k, v in (meta.get("labels") or {}).items() if k in labels}
    if annotations:
        out["annotations"] = {k: v for k, v in (meta.get("annotations") or {}).items() if k in annotations}
    return out


def trim_deployment(obj: dict[str, Any]) -> dict[str, Any]:
    """What the operator reads of a Deployment: its revision, selector, pod template and rollout status."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    return {
        "metadata": _meta(obj, annotations=(REVISION_ANNOTATION,)),
        "spec": {"template": spec.get("template") or {}, "selector": spec.get("selector") or {}},
        "status": {"observedGeneration": status.get("observedGeneration"),
                   "availableReplicas": status.get("availableReplicas") or 0,
                   "conditions": [{"type": c.get("type"), "status": c.get("status"), "reason": c.get("reason")}
                                  for c in status.get("conditions") or []]},
    }


def trim_replicaset(obj: dict[str, Any]) -> dict[str, Any]:
    """What the operator reads of a ReplicaSet: its owner, revision, pod-template-hash and replica counts."""
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    trimmed = _meta(obj, labels=(TEMPLATE_HASH_LABEL,), annotations=(REVISION_ANNOTATION,))
    trimmed["ownerReferences"] = [{"kind": o.get("kind"), "name": o.get("name"), "uid": o.get("uid")}
                                  for o in meta.get("ownerReferences") or []]
    return {"metadata": trimmed,
            "status": {k: status.get(k) or 0 for k in ("replicas", "readyReplicas", "availableReplicas")}}


def trim_route(obj: dict[str, Any]) -> dict[str, Any]:
    """A route without its managedFields and status (the weights live in spec)."""
    meta = obj.get("metadata") or {}
    return {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
            "metadata": {k: v for k, v in meta.items() if k != "managedFields"}, "spec": obj.get("spec") or {}}


def owner_deployment(obj: dict[str, Any]) -> str | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Deployment":
            return str(ref.get("name"))
    return None


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

    def wanted(self, key: ObjectKey) -> bool:
        return key in self._wanted

    # ----- fed by the watch and by our own reads and writes -----

    def observe(self, event_type: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if key not in self._wanted:
            return
        if event_type == "DELETED":
            self._objects.pop(key, None)
            self._deleted[key] = resource_version(obj)
            return
        self.store(obj)

    def store(self, obj: dict[str, Any]) -> None:
        key = key_of(obj)
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


class OwnedIndex:
    """ReplicaSets of the wanted Deployments, by owner: fed by the watch, seeded by one LIST per newly named owner
    (the watch delivered the older ones before any rollout named their Deployment)."""

    def __init__(self) -> None:
        self._by_owner: dict[ObjectKey, dict[str, dict[str, Any]]] = {}
        self._seeded: set[ObjectKey] = set()

    def want(self, owner: ObjectKey) -> None:
        self._by_owner.setdefault(owner, {})

    def unwant(self, owner: ObjectKey) -> None:
        self._by_owner.pop(owner, None)
        self._seeded.discard(owner)

    def seeded(self, owner: ObjectKey) -> bool:
        return owner in self._seeded

    def seed(self, owner: ObjectKey, objects: list[dict[str, Any]]) -> None:
        if owner not in self._by_owner:
            return
        for obj in objects:
            self.observe("ADDED", obj)
        self._seeded.add(owner)

    def observe(self, event_type: str | None, obj: dict[str, Any]) -> None:
        name = owner_deployment(obj)
        namespace, rs_name = key_of(obj)
        owned = self._by_owner.get((namespace, name or ""))
        if name is None or owned is None:
            return
        if event_type == "DELETED":
            owned.pop(rs_name, None)
            return
        current = owned.get(rs_name)
        if current is None or resource_version(obj) >= resource_version(current):
            owned[rs_name] = trim_replicaset(obj)

    def owned(self, owner: ObjectKey) -> list[dict[str, Any]]:
        return list((self._by_owner.get(owner) or {}).values())

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_owner.values())
