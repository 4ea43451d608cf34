"""Kopf handlers, kept thin: the watches (rollouts, and the canary Deployments and routes they name)
feed the engine; startup starts the engine's loop and the metrics endpoint; cleanup stops them. No
finalizers are added (deleting a rollout never blocks) and Kopf stores no state in the objects (no
drift for Argo CD)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf

from . import metrics
from .analysis.prometheus import PrometheusSource
from .engine import Engine, Policy
from .kube import api_client
from .model import FIELD_MANAGER, GROUP, PLURAL, VERSION
from .notifications import Notifier
from .routers import MESHES, Mesh

IO_THREADS = 32  # the blocking Kubernetes and Prometheus clients run in threads


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    if memo.get("namespaced"):
        settings.scanning.disabled = True  # no cluster-wide namespace/CRD watches: Roles in the watched namespaces do
    # enough threads to keep a tick of thousands of rollouts short (the default pool is cores + 4)
    threads = IO_THREADS
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads, thread_name_prefix="wallbounce-io"))
    timeout = float(memo.get("query_timeout", 5.0))
    policy = Policy(default_prometheus=str(memo.get("prometheus", "")),
                    allowed_prometheus=tuple(memo.get("prometheus_allow", ())),
                    allow_query_overrides=bool(memo.get("allow_query_overrides", False)), query_budget=timeout)
    api = api_client(threads)
    # requests without a field manager (route updates) are recorded under the user agent's name: ours, so GitOps
    # tools can ignore exactly the operator's fields (Argo CD's managedFieldsManagers: [wallbounce-operator])
    api.user_agent = f"{FIELD_MANAGER}/{metrics.INFO_VERSION}"
    engine = Engine(api, source=PrometheusSource(timeout=timeout), tick=float(memo.get("tick", 1.0)),
                    concurrency=threads, policy=policy, guard_period=float(memo.get("guard_period", 2.0)))
    memo.engine = engine
    memo.http = await metrics.serve(int(memo.get("metrics_port", 8080)), engine.health,
                                    host=str(memo.get("metrics_host", "0.0.0.0")))  # noqa: S104
    metrics.REGISTRY.register(metrics.RolloutCollector(lambda: list(engine.records.values())))
    if memo.get("notifications") is not None:
        notifier = Notifier(memo.notifications, engine.kube.api, namespaces=memo.get("namespaces", ()))
        engine.event_sinks.append(notifier.posted)
        await notifier.start()
        memo.notifier = notifier
    memo.loop_task = asyncio.create_task(engine.run(), name="wallbounce-analysis-loop")


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("loop_task")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    notifier = memo.get("notifier")
    if notifier is not None:
        await notifier.stop()
    http = memo.get("http")
    if http is not None:
        await http.cleanup()


@kopf.on.event(GROUP, VERSION, PLURAL)
def on_rollout(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.engine.observe_event(event.get("type"), dict(event["object"]))


@kopf.on.event("apps", "v1", "deployments")
def on_deployment(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.engine.observe_deployment(event.get("type"), dict(event["object"]))


@kopf.on.event("apps", "v1", "replicasets")
def on_replicaset(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.engine.observe_replicaset(event.get("type"), dict(event["object"]))


def _watch_routes(kind: str, mesh: Mesh) -> None:
    @kopf.on.event(mesh.group, mesh.version, mesh.plural, id=f"route-{kind}")
    def on_route(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
        memo.engine.observe_route(kind, event.get("type"), dict(event["object"]))


for _kind, _mesh in MESHES.items():  # a mesh whose CRD is absent is reported once by Kopf and not watched
    _watch_routes(_kind, _mesh)
