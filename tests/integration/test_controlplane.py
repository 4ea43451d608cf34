"""The local control plane is a real Kubernetes API server: version, CRDs, watches, validation."""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from wallbounce_local import controlplane, procs

pytestmark = pytest.mark.integration

GROUP = "selftest.wallbounce.dev"


def widget_crd(plural: str) -> dict[str, Any]:
    """A small CRD with an OpenAPI schema and a CEL rule, so the server has something to validate."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": plural[:-1], "kind": plural[:-1].capitalize() + "X"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "required": ["size"],
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1},
                                        "max": {"type": "integer"},
                                    },
                                    "x-kubernetes-validations": [
                                        {"rule": "!has(self.max) || self.size <= self.max",
                                         "message": "spec.size must not exceed spec.max"}
                                    ],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }


def install_crd(kube: Any, body: dict[str, Any]) -> None:
    ext = client.ApiextensionsV1Api(kube)
    ext.create_custom_resource_definition(body)
    name = body["metadata"]["name"]
    for event in watch.Watch().stream(ext.list_custom_resource_definition,
                                      field_selector=f"metadata.name={name}", timeout_seconds=30):
        conditions = event["object"].status.conditions or []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
    raise AssertionError(f"CRD {name} never became Established")


def test_server_reports_kubernetes_1_36(kube: Any) -> None:
    info = client.VersionApi(kube).get_code()
    assert info.major == "1"
    assert info.minor == "36"
    assert info.git_version.startswith("v1.36.")


def test_crd_create_list_watch_and_validate(kube: Any, namespace: str) -> None:
    plural = f"widgets{uuid.uuid4().hex[:6]}"
    install_crd(kube, widget_crd(plural))
    objects = client.CustomObjectsApi(kube)

    seen: list[str] = []
    started = threading.Event()

    def watch_adds() -> None:
        w = watch.Watch()
        started.set()
        for event in w.stream(objects.list_namespaced_custom_object, GROUP, "v1", namespace, plural,
                              timeout_seconds=20):
            seen.append(f"{event['type']}:{event['object']['metadata']['name']}")
            if len(seen) >= 2:
                w.stop()

    watcher = threading.Thread(target=watch_adds)
    watcher.start()
    started.wait()
    kind = plural[:-1].capitalize() + "X"
    for name in ("alpha", "beta"):
        objects.create_namespaced_custom_object(GROUP, "v1", namespace, plural, {
            "apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name}, "spec": {"size": 2, "max": 3},
        })
    watcher.join(timeout=25)
    assert sorted(seen) == ["ADDED:alpha", "ADDED:beta"]

    listed = objects.list_namespaced_custom_object(GROUP, "v1", namespace, plural)
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["alpha", "beta"]

    # the OpenAPI schema: size must be >= 1
    with pytest.raises(client.ApiException) as bad_schema:
        objects.create_namespaced_custom_object(GROUP, "v1", namespace, plural, {
            "apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "zero"}, "spec": {"size": 0}})
    assert bad_schema.value.status == 422
    assert "spec.size" in bad_schema.value.body

    # the CEL rule, with its message
    with pytest.raises(client.ApiException) as bad_cel:
        objects.create_namespaced_custom_object(GROUP, "v1", namespace, plural, {
            "apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": "big"}, "spec": {"size": 5, "max": 3}})
    assert bad_cel.value.status == 422
    assert "spec.size must not exceed spec.max" in bad_cel.value.body


def test_admin_is_system_masters_and_other_users_are_subject_to_rbac(
    control_plane: controlplane.ControlPlane, kubectl: Path, namespace: str
) -> None:
    other = control_plane.user_kubeconfig("nobody")
    admin = subprocess.run([str(kubectl), "--kubeconfig", str(control_plane.kubeconfig), "auth", "can-i",
                            "create", "customresourcedefinitions"], capture_output=True, text=True)
    assert admin.stdout.strip() == "yes"
    denied = subprocess.run([str(kubectl), "--kubeconfig", str(other), "get", "pods", "-n", namespace],
                            capture_output=True, text=True)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    assert 'User "nobody"' in denied.stderr


def test_a_binary_that_fails_to_start_names_itself_and_leaves_no_process(tmp_path: Path) -> None:
    plane = controlplane.ControlPlane(tmp_path / "broken", extra_apiserver_args=["--no-such-flag=1"],
                                      start_timeout=30)
    with pytest.raises(procs.StartError) as failure:
        plane.start()
    message = str(failure.value)
    assert message.startswith("kube-apiserver: exited")
    assert str(plane.logs["kube-apiserver"]) in message
    assert "unknown flag" in message  # the log's tail is in the message
    assert procs.pids_mentioning(str(tmp_path / "broken")) == []


def test_a_taken_port_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real port collision: etcd is first offered a port that a socket here holds (the port choice is
    forced, the bind failure is etcd's own), and the control plane starts on the next one."""
    import socket

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    offers = iter([taken])
    real_free_port = procs.free_port
    monkeypatch.setattr(procs, "free_port", lambda host="127.0.0.1": next(offers, None) or real_free_port(host))
    plane = controlplane.ControlPlane(tmp_path / "collide", start_timeout=60)
    try:
        state = plane.start()
        assert next(offers, None) is None  # the taken port was offered…
        assert f":{taken}" not in state.etcd_url  # …refused by etcd, and a fresh one used
        assert json.loads(plane._get(f"{state.server}/version"))["minor"] == "36"
    finally:
        plane.stop()
        holder.close()
    assert procs.pids_mentioning(str(tmp_path / "collide")) == []
