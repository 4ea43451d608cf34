"""Kubernetes I/O of the operator (blocking client calls run off the event loop): the rollout's status (merge patch
guarded by resourceVersion, so a stale view can never double-promote), the removal of a consumed action annotation,
the Deployments and their ReplicaSets (from watch-fed caches), server-side apply of the stable pod template, and
Events (posted from the status' outbox, ``pendingEvents``, under names fixed when they were decided).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from kubernetes import client, config

from .informers import Informer, OwnedIndex, trim_deployment
from .model import (
    ACTION_ANNOTATION,
    FIELD_MANAGER,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    Event,
    PendingEvent,
    WorkloadState,
)
from .workloads import stable_apply_body, workload_state

log = logging.getLogger("wallbounce.kube")


class Conflict(RuntimeError):
    """Someone else changed the object since we read it (HTTP 409): re-read and decide again."""


class Gone(RuntimeError):
    """The object was deleted (HTTP 404)."""


def api_client(connections: int = 32) -> client.ApiClient:
    """In a Pod: the in-cluster config; elsewhere: the current kubeconfig. One pooled connection per I/O thread."""
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    cfg.connection_pool_maxsize = connections
    return client.ApiClient(cfg)


def _escape(annotation: str) -> str:
    """A JSON-pointer segment (RFC 6901)."""
    return annotation.replace("~", "~0").replace("/", "~1")


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.objects = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.deployments = Informer(trim_deployment)
        self.replicasets = OwnedIndex()

    # ----- the rollout -----

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any], old: dict[str, Any],
                           resource_version: str | None) -> dict[str, Any]:
        """Merge-patch status to ``status`` (keys gone from ``old`` are deleted); 409 → Conflict."""
        body_status: dict[str, Any] = dict(status)
        for key in old:
            if key not in status:
                body_status[key] = None
        body: dict[str, Any] = {"status": body_status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return await self._call(self.objects.patch_namespaced_custom_object_status, GROUP, VERSION, namespace,
                                PLURAL, name, body)

    async def remove_action(self, namespace: str, name: str, value: str) -> dict[str, Any] | None:
        """Remove the action annotation if it still holds ``value`` (JSON patch test + remove: an action set
        meanwhile is never removed unread). None when it changed or is gone."""
        path = f"/metadata/annotations/{_escape(ACTION_ANNOTATION)}"
        patch = [{"op": "test", "path": path, "value": value}, {"op": "remove", "path": path}]
        try:
            return await self._call(self.objects.patch_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                                    name, patch, _content_type="application/json-patch+json")
        except (Conflict, Gone):
            return None
        except client.ApiException as exc:
            if exc.status == 422:  # the test failed: another value (or none) is there now
                return None
            raise

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return dict(await asyncio.to_thread(fn, *args, **kwargs))
        except client.ApiException as exc:
            if exc.status == 409:
                raise Conflict(str(exc.reason)) from exc
            if exc.status == 404:
                raise Gone(str(exc.reason)) from exc
            raise

    # ----- Deployments and their ReplicaSets -----

    def want_deployment(self, key: tuple[str, str]) -> None:
        self.deployments.want(key)
        self.replicasets.want(key)

    def unwant_deployment(self, key: tuple[str, str]) -> None:
        self.deployments.unwant(key)
        if not self.deployments.wanted(key):
            self.replicasets.unwant(key)

    async def _deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self.deployments.get(namespace, name)
        if obj is not None:
            return obj
        try:
            resp: Any = await asyncio.to_thread(self.apps.read_namespaced_deployment, name, namespace,
                                                _preload_content=False)
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        obj = json.loads(resp.data)
        self.deployments.store(obj)
        return self.deployments.get(namespace, name) or obj

    async def _replicasets(self, namespace: str, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        owner = (namespace, str(deployment["metadata"]["name"]))
        if not self.replicasets.seeded(owner):
            labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            resp: Any = await asyncio.to_thread(self.apps.list_namespaced_replica_set, namespace,
                                                label_selector=selector, _preload_content=False)
            self.replicasets.seed(owner, json.loads(resp.data).get("items") or [])
        return self.replicasets.owned(owner)

    async def workload(self, namespace: str, name: str, variant_env: Iterable[str]) -> WorkloadState:
        """The Deployment's current revision and its availability (watch-fed; a GET/LIST the first time)."""
        what = f"{namespace}/{name}"
        try:
            deployment = await self._deployment(namespace, name)
            replicasets = await self._replicasets(namespace, deployment) if deployment else []
        except client.ApiException as exc:
            return WorkloadState(found=False, message=f"reading Deployment {what}: HTTP {exc.status}")
        return workload_state(deployment, replicasets, variant_env, what)

    async def apply_stable_template(self, namespace: str, stable: str, canary: str,
                                    variant_env: Iterable[str]) -> str | None:
        """Server-side apply (field manager ``wallbounce-operator``) of the canary's pod spec to stable; the
        problem, or None."""
        stable_obj = await self._deployment(namespace, stable)
        canary_obj = await self._deployment(namespace, canary)
        if stable_obj is None or canary_obj is None:
            return f"Deployment {namespace}/{stable if stable_obj is None else canary} not found"
        body = stable_apply_body(stable_obj, canary_obj, variant_env)
        try:
            stored: Any = await asyncio.to_thread(
                self.apps.patch_namespaced_deployment, stable, namespace, body, field_manager=FIELD_MANAGER,
                force=True, _content_type="application/apply-patch+yaml", _preload_content=False)
        except client.ApiException as exc:
            return f"applying the canary's pod template to Deployment {namespace}/{stable}: HTTP {exc.status}"
        self.deployments.store(json.loads(stored.data))
        return None

    # ----- events -----

    @staticmethod
    def outbox_entries(rollout_name: str, events: list[Event], now: dt.datetime) -> list[PendingEvent]:
        """Events decided now, as status.pendingEvents entries. Each gets its Event object's name here, once
        (<object>.<hex nanoseconds>, as client-go names events: unique, and sorts in emission order), so a
        repost after a crash finds the object already there instead of posting a twin."""
        base = time.time_ns()
        return [PendingEvent(name=f"{rollout_name}.{base + i:x}", time=now, reason=e.reason,
                             message=e.message[:1024], type="Warning" if e.type == "Warning" else "Normal")
                for i, e in enumerate(events)]

    async def emit(self, rollout: dict[str, Any], entry: PendingEvent) -> bool:
        """Post one pendingEvents entry as an Event; True when it is (or already was) in the API server."""
        meta = rollout["metadata"]
        when = entry.time or dt.datetime.now(dt.UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=entry.name, namespace=meta["namespace"]),
            involved_object=client.V1ObjectReference(api_version=f"{GROUP}/{VERSION}", kind=KIND,
                                                     name=meta["name"], namespace=meta["namespace"],
                                                     uid=meta.get("uid"), resource_version=meta.get("resourceVersion")),
            reason=entry.reason,
            message=entry.message,
            type=entry.type,
            first_timestamp=when,
            last_timestamp=when,
            count=1,
            source=client.V1EventSource(component="wallbounce-operator"),
            reporting_component="wallbounce.dev/operator",
            reporting_instance="wallbounce-operator",
        )
        try:
            await asyncio.to_thread(self.core.create_namespaced_event, meta["namespace"], body)
        except client.ApiException as exc:
            if exc.status == 409:
                return True  # posted before a crash or a lost status write: not twice
            log.warning("could not post event %s for %s/%s: HTTP %s (kept in status.pendingEvents for a retry)",
                        entry.reason, meta["namespace"], meta["name"], exc.status)
            return False
        return True
