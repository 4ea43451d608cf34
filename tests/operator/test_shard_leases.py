"""The shard Leases' timing against the real API server, two replicas in one process (one clock, so the fence and
the takeover can be compared exactly): a dead holder's shard is taken over within the Lease's duration of its last
renewal — not a renewal round or two later — and never before the holder's fence has stopped it, even by a replica
whose own rounds stalled while the holder kept renewing (it must not count the Lease's age from before the stall)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from wallbounce_operator.shards import Shards

pytestmark = pytest.mark.integration

DURATION = 4.0
RENEW = 1.0  # the fence's margin is 2 s: a holder acts while its last renewal was sent under 2 s ago


class Replica:
    """A ``Shards`` kept by rounds in a thread, as ``Shards.run`` keeps it (a round when the next Lease expires)."""

    def __init__(self, kube: Any, namespace: str, identity: str) -> None:
        self.shards = Shards(kube, namespace, identity, 1, duration=DURATION, renew=RENEW)
        self.running = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.running.set()
        self.thread = threading.Thread(target=self._rounds, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.running.clear()
        if self.thread is not None:
            self.thread.join()

    def _rounds(self) -> None:
        while self.running.is_set():
            started = time.monotonic()
            self.shards.step()
            time.sleep(self.shards.pause(started))


def wait_until_held(replica: Replica, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while 0 not in replica.shards.held:
        assert time.monotonic() < deadline, f"replica {replica.shards.identity} never took the shard"
        time.sleep(0.05)


@pytest.fixture
def pair(kube: Any, namespace: str) -> Iterator[tuple[Replica, Replica]]:
    a, b = Replica(kube, namespace, "a"), Replica(kube, namespace, "b")
    yield a, b
    a.stop()
    b.stop()


def test_a_dead_holders_shard_is_taken_within_the_duration_of_its_last_renewal(
        pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    a.start()
    wait_until_held(a)
    b.start()
    time.sleep(3 * RENEW)
    assert 0 in a.shards.held and 0 not in b.shards.held  # one shard, two replicas: the first by name holds it
    a.stop()  # dead: no more renewals
    last = a.shards.held[0]
    wait_until_held(b, within=3 * DURATION)
    took = b.shards.held[0] - last
    # never while the dead holder could still act (its fence), and within the duration of its last renewal (plus
    # the API server's answer): counted from the LIST that saw that renewal, and a round later, it could be 2 s more
    assert took >= DURATION - a.shards.margin, took
    assert took <= DURATION + 0.6, f"taken over {took:.2f} s after the last renewal"


def test_a_replica_whose_rounds_stalled_never_takes_over_before_the_fence(pair: tuple[Replica, Replica]) -> None:
    a, b = pair
    a.start()
    wait_until_held(a)
    b.shards.step()  # one round, then it stalls (paused, overloaded) while the holder keeps renewing
    time.sleep(DURATION + 2 * RENEW)
    a.stop()  # the holder dies just before the stalled replica's next round
    last = a.shards.held[0]
    b.start()
    wait_until_held(b, within=3 * DURATION)
    # its previous LIST is older than the Lease's duration, but the renewals it missed meanwhile were sent at most
    # the fence's margin before its new LIST answered: counted from there, the holder has stopped acting by then
    fence_ends = last + DURATION - a.shards.margin
    assert b.shards.held[0] >= fence_ends, (b.shards.held[0] - last)
