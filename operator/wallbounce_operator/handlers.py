"""Kopf handlers, kept thin: the watch of the rollouts feeds the engine (which watches the Deployments, ReplicaSets
and routes they name itself, in their namespaces only: ``watches``); startup starts the engine's loop, its
watches, the shard Leases and the metrics endpoint; cleanup stops them. No finalizers are added (deleting a rollout
never blocks) and Kopf stores no state in the objects (no drift for Argo CD)."""

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
from .shards import Shards

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
                    concurrency=threads, policy=policy, guard_period=float(memo.get("guard_period", 2.0)),
                    heartbeat=float(memo.get("heartbeat", 720.0)))
    memo.engine = engine
    if int(memo.get("shards", 0)) > 0:
        engine.shards = Shards(api_client(4), str(memo.get("lease_namespace")), str(memo.get("replica_id")),
                               int(memo["shards"]), duration=float(memo.get("lease_duration", 15.0)),
                               on_acquire=engine.acquired)
        memo.shards_task = asyncio.create_task(engine.shards.run(), name="wallbounce-shard-leases")
    memo.http = await metrics.serve(int(memo.get("metrics_port", 8080)), engine.health,
                                    host=str(memo.get("metrics_host", "0.0.0.0")))  # noqa: S104
    engine.watches.start(asyncio.get_running_loop())
    metrics.REGISTRY.register(metrics.RolloutCollector(engine.reported))
    if memo.get("notifications") is not None:
        notifier = Notifier(memo.notifications, engine.kube.api, namespaces=memo.get("namespaces", ()))
        engine.event_sinks.append(notifier.posted)
        await notifier.start()
        memo.notifier = notifier
    memo.loop_task = asyncio.create_task(engine.run(), name="wallbounce-analysis-loop")


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    for name in ("loop_task", "shards_task"):
        task = memo.get(name)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    engine = memo.get("engine")
    if engine is not None:
        engine.watches.stop()
    notifier = memo.get("notifier")
    if notifier is not None:
        await notifier.stop()
    http = memo.get("http")
    if http is not None:
        await http.cleanup()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_rollout(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """On the event loop, like the engine that reads the records it changes (Kopf runs a sync handler in a thread,
    which changed the records while the loop went through them)."""
    memo.engine.observe_event(event.get("type"), dict(event["object"]))
