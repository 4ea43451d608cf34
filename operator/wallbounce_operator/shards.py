"""Shards of the rollouts on Kubernetes Leases, so that any number of operator replicas share the work and a dead one's
rollouts are taken over within a Lease's duration.

Rollouts are partitioned into ``shards`` by a stable hash of ``namespace/name``. Each shard has a
``coordination.k8s.io/v1`` Lease ``wallbounce-shard-<i>`` in the operator's namespace; each replica also renews a member
Lease ``wallbounce-member-<identity>`` so the others know it is alive. Every ``renew`` seconds a replica lists the
Leases (one LIST), renews those it holds, gives back what it holds beyond its fair share, and takes free or expired
shards up to it. A Lease is expired when its record has not changed for its duration *on this replica's own clock* (as
client-go's leader election judges it: no clock skew between replicas matters), counted from the earliest moment the
change can have happened: the start of the previous LIST, which still showed the old record — but never more than the
fence's margin before this LIST's answer (a replica whose own rounds stalled knows less). A round is also run when the
first Lease another replica holds would expire, so a dead replica's shards are taken over within the duration of its
last renewal (client-go counts from the LIST that saw the change, up to a round later). The fair share splits the shards
evenly, the remainder to the first replicas by name (4 shards on 3 replicas: 2, 1, 1); a replica holding more gives the
rest back at once (a Lease without a holder).

Fencing: a replica acts on a shard only while its last successful renewal, counted from when it was sent, is younger
than the duration minus a margin — so a replica that cannot renew (partitioned, paused, overloaded) stops acting before
any other replica can take the shard over: the other counts the Lease's age from a moment at most the margin before the
answer of the LIST that showed that renewal, which was sent before that answer. The status writes are guarded by
resourceVersion besides, so even a replica that resumes in the middle of a write cannot act twice: its write is refused
(409).

``kubectl get leases -n <operator namespace>`` shows who holds what.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from . import metrics

log = logging.getLogger("wallbounce.shards")

SHARD_PREFIX = "wallbounce-shard-"
MEMBER_PREFIX = "wallbounce-member-"
SHARD_LABEL = "wallbounce.dev/shard"
SHARDS_LABEL = "wallbounce.dev/shards"


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard of a rollout: a stable hash of ``namespace/name`` (the same in every replica, and in the plugin)."""
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % max(shards, 1)


@dataclass
class Seen:
    """A Lease as this replica last saw it, and since when (on its own clock) its record has not changed."""

    holder: str
    record: tuple[Any, ...]
    since: float


def _micro(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Shards:
    """The shards this replica holds, kept by a loop (``run``); ``acting(shard)`` is the fence."""

    def __init__(self, api: client.ApiClient, namespace: str, identity: str, shards: int, *,
                 duration: float = 15.0, renew: float | None = None,
                 on_acquire: Callable[[int], None] | None = None) -> None:
        self.leases = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.identity = identity
        self.count = shards
        self.duration = duration
        self.renew = renew if renew is not None else duration / 5
        self.margin = max(2 * self.renew, duration / 3)
        self.on_acquire = on_acquire or (lambda _shard: None)
        self.held: dict[int, float] = {}  # shard → this replica's clock when its last successful renewal was sent
        self.seen: dict[str, Seen] = {}  # Lease name → how it was last seen
        self.listed_at: float | None = None  # this replica's clock when its last LIST started
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="wallbounce-leases")
        self.timeout = max(2.0, duration - self.margin)  # a request slower than the fence's time is of no use

    # ----- the fence ------------------------------------------------------------------------------------------

    def acting(self, shard: int) -> bool:
        renewed = self.held.get(shard)
        return renewed is not None and time.monotonic() - renewed < self.duration - self.margin

    def acts_on(self, namespace: str, name: str) -> bool:
        return self.acting(shard_of(namespace, name, self.count))

    # ----- the loop -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                # a thread of its own: in the shared pool a round would queue behind a tick's thousands of
                # requests, and the fence would stop this replica acting on the shards it holds
                await asyncio.get_running_loop().run_in_executor(self._thread, self.step)
            except Exception:  # a failed round is retried; the fence stops acting meanwhile
                log.exception("shard leases: a round failed")
            metrics.SHARDS_HELD.set(sum(1 for s in self.held if self.acting(s)))
            await asyncio.sleep(self.pause(started))

    def pause(self, started: float) -> float:
        """Until the next round: a renewal period after this one started, or sooner when a shard another replica
        holds would expire (so a dead replica's shards are taken over at once, not up to a round later)."""
        now = time.monotonic()
        until = started + self.renew
        for name, seen in self.seen.items():
            expires = seen.since + self.duration + 0.05
            if name.startswith(SHARD_PREFIX) and seen.holder not in ("", self.identity) and expires > now:
                until = min(until, expires)  # one expired already and still not taken: the fair share is full
        return max(0.0, until - now)

    def step(self) -> None:
        """One round: observe every Lease, renew, give back, take (blocking calls: run in a thread)."""
        started = time.monotonic()
        listed = self.leases.list_namespaced_lease(self.namespace, label_selector=f"{SHARD_LABEL} in (shard,member)",
                                                   _request_timeout=self.timeout)
        items: list[Any] = list(listed.items)
        by_name: dict[str, Any] = {str(lease.metadata.name): lease for lease in items}
        now = time.monotonic()
        for name, lease in by_name.items():
            spec = lease.spec
            record = (spec.holder_identity, spec.renew_time, spec.lease_duration_seconds)
            seen = self.seen.get(name)
            if seen is None or seen.record != record:
                # it changed after the previous LIST started (that one still showed the old record); a Lease seen
                # for the first time, or not listed last time, changed at some moment before now
                since = now if seen is None or self.listed_at is None else max(self.listed_at, now - self.margin)
                self.seen[name] = Seen(spec.holder_identity or "", record, since)
        self.listed_at = started
        self._member(by_name.get(f"{MEMBER_PREFIX}{self.identity}"))
        self._forget_gone_members(by_name)
        self._renew(by_name)
        fair = self._fair_share(by_name)
        self._give_back(by_name, fair)
        self._take(by_name, fair)

    def _fair_share(self, by_name: dict[str, Any]) -> int:
        """Shards ÷ replicas alive, the remainder to the first replicas by name: 4 shards on 3 replicas are 2, 1, 1."""
        alive = sorted(self._alive(by_name))
        base, extra = divmod(self.count, len(alive))
        return base + (1 if alive.index(self.identity) < extra else 0)

    def _expired(self, name: str) -> bool:
        seen = self.seen.get(name)
        return seen is None or time.monotonic() - seen.since >= self.duration

    def _alive(self, by_name: dict[str, Any]) -> set[str]:
        alive = {self.identity}
        for name in by_name:
            if name.startswith(MEMBER_PREFIX) and not self._expired(name):
                alive.add(name.removeprefix(MEMBER_PREFIX))
        return alive

    def _body(self, name: str, holder: str, kind: str, shard: int | None = None,
              old: Any = None) -> client.V1Lease:
        now = dt.datetime.now(dt.UTC)
        labels = {SHARD_LABEL: kind, SHARDS_LABEL: str(self.count)}
        if shard is not None:
            labels["wallbounce.dev/shard-index"] = str(shard)
        if old is None:
            transitions, acquired = 0, now
        else:
            changed = old.spec.holder_identity != holder
            transitions = (old.spec.lease_transitions or 0) + (1 if changed else 0)
            acquired = now if changed else old.spec.acquire_time
        return client.V1Lease(
            metadata=client.V1ObjectMeta(name=name, namespace=self.namespace, labels=labels,
                                         resource_version=old.metadata.resource_version if old is not None else None),
            spec=client.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=int(self.duration),
                                    acquire_time=acquired if holder else None, renew_time=now,
                                    lease_transitions=transitions))

    def _write(self, name: str, body: client.V1Lease, old: Any, by_name: dict[str, Any] | None = None) -> bool:
        """Create or replace (with the resourceVersion it was read at); False when someone else wrote it first."""
        try:
            if old is None:
                stored = self.leases.create_namespaced_lease(self.namespace, body, _request_timeout=self.timeout)
            else:
                stored = self.leases.replace_namespaced_lease(name, self.namespace, body,
                                                              _request_timeout=self.timeout)
        except client.ApiException as exc:
            if exc.status in (409, 422):
                return False
            raise
        if by_name is not None:
            by_name[name] = stored  # later writes in this round start from this version
        return True

    def _member(self, old: Any) -> None:
        name = f"{MEMBER_PREFIX}{self.identity}"
        self._write(name, self._body(name, self.identity, "member", old=old), old)

    def _forget_gone_members(self, by_name: dict[str, Any]) -> None:
        """A member Lease expired ten times over belongs to a replica that is gone (pods get new names)."""
        for name, lease in by_name.items():
            seen = self.seen.get(name)
            if name.startswith(MEMBER_PREFIX) and seen is not None \
                    and time.monotonic() - seen.since > 10 * self.duration:
                try:
                    self.leases.delete_namespaced_lease(name, self.namespace, body=client.V1DeleteOptions(
                        preconditions=client.V1Preconditions(resource_version=lease.metadata.resource_version)),
                        _request_timeout=self.timeout)
                except client.ApiException as exc:
                    if exc.status not in (404, 409):
                        raise
                self.seen.pop(name, None)

    def _renew(self, by_name: dict[str, Any]) -> None:
        for shard in list(self.held):
            name = f"{SHARD_PREFIX}{shard}"
            lease = by_name.get(name)
            if lease is None or lease.spec.holder_identity != self.identity:
                self._lose(shard, "another replica holds it now" if lease is not None else "its Lease is gone")
                continue
            sent = time.monotonic()  # the fence counts from before the write: it can only have landed later
            if self._write(name, self._body(name, self.identity, "shard", shard, lease), lease, by_name):
                self.held[shard] = sent

    def _give_back(self, by_name: dict[str, Any], fair: int) -> None:
        while len(self.held) > fair:
            shard = max(self.held)
            name = f"{SHARD_PREFIX}{shard}"
            lease = by_name.get(name)
            self._lose(shard, f"over the fair share of {fair}")
            if lease is not None:
                self._write(name, self._body(name, "", "shard", shard, lease), lease, by_name)

    def _take(self, by_name: dict[str, Any], fair: int) -> None:
        for shard in range(self.count):
            if len(self.held) >= fair:
                return
            name = f"{SHARD_PREFIX}{shard}"
            if shard in self.held:
                continue
            lease = by_name.get(name)
            free = lease is None or not lease.spec.holder_identity or self._expired(name)
            sent = time.monotonic()
            if free and self._write(name, self._body(name, self.identity, "shard", shard, lease), lease, by_name):
                self.held[shard] = sent
                log.info("took shard %d (%s)", shard, "new" if lease is None else
                         f"from {lease.spec.holder_identity or 'nobody'}")
                self.on_acquire(shard)

    def _lose(self, shard: int, why: str) -> None:
        self.held.pop(shard, None)
        log.info("stopped acting on shard %d: %s", shard, why)
