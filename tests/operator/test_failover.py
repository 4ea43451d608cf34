"""Several operator replicas on shard Leases (the real API server's coordination.k8s.io/v1 Leases): every shard held,
a SIGKILLed replica's rollouts taken over within the Lease's duration with no promotion repeated or skipped and no
dwell shortened, a breach during the failover rolled back as soon as a replica holds the shard, and a replica paused
past its Lease (SIGSTOP, as a network partition would) acting on none of the shards it lost when it resumes."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from wallbounce_local import controlplane, procs
from wallbounce_local.components import Operator
from wallbounce_local.prometheus import Prometheus
from wallbounce_operator.shards import SHARD_PREFIX, shard_of

from .conftest import Driver, _operators
from .test_actions import run_cli

pytestmark = pytest.mark.integration

SHARDS = 4
LEASE = 15.0  # the default Lease duration


@pytest.fixture
def replicas(control_plane: controlplane.ControlPlane, driver: Driver, prometheus: Prometheus,
             tmp_path: Path) -> Iterator[list[Operator]]:
    ops = [Operator(tmp_path / f"operator-{i}.log", control_plane.kubeconfig, namespaces=[driver.namespace],
                    args=("--prometheus", prometheus.url, "--guard-period", "1", "--shards", str(SHARDS),
                          "--replica-id", f"op-{i}", "--lease-namespace", driver.namespace)) for i in range(3)]
    _operators.extend(ops)  # their logs go with a failing test's report
    for op in ops:
        op.start()
    yield ops
    for op in ops:
        op.stop()
        _operators.remove(op)


def holders(driver: Driver) -> dict[int, str]:
    leases = client.CoordinationV1Api(driver.api).list_namespaced_lease(driver.namespace).items
    return {int(lease.metadata.name.removeprefix(SHARD_PREFIX)): lease.spec.holder_identity or ""
            for lease in leases if lease.metadata.name.startswith(SHARD_PREFIX)}


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def spread(driver: Driver, count: int, phases: list[dict[str, Any]]) -> list[str]:
    names = [f"r{i}" for i in range(count)]
    for name in names:
        driver.create_pair(name)
        driver.create_route(name, prefix=name)
        driver.healthy(name)
        driver.apply(name, prefix=name, route=name, phases=phases)
    return names


def test_every_shard_is_held_and_a_killed_replicas_rollouts_go_on(driver: Driver, replicas: list[Operator],
                                                                  kubectl: Path,
                                                                  control_plane: controlplane.ControlPlane) -> None:
    procs.wait_for("every shard held, by every replica", lambda: len(held := holders(driver)) == SHARDS
                   and all(held.values()) and len(set(held.values())) == 3, timeout=60)
    dwell = 5
    names = spread(driver, 6, [{"weight": w, "duration": f"{dwell}s", "minRequests": 20} for w in (1, 2)]
                   + [{"weight": 10, "duration": "1h", "minRequests": 20}])
    victim = names[0]
    driver.wait_status(victim, "step 1 carried", lambda s: s.get("weight") == 1, timeout=60)
    shard = shard_of(driver.namespace, victim, SHARDS)
    owner = holders(driver)[shard]
    doomed = next(op for i, op in enumerate(replicas) if f"op-{i}" == owner)
    # a second rollout of the same shard breaks during the failover
    breached = next((n for n in names[1:] if shard_of(driver.namespace, n, SHARDS) == shard), None)
    if breached:
        driver.wait_status(breached, "carried", lambda s: s.get("weight", 0) > 0, timeout=60)
    doomed.kill()
    killed = time.monotonic()
    if breached:
        driver.break_canary("errors", prefix=breached)
    new_owner = procs.wait_for("the shard taken over", lambda: (h := holders(driver)[shard]) != owner and h,
                               timeout=LEASE * 2 + 10)
    took = time.monotonic() - killed
    # within the Lease's duration of the last renewal (before the kill), plus the answers of a loaded API server
    assert took <= LEASE + 2, f"taken over after {took:.1f}s"
    assert new_owner != owner
    listing = run_cli(str(kubectl), "wallbounce", "-n", driver.namespace, "list",
                      kubeconfig=str(control_plane.kubeconfig)).stdout
    assert re.search(rf"^{victim}\s+.*\s{new_owner}\s", listing, re.M), listing  # who acts on it now
    if breached:
        driver.wait_phase(breached, "RolledBack", timeout=LEASE + 20)
    for name in names:
        if name == breached:
            continue
        status = driver.wait_status(name, "step 3", lambda s: s.get("step") == 3 and s.get("weight") == 10,
                                    timeout=120)
        steps = [h for h in status["history"] if h["reason"] in ("StepStarted", "PhasePromoted")]
        assert [h["weight"] for h in steps] == [1, 2, 10], (name, steps)  # none repeated, none skipped
        for before, after in itertools.pairwise(steps):
            assert (ts(after["time"]) - ts(before["time"])).total_seconds() >= dwell  # never shortened
        assert driver.reasons(name).count("PhasePromoted") == 2


def test_a_replica_paused_past_its_lease_acts_on_no_shard_it_lost(driver: Driver,
                                                                  replicas: list[Operator]) -> None:
    procs.wait_for("every shard held, by every replica", lambda: len(held := holders(driver)) == SHARDS
                   and all(held.values()) and len(set(held.values())) == 3, timeout=60)
    names = spread(driver, 4, [{"weight": 1, "duration": "1h", "minRequests": 20}])
    for name in names:
        driver.wait_status(name, "1 % carried", lambda s: s.get("weight") == 1, timeout=60)
    paused = replicas[0]
    had = {s for s, h in holders(driver).items() if h == "op-0"}
    assert had
    assert paused.pid is not None
    writes_before = {shard: status_writes(paused.metrics(), shard) for shard in range(SHARDS)}
    os.killpg(paused.pid, signal.SIGSTOP)
    try:
        procs.wait_for("its shards taken over", lambda: not {s for s, h in holders(driver).items()
                                                            if h == "op-0"}, timeout=LEASE * 2 + 10)
    finally:
        os.killpg(paused.pid, signal.SIGCONT)
    procs.wait_for("the resumed replica to see what it lost", lambda: all(
        f"stopped acting on shard {shard}" in paused.log.read_text() for shard in had), timeout=30)
    time.sleep(3)
    # it wrote nothing on a shard another replica holds: the fence kept it from acting on what it lost
    held_by = holders(driver)
    for shard in had:
        if held_by[shard] != "op-0":
            assert status_writes(paused.metrics(), shard) == writes_before[shard], shard
    for name in names:  # and nothing happened twice
        assert [h["reason"] for h in driver.history(name)].count("StepStarted") == 1


def status_writes(text: str, shard: int) -> float:
    """This shard's status writes, whatever their cause."""
    label = f'shard="{shard}"'
    return sum(float(x.split()[-1]) for x in text.splitlines()
               if x.startswith("wallbounce_operator_status_writes_total{") and label in x)
