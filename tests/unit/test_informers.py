"""The watch-fed caches: only wanted objects are kept, newer resourceVersions win, a deletion is not
undone by an older GET reply, and objects are trimmed to what the operator reads."""

from __future__ import annotations

from typing import Any

from wallbounce_operator.informers import Informer, OwnedIndex, trim_deployment, trim_route


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
    assert slim == {"metadata": {"name": "canary", "namespace": "ns", "resourceVersion": "3", "generation": None,
                                 "uid": None, "annotations": {}},
                    "spec": {"template": {"spec": {"containers": [{"image": "a"}]}}, "selector": {}},
                    "status": {"observedGeneration": None, "availableReplicas": 2,
                               "conditions": [{"type": "Available", "status": None, "reason": None}]}}
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "r", "namespace": "ns", "resourceVersion": "4", "managedFields": [{}]},
             "spec": {"rules": [{"backendRefs": []}]}, "status": {"parents": [{}]}}
    assert trim_route(route) == {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                                 "metadata": {"name": "r", "namespace": "ns", "resourceVersion": "4"},
                                 "spec": {"rules": [{"backendRefs": []}]}}


def _replicaset(name: str, owner: str, revision: str, rv: int, available: int = 1) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ns", "resourceVersion": str(rv),
                         "labels": {"pod-template-hash": name.rsplit("-", 1)[-1], "app": "x"},
                         "annotations": {"deployment.kubernetes.io/revision": revision, "other": "y"},
                         "ownerReferences": [{"kind": "Deployment", "name": owner, "uid": "u1"}]},
            "status": {"replicas": 1, "availableReplicas": available}}


def test_replicasets_are_kept_by_owner_and_only_for_named_deployments() -> None:
    index = OwnedIndex()
    index.want(("ns", "canary"))
    index.observe("ADDED", _replicaset("canary-aaa", "canary", "1", 5))
    index.observe("ADDED", _replicaset("other-bbb", "other", "1", 6))
    assert [r["metadata"]["name"] for r in index.owned(("ns", "canary"))] == ["canary-aaa"]
    assert index.owned(("ns", "canary"))[0]["metadata"]["labels"] == {"pod-template-hash": "aaa"}
    index.observe("MODIFIED", _replicaset("canary-aaa", "canary", "1", 4, available=0))  # older: ignored
    assert index.owned(("ns", "canary"))[0]["status"]["availableReplicas"] == 1
    index.observe("DELETED", _replicaset("canary-aaa", "canary", "1", 7))
    assert index.owned(("ns", "canary")) == []
    assert not index.seeded(("ns", "canary"))
    index.seed(("ns", "canary"), [_replicaset("canary-ccc", "canary", "2", 9)])
    assert index.seeded(("ns", "canary")) and len(index) == 1
