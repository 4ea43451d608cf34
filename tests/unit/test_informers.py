"""The watch-fed caches: only wanted objects are kept, newer resourceVersions win, a deletion is not
undone by an older GET reply, and objects are trimmed to what the operator reads."""

from __future__ import annotations

from typing import Any

from wallbounce_operator.informers import Informer, trim_deployment, trim_route


def deployment(rv: int, available: int = 1, image: str = "a", name: str = "canary") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv),
                         "managedFields": [{"manager": "kubectl"}], "labels": {"x": "y"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"image": image}]}}},
            "status": {"availableReplicas": available, "conditions": [{"type": "Available"}]}}


def test_only_wanted_objects_are_kept() -> None:
    cache = Informer(trim_deployment)
    cache.observe(None, deployment(1, name="other"))
    cache.want(("ns", "canary"))
    cache.observe(None, deployment(2))
    assert cache.get("ns", "other") is None
    assert cache.get("ns", "canary") is not None and len(cache) == 1


def test_a_newer_resource_version_wins_in_any_order() -> None:
    cache = Informer(trim_deployment)
    cache.want(("ns", "canary"))
    cache.store(deployment(10, available=0))  # our own GET
    cache.observe("MODIFIED", deployment(9, available=5))  # a late watch event
    assert cache.get("ns", "canary")["status"]["availableReplicas"] == 0  # type: ignore[index]
    cache.observe("MODIFIED", deployment(11, available=2))
    assert cache.get("ns", "canary")["status"]["availableReplicas"] == 2  # type: ignore[index]


def test_a_deletion_is_not_undone_by_an_older_reply_but_a_recreation_is_seen() -> None:
    cache = Informer(trim_deployment)
    cache.want(("ns", "canary"))
    cache.observe(None, deployment(5))
    cache.observe("DELETED", deployment(7))
    assert cache.get("ns", "canary") is None
    cache.store(deployment(6))  # a GET answered before the deletion
    assert cache.get("ns", "canary") is None
    cache.observe("ADDED", deployment(8, image="b"))
    assert cache.get("ns", "canary")["spec"]["template"]["spec"]["containers"][0]["image"] == "b"  # type: ignore[index]


def test_shared_objects_stay_until_no_rollout_names_them() -> None:
    cache = Informer(trim_deployment)
    cache.want(("ns", "canary"))
    cache.want(("ns", "canary"))
    cache.observe(None, deployment(1))
    cache.unwant(("ns", "canary"))
    assert cache.get("ns", "canary") is not None
    cache.unwant(("ns", "canary"))
    assert cache.get("ns", "canary") is None
    cache.observe("MODIFIED", deployment(2))
    assert len(cache) == 0


def test_trimmed_to_what_the_operator_reads() -> None:
    slim = trim_deployment(deployment(3, available=2))
    assert slim == {"metadata": {"name": "canary", "namespace": "ns", "resourceVersion": "3"},
                    "spec": {"template": {"spec": {"containers": [{"image": "a"}]}}},
                    "status": {"availableReplicas": 2}}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "r", "namespace": "ns", "resourceVersion": "4", "managedFields": [{}]},
             "spec": {"rules": [{"backendRefs": []}]}, "status": {"parents": [{}]}}
    assert trim_route(route) == {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                                 "metadata": {"name": "r", "namespace": "ns", "resourceVersion": "4"},
                                 "spec": {"rules": [{"backendRefs": []}]}}
