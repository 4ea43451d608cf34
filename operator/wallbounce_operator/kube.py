"""Kubernetes I/O of the operator (blocking client calls run off the event loop): the rollout's
status (merge patch guarded by resourceVersion, so a stale view can never double-promote), its
action annotation, the canary Deployment's availability and revision (from a watch-fed cache), and
Events (posted from the status' outbox, ``pendingEvents``, under names fixed when they were decided).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config

from .informers import Informer, trim_deployment
from .model import ACTION_ANNOTATION, GROUP, KIND, PLURAL, VERSION, Event, format_time, parse_time

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


@dataclass(frozen=True)
class CanaryState:
    available: bool
    revision: str | None
    problem: str | None = None


def template_hash(deployment: dict[str, Any]) -> str:
    template = (deployment.get("spec") or {}).get("template") or {}
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.objects = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.deployments = Informer(trim_deployment)

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

    async def clear_action(self, namespace: str, name: str, resource_version: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"metadata": {"annotations": {ACTION_ANNOTATION: None}}}
        if resource_version:
            body["metadata"]["resourceVersion"] = resource_version
        return await self._call(self.objects.patch_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                                name, body)

    async def _call(self, fn: Any, *args: Any) -> dict[str, Any]:
        try:
            return dict(await asyncio.to_thread(fn, *args))
        except client.ApiException as exc:
            if exc.status == 409:
                raise Conflict(str(exc.reason)) from exc
            if exc.status == 404:
                raise Gone(str(exc.reason)) from exc
            raise

    # ----- the canary Deployment -----

    async def canary(self, namespace: str, deployment: str) -> CanaryState:
        """From the watch-fed cache; a GET (whose answer is cached) when the cache has not seen it."""
        obj = self.deployments.get(namespace, deployment)
        if obj is None:
            try:
                resp: Any = await asyncio.to_thread(self.apps.read_namespaced_deployment, deployment, namespace,
                                                    _preload_content=False)
                obj = json.loads(resp.data)
            except client.ApiException as exc:
                if exc.status == 404:
                    return CanaryState(False, None, f"Deployment {namespace}/{deployment} not found")
                return CanaryState(False, None, f"reading Deployment {namespace}/{deployment}: HTTP {exc.status}")
            self.deployments.store(obj)
        available = int((obj.get("status") or {}).get("availableReplicas") or 0)
        return CanaryState(available > 0, template_hash(obj))

    # ----- events -----

    @staticmethod
    def outbox_entries(rollout_name: str, events: list[Event]) -> list[dict[str, Any]]:
        """Events decided now, as status.pendingEvents entries. Each gets its Event object's name here, once
        (<object>.<hex nanoseconds>, as client-go names events: unique, and sorts in emission order), so a
        repost after a crash finds the object already there instead of posting a twin."""
        now = format_time(dt.datetime.now(dt.UTC))
        base = time.time_ns()
        return [{"name": f"{rollout_name}.{base + i:x}", "time": now, "reason": e.reason,
                 "message": e.message[:1024], "type": e.type} for i, e in enumerate(events)]

    async def emit(self, rollout: dict[str, Any], entry: dict[str, Any]) -> bool:
        """Post one pendingEvents entry as an Event; True when it is (or already was) in the API server."""
        meta = rollout["metadata"]
        when = parse_time(entry.get("time")) or dt.datetime.now(dt.UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(name=entry["name"], namespace=meta["namespace"]),
            involved_object=client.V1ObjectReference(api_version=f"{GROUP}/{VERSION}", kind=KIND,
                                                     name=meta["name"], namespace=meta["namespace"],
                                                     uid=meta.get("uid"), resource_version=meta.get("resourceVersion")),
            reason=entry["reason"],
            message=entry.get("message", ""),
            type=entry.get("type", "Normal"),
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
                        entry["reason"], meta["namespace"], meta["name"], exc.status)
            return False
        return True
