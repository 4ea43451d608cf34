"""Helpers for the operator's integration tests: the real operator process, a traffic exporter,
and the Kubernetes objects a rollout needs (Deployments with a status, Services, routes)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client

from wallbounce_local import procs
from wallbounce_local.procs import wait_for

GROUP, VERSION, PLURAL = "wallbounce.dev", "v1alpha1", "wallbouncerollouts"
ROUTE_OWNER = "wallbounce.dev/rollout"
REVISION = "deployment.kubernetes.io/revision"
ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "wallbouncerollouts.yaml"


class Exporter:
    """The traffic exporter as a real process (``python -m wallbounce_local.exporter``)."""

    def __init__(self, log: Path) -> None:
        self.port = procs.free_port()
        self.process = procs.Process("exporter", [sys.executable, "-m", "wallbounce_local.exporter",
                                                  "--port", str(self.port)], log).start()
        self.process.wait_until(lambda: self._get("/metrics") is not None, 30, "serving /metrics")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://{self.target}{path}", timeout=5) as resp:
            return bytes(resp.read())

    def _send(self, method: str, body: dict[str, Any]) -> None:
        req = urllib.request.Request(f"http://{self.target}/profiles", data=json.dumps(body).encode(),
                                     method=method, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5):
            pass

    def set(self, namespace: str, service: str, **profile: Any) -> None:
        self._send("POST", {"namespace": namespace, "service": service, **profile})

    def drop(self, namespace: str, service: str) -> None:
        self._send("DELETE", {"namespace": namespace, "service": service})

    def stop(self) -> None:
        self.process.stop()


class OperatorProcess:
    """``wallbounce operator`` scoped to one namespace, as a real process."""

    def __init__(self, namespace: str, log: Path, kubeconfig: str, args: tuple[str, ...] = ()) -> None:
        self.args = args
        self.namespace = namespace
        self.log = log
        self.kubeconfig = kubeconfig
        self.process: procs.Process | None = None
        self.port = 0

    def start(self) -> OperatorProcess:
        self.port = procs.free_port()
        env = {**os.environ, "KUBECONFIG": self.kubeconfig}
        self.process = procs.Process("operator", [str(Path(sys.executable).parent / "wallbounce"), "operator",
                                                  "--namespace", self.namespace, "--metrics-port", str(self.port),
                                                  "--metrics-host", "127.0.0.1", "--tick", "0.25",
                                                  "--query-timeout", "2", *self.args], self.log, env=env).start()
        self.process.wait_until(self.healthy, 60, "healthy (/healthz)")
        return self

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
            return str(resp.read().decode())

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye, as a crash or an OOM kill."""
        assert self.process is not None and self.process.pid is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.popen.wait(timeout=10)  # type: ignore[union-attr]

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


class Cluster:
    """The objects of one test namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.api = api
        self.ns = namespace
        self.objects = client.CustomObjectsApi(api)
        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)

    # --- workloads (no controller-manager here: the test plays the Deployment controller's part) ---
    def deployment(self, name: str, available: int = 1, image: str = "wallbounce:1") -> None:
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{"name": "app", "image": image}]}}}}
        self.apps.create_namespaced_deployment(self.ns, body)
        self._roll(name, available)

    def _roll(self, name: str, available: int) -> str:
        """A new revision: the Deployment's revision annotation goes up and a ReplicaSet of the current pod template
        (named and labelled with its pod-template-hash, owned by the Deployment) reports ``available`` replicas."""
        dep: Any = self.apps.read_namespaced_deployment(name, self.ns)
        revision = str(int((dep.metadata.annotations or {}).get(REVISION, "0")) + 1)
        patched: Any = self.apps.patch_namespaced_deployment(name, self.ns,
                                                             {"metadata": {"annotations": {REVISION: revision}}})
        template = self.api.sanitize_for_serialization(dep.spec.template)
        digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        labels = {**(template["metadata"].get("labels") or {}), "pod-template-hash": digest}
        self.apps.create_namespaced_replica_set(self.ns, {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": f"{name}-{digest}", "labels": labels, "annotations": {REVISION: revision},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                                              "uid": dep.metadata.uid, "controller": True}]},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {**template, "metadata": {**template["metadata"], "labels": labels}}}})
        self.set_available(name, available, generation=patched.metadata.generation)  # annotations bump it too
        return digest

    def current_replicaset(self, name: str) -> str:
        dep: Any = self.apps.read_namespaced_deployment(name, self.ns)
        revision = (dep.metadata.annotations or {}).get(REVISION)
        for rs in self.apps.list_namespaced_replica_set(self.ns).items:
            owners = [o.name for o in rs.metadata.owner_references or []]
            if name in owners and (rs.metadata.annotations or {}).get(REVISION) == revision:
                return str(rs.metadata.name)
        raise LookupError(f"no current ReplicaSet of {name}")

    def set_available(self, name: str, available: int, generation: int | None = None) -> None:
        """The current revision's ReplicaSet reports ``available`` replicas (the Deployment counts them too)."""
        rs = self.current_replicaset(name)
        self.apps.patch_namespaced_replica_set_status(rs, self.ns, {"status": {
            "replicas": 1, "readyReplicas": available, "availableReplicas": available}})
        if generation is None:
            generation = self.apps.read_namespaced_deployment(name, self.ns).metadata.generation
        self.apps.patch_namespaced_deployment_status(name, self.ns, {"status": {
            "observedGeneration": generation, "replicas": 1, "readyReplicas": available,
            "availableReplicas": available}})

    def set_image(self, name: str, image: str, available: int = 1) -> str:
        """A new pod template: a new revision whose ReplicaSet reports ``available`` replicas; the previous
        revision's pods keep serving (the Deployment still counts one available replica)."""
        self.apps.patch_namespaced_deployment(name, self.ns, {"spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": image}]}}}})
        digest = self._roll(name, available)
        self.apps.patch_namespaced_deployment_status(name, self.ns, {"status": {"availableReplicas": 1}})
        return digest

    def pair(self, prefix: str = "techsapo") -> None:
        for variant, image in (("stable", "wallbounce:1"), ("canary", "wallbounce:2")):
            self.deployment(f"{prefix}-{variant}", image=image)
            self.core.create_namespaced_service(self.ns, {"metadata": {"name": f"{prefix}-{variant}"},
                                                          "spec": {"ports": [{"port": 80}]}})

    # --- routes ---
    def httproute(self, name: str = "techsapo", prefix: str = "techsapo", owner: str | None = None) -> None:
        """The route, owned (annotation ``wallbounce.dev/rollout``) by rollout ``owner`` when given."""
        meta: dict[str, Any] = {"name": name}
        if owner:
            meta["annotations"] = {ROUTE_OWNER: owner}
        self.objects.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", self.ns, "httproutes", {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": meta,
            "spec": {"rules": [{"backendRefs": [{"name": f"{prefix}-stable", "port": 80, "weight": 100},
                                                {"name": f"{prefix}-canary", "port": 80, "weight": 0}]}]}})

    def route_weights(self, name: str = "techsapo") -> tuple[int, int]:
        route: Any = self.objects.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", self.ns,
                                                               "httproutes", name)
        refs = route["spec"]["rules"][0]["backendRefs"]
        return int(refs[0]["weight"]), int(refs[1]["weight"])

    def set_route_weights(self, stable: int, canary: int, name: str = "techsapo") -> None:
        route: Any = self.objects.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", self.ns,
                                                               "httproutes", name)
        route["spec"]["rules"][0]["backendRefs"][0]["weight"] = stable
        route["spec"]["rules"][0]["backendRefs"][1]["weight"] = canary
        self.objects.replace_namespaced_custom_object("gateway.networking.k8s.io", "v1", self.ns, "httproutes",
                                                      name, route)

    # --- rollouts ---
    def own_route(self, route: str, rollout: str) -> None:
        """As the route's owner would: annotate it for the rollout that may set its weights."""
        self.objects.patch_namespaced_custom_object("gateway.networking.k8s.io", "v1", self.ns, "httproutes", route,
                                                    {"metadata": {"annotations": {ROUTE_OWNER: rollout}}})

    def rollout(self, name: str, prometheus: str, *, phases: list[dict[str, Any]] | None = None,
                route: str = "techsapo", prefix: str = "techsapo", own_route: bool = True,
                **spec: Any) -> dict[str, Any]:
        """A rollout of the pair ``prefix``-stable/-canary over the HTTPRoute ``route`` (annotated for it unless
        ``own_route`` is false)."""
        if own_route:
            self.own_route(route, name)
        analysis = {"prometheus": {"address": prometheus}, "interval": "1s", "window": "8s",
                    "confidenceLevel": 0.95, "errorLimit": 20}
        analysis.update(spec.pop("analysis", {}))
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WallBounceRollout", "metadata": {"name": name},
                "spec": {"stable": {"deployment": f"{prefix}-stable", "service": f"{prefix}-stable"},
                         "canary": {"deployment": f"{prefix}-canary", "service": f"{prefix}-canary"},
                         "trafficRouting": {"gatewayAPI": {"httpRoute": route}},
                         "analysis": analysis,
                         "phases": phases if phases is not None else [
                             {"weight": w, "duration": "2s", "minRequests": 20} for w in (1, 2, 10, 20, 35, 50)],
                         **spec}}
        created: Any = self.objects.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)
        return dict(created)

    def get(self, name: str) -> dict[str, Any]:
        obj: Any = self.objects.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)
        return dict(obj)

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def wait_phase(self, name: str, phase: str, timeout: float = 90) -> dict[str, Any]:
        return dict(wait_for(f"{name} to be {phase}",
                             lambda: (s := self.status(name)).get("phase") == phase and s, timeout))

    def events(self, name: str) -> list[tuple[str, str]]:
        listed = self.core.list_namespaced_event(self.ns, field_selector=f"involvedObject.name={name}")
        items = sorted(listed.items, key=lambda e: (e.metadata.creation_timestamp, e.metadata.name))
        return [(e.reason, e.message) for e in items]

    def reasons(self, name: str) -> list[str]:
        return [r for r, _ in self.events(name)]

    def wait_reason(self, name: str, reason: str, timeout: float = 20) -> list[str]:
        """Events are posted after the status and route writes: wait for one rather than race it."""
        return list(wait_for(f"event {reason} on {name}", lambda: (r := self.reasons(name)) and reason in r and r,
                             timeout))


def run_cli(*args: str, kubeconfig: str) -> subprocess.CompletedProcess[str]:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "KUBECONFIG": kubeconfig, "PATH": f"{bindir}:{os.environ['PATH']}"}
    return subprocess.run(list(args), capture_output=True, text=True, env=env, timeout=60)
