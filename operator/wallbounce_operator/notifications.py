"""Notifications of rollout events through Apprise URLs (Slack, Teams, e-mail, generic JSON/form webhooks, …).

Configuration (``--notifications FILE``, a YAML file from a Secret: the URLs carry tokens)::

    targets:                       # name → Apprise URL
      oncall: slack://TokenA/TokenB/TokenC/#rollouts
      audit: json://hooks.internal:8080/wallbounce
    routes:                        # which events go where (reasons: [] or ["*"] = every reason; types: Normal/Warning)
    - {reasons: [RolledBack, Aborted, ProgressDeadlineExceeded], targets: [oncall]}
    - {reasons: ["*"], targets: [audit]}
    namespaceConfigMap: wallbounce-notifications   # per-namespace routes (below)
    maxAge: 1h                     # an event older than this is not delivered any more

A namespace overrides the routes for its rollouts with a ConfigMap of that name whose key ``routes`` holds a YAML
list of routes; they may only name the operator's targets (so a tenant can never make the operator send to an
address of its choosing), and ``routes: "[]"`` mutes the namespace.

Delivery is at least once, from the outbox the Events already use: the engine hands each batch of events to
``Notifier.posted`` once they exist as Event objects (a queue put, never I/O: the analysis loop is never blocked);
workers send them, and mark each Event with the annotation ``wallbounce.dev/notified`` (the targets that got it). An
operator that restarts lists its Events and sends what is not marked yet, so a crash loses none; one that crashed
between a send and the mark sends that one again, with the same idempotency key — the Event's name — in the
``Idempotency-Key`` header and the ``event`` field of JSON/form/XML webhooks, and at the end of every message, so a
receiver can drop the duplicate. URLs, tokens and response bodies are never logged: a target is named by its name.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import apprise
import yaml
from kubernetes import client
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import metrics
from .model import GROUP, KIND, PendingEvent, parse_duration

log = logging.getLogger("wallbounce.notifications")
logging.getLogger("apprise").setLevel(logging.CRITICAL)  # its messages may quote a server's answer: ours say enough

NOTIFIED_ANNOTATION = f"{GROUP}/notified"
REPORTING_COMPONENT = "wallbounce.dev/operator"
WEBHOOK_SCHEMES = {"json", "jsons", "form", "forms", "xml", "xmls"}
RETRY = (2.0, 300.0)  # first retry after 2 s, doubling, at most every 5 minutes
QUEUE_LIMIT = 10_000
CONFIGMAP_TTL = 30.0


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reasons: list[str] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)
    targets: list[str]

    def matches(self, reason: str, event_type: str) -> bool:
        return ((not self.reasons or "*" in self.reasons or reason in self.reasons)
                and (not self.types or event_type in self.types))


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    targets: dict[str, str] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    namespace_configmap: str = Field("wallbounce-notifications", alias="namespaceConfigMap")
    max_age: float = Field(3600.0, alias="maxAge")

    @field_validator("max_age", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value) if isinstance(value, str) else float(value)

    @classmethod
    def load(cls, path: Path) -> Config:
        """The file, validated: every route names known targets, every target is a URL Apprise can send to
        (named by its target name, never quoted)."""
        try:
            config = cls.model_validate(yaml.safe_load(path.read_text()) or {})
        except (OSError, yaml.YAMLError, ValidationError) as exc:
            raise ValueError(f"notifications file {path}: {exc}") from None
        for name, url in config.targets.items():
            if apprise.Apprise.instantiate(url) is None:
                raise ValueError(f"notifications file {path}: target {name!r} is not a URL Apprise can send to")
        for route in config.routes:
            unknown = set(route.targets) - set(config.targets)
            if unknown:
                raise ValueError(f"notifications file {path}: a route names unknown targets {sorted(unknown)}")
        return config


@dataclass
class Job:
    """One Event to deliver, and to whom it went already."""

    namespace: str
    rollout: str
    event: PendingEvent
    summary: str
    done: set[str] = field(default_factory=set)
    attempts: int = 0

    @property
    def created(self) -> float:
        return self.event.time.timestamp() if self.event.time else time.time()


def with_idempotency(url: str, job: Job) -> str:
    """A webhook URL that sends the Event's name as ``Idempotency-Key`` and, with the rollout, in the payload."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in WEBHOOK_SCHEMES:
        return url
    extra = {"+Idempotency-Key": job.event.name, ":event": job.event.name, ":reason": job.event.reason,
             ":eventType": job.event.type, ":namespace": job.namespace, ":rollout": job.rollout}
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def summary(rollout: dict[str, Any]) -> str:
    st = rollout.get("status") or {}
    return (f"phase {st.get('phase', '-')}, step {st.get('step', '-')}/{st.get('steps', '-')}, "
            f"canary weight {st.get('weight', 0)}%")


class Notifier:
    """The queue, its workers, per-namespace routes and the recovery scan of unmarked Events."""

    def __init__(self, config: Config, api: client.ApiClient, *, namespaces: Iterable[str] = (),
                 owns: Callable[[str, str], bool] | None = None, workers: int = 4) -> None:
        self.config = config
        self.core = client.CoreV1Api(api)
        self.namespaces = tuple(namespaces)  # empty: every namespace
        self.owns = owns or (lambda namespace, name: True)
        self.workers = workers
        self._queue: collections.deque[Job] = collections.deque(maxlen=QUEUE_LIMIT)
        self._ready = asyncio.Event()
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._routes: dict[str, tuple[float, list[Route]]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # ----- fed by the engine (never blocks) ------------------------------------------------------

    def posted(self, rollout: dict[str, Any], entries: list[PendingEvent]) -> None:
        """The engine's hook: these events now exist as Event objects."""
        meta = rollout.get("metadata") or {}
        for entry in entries:
            self._enqueue(Job(str(meta.get("namespace")), str(meta.get("name")), entry, summary(rollout)))

    def _enqueue(self, job: Job) -> None:
        if job.event.name in self._seen:
            return  # handed over twice (a status write lost after the events were posted)
        self._seen[job.event.name] = None
        while len(self._seen) > 4 * QUEUE_LIMIT:
            self._seen.popitem(last=False)
        if len(self._queue) == self._queue.maxlen:
            metrics.NOTIFICATIONS.labels("-", "dropped").inc()
            log.warning("notification queue full: the oldest undelivered event is left to the restart scan")
        self._queue.append(job)
        self._ready.set()

    # ----- the workers ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """The workers, and the scan for what a previous run left undelivered."""
        self._tasks = [asyncio.create_task(self._work(), name=f"wallbounce-notify-{i}") for i in range(self.workers)]
        self._tasks.append(asyncio.create_task(self.recover(), name="wallbounce-notify-recover"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
                continue
            job = self._queue.popleft()
            try:
                await self.deliver(job)
            except Exception:  # a worker must outlive any one job
                log.exception("notification of event %s failed", job.event.name)

    async def deliver(self, job: Job) -> bool:
        """Send to every target the routes name that has not had it; mark the Event when all have. True when done;
        otherwise the job is queued again after a backoff (until it is older than maxAge)."""
        targets = [t for t in await self._targets(job) if t not in job.done]
        for target in targets:
            if await self._send(target, job):
                job.done.add(target)
        if all(t in job.done for t in targets):
            if targets:
                await self._mark(job)
            return True
        job.attempts += 1
        if time.time() - job.created > self.config.max_age:
            for target in set(targets) - job.done:
                metrics.NOTIFICATIONS.labels(target, "expired").inc()
            log.warning("event %s of %s/%s: not delivered to %s within maxAge; given up", job.event.name,
                        job.namespace, job.rollout, sorted(set(targets) - job.done))
            return False
        delay = min(RETRY[0] * 2 ** (job.attempts - 1), RETRY[1])
        asyncio.get_running_loop().call_later(delay, self._requeue, job)
        return False

    def _requeue(self, job: Job) -> None:
        self._queue.append(job)
        self._ready.set()

    async def _send(self, target: str, job: Job) -> bool:
        sender = apprise.Apprise()
        if not sender.add(with_idempotency(self.config.targets[target], job)):
            log.error("notification target %s: its URL is not usable", target)
            metrics.NOTIFICATIONS.labels(target, "failed").inc()
            return False
        event = job.event
        title = f"[{event.type}] {event.reason}: {job.namespace}/{job.rollout}"
        body = f"{event.message}\n{job.summary}\n(event {event.name})"
        kind = apprise.NotifyType.WARNING if event.type == "Warning" else apprise.NotifyType.INFO
        sent = bool(await sender.async_notify(body=body, title=title, notify_type=kind))
        metrics.NOTIFICATIONS.labels(target, "sent" if sent else "failed").inc()
        if not sent:
            log.warning("notification of event %s (%s/%s %s) to target %s failed (attempt %d)", event.name,
                        job.namespace, job.rollout, event.reason, target, job.attempts + 1)
        return sent

    # ----- routes ------------------------------------------------------------------------------------

    async def _targets(self, job: Job) -> list[str]:
        routes = await self._namespace_routes(job.namespace)
        chosen = {t for r in routes if r.matches(job.event.reason, job.event.type) for t in r.targets}
        return sorted(chosen & set(self.config.targets))  # unknown names: logged when the routes were read

    async def _namespace_routes(self, namespace: str) -> list[Route]:
        """The namespace's ConfigMap routes (read at most every 30 s), else the operator's."""
        now = time.monotonic()
        cached = self._routes.get(namespace)
        if cached and now - cached[0] < CONFIGMAP_TTL:
            return cached[1]
        routes = self.config.routes
        try:
            cm: Any = await asyncio.to_thread(self.core.read_namespaced_config_map, self.config.namespace_configmap,
                                              namespace)
            text = (cm.data or {}).get("routes")
            if text is not None:
                routes = [Route.model_validate(r) for r in (yaml.safe_load(text) or [])]
                unknown = {t for r in routes for t in r.targets} - set(self.config.targets)
                if unknown:
                    log.warning("namespace %s: ConfigMap %s names targets the operator does not have: %s", namespace,
                                self.config.namespace_configmap, sorted(unknown))
        except client.ApiException as exc:
            if exc.status != 404:
                log.warning("namespace %s: reading ConfigMap %s: HTTP %s (the operator's routes apply)", namespace,
                            self.config.namespace_configmap, exc.status)
        except (yaml.YAMLError, ValidationError, TypeError):
            log.warning("namespace %s: ConfigMap %s has unusable routes (the operator's routes apply)", namespace,
                        self.config.namespace_configmap)
        self._routes[namespace] = (now, routes)
        return routes

    # ----- the Event as the durable record -----------------------------------------------------------------

    async def _mark(self, job: Job) -> None:
        body = {"metadata": {"annotations": {NOTIFIED_ANNOTATION: ",".join(sorted(job.done))}}}
        try:
            await asyncio.to_thread(self.core.patch_namespaced_event, job.event.name, job.namespace, body)
        except client.ApiException as exc:
            if exc.status != 404:  # gone (expired): nothing left to resend anyway
                log.warning("event %s: could not record its delivery: HTTP %s (a restart may send it again)",
                            job.event.name, exc.status)

    async def recover(self) -> None:
        """Queue the operator's Events that are younger than maxAge and not marked delivered to every target."""
        selector = f"involvedObject.kind={KIND},reportingComponent={REPORTING_COMPONENT}"
        scopes: list[str | None] = list(self.namespaces) or [None]
        horizon = time.time() - self.config.max_age
        for namespace in scopes:
            try:
                if namespace is None:
                    listed: Any = await asyncio.to_thread(self.core.list_event_for_all_namespaces,
                                                          field_selector=selector)
                else:
                    listed = await asyncio.to_thread(self.core.list_namespaced_event, namespace,
                                                     field_selector=selector)
            except client.ApiException as exc:
                log.warning("listing events to resend: HTTP %s (undelivered notifications of before the restart are "
                            "lost)", exc.status)
                continue
            for ev in listed.items:
                self._recover_one(ev, horizon)

    def _recover_one(self, ev: Any, horizon: float) -> None:
        when = ev.last_timestamp or ev.event_time or ev.metadata.creation_timestamp
        if when is None or when.timestamp() < horizon:
            return
        involved = ev.involved_object
        if not self.owns(involved.namespace, involved.name):
            return
        done = {t for t in ((ev.metadata.annotations or {}).get(NOTIFIED_ANNOTATION) or "").split(",") if t}
        entry = PendingEvent(name=ev.metadata.name, reason=ev.reason or "", message=ev.message or "",
                             type="Warning" if ev.type == "Warning" else "Normal",
                             time=when.astimezone(dt.UTC))
        self._enqueue(Job(involved.namespace, involved.name, entry, "(resent after an operator restart)", done=done))
