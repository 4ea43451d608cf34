"""Traefik v3.6 as the Gateway API data plane of the local stack, and the Kubernetes objects it serves.

The API server refuses EndpointSlice addresses in 127.0.0.0/8, so the backends are reached another way:
the control plane runs with a *loopback Service CIDR* (e.g. ``127.0.100.0/24``), each Service gets an
explicit ``clusterIP`` in it, carries Traefik's ``traefik.io/service.nativelb: "true"`` annotation (Traefik
then dials ``ClusterIP:port`` instead of reading EndpointSlices), and the service process binds that
``ClusterIP:port`` itself. Traffic goes client → Traefik → service process; nothing of ours is in between.

Traefik's flags: Gateway provider on, one HTTP entryPoint whose port equals the Gateway listener's port,
the ``ping`` endpoint on a separate loopback entryPoint, no update check, no anonymous usage reports,
no provider throttle (weight changes apply as soon as the watch sees them).
"""

from __future__ import annotations

import os
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import procs, testbin

GATEWAY_GROUP, GATEWAY_VERSION = "gateway.networking.k8s.io", "v1"
CONTROLLER_NAME = "traefik.io/gateway-controller"
NATIVE_LB = "traefik.io/service.nativelb"


@dataclass
class Backend:
    """One selector-less Service whose ClusterIP:port is where its process listens."""

    name: str
    cluster_ip: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.cluster_ip}:{self.port}"


class Traefik:
    """The Traefik process: ``start()`` waits for ``/ping``; ``url`` is the Gateway's HTTP entry point."""

    def __init__(self, workdir: Path, kubeconfig: Path, namespace: str, *, start_timeout: float = 60.0) -> None:
        self.workdir = workdir.resolve()
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.start_timeout = start_timeout
        self.log = self.workdir / "traefik.log"
        self.port = 0
        self.admin_port = 0
        self.process: procs.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int | None = None) -> Traefik:
        binary = testbin.binary("traefik", part="traefik")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or procs.free_port()
        self.admin_port = procs.free_port()
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        self.process = procs.Process(
            "traefik",
            [
                str(binary),
                "--global.checkNewVersion=false",
                "--global.sendAnonymousUsage=false",
                f"--entrypoints.web.address=127.0.0.1:{self.port}",
                f"--entrypoints.traefik.address=127.0.0.1:{self.admin_port}",
                "--ping=true",
                "--providers.kubernetesgateway=true",
                f"--providers.kubernetesgateway.namespaces={self.namespace}",
                "--providers.kubernetesgateway.statusaddress.ip=127.0.0.1",
                "--providers.providersthrottleduration=0s",
                "--log.level=INFO",
                f"--log.filepath={self.log}",  # also marks the process as the stack's (state dir on its command line)
            ],
            self.workdir / "traefik.out",
            env=env,
        ).start()
        self.process.wait_until(self._ping, self.start_timeout, "answering /ping")
        return self

    def _ping(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}/ping", timeout=2) as resp:
            return bool(resp.status == 200)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


def service_body(backend: Backend) -> dict[str, Any]:
    """A selector-less Service at a fixed loopback ClusterIP, served by Traefik's native load balancer."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": backend.name, "annotations": {NATIVE_LB: "true"}, "labels": {"app": backend.name}},
        "spec": {
            "clusterIP": backend.cluster_ip,
            "ports": [{"name": "http", "port": backend.port, "targetPort": backend.port, "protocol": "TCP"}],
        },
    }


def gateway_objects(namespace: str, gateway: str, gateway_class: str, port: int) -> list[dict[str, Any]]:
    """The GatewayClass (Traefik's controller) and a Gateway with one HTTP listener on ``port``."""
    return [
        {
            "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
            "kind": "GatewayClass",
            "metadata": {"name": gateway_class},
            "spec": {"controllerName": CONTROLLER_NAME},
        },
        {
            "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
            "kind": "Gateway",
            "metadata": {"name": gateway, "namespace": namespace},
            "spec": {
                "gatewayClassName": gateway_class,
                "listeners": [{"name": "web", "port": port, "protocol": "HTTP",
                               "allowedRoutes": {"namespaces": {"from": "Same"}}}],
            },
        },
    ]


def httproute_body(name: str, gateway: str, stable: Backend, canary: Backend, canary_weight: int = 0) -> dict[str, Any]:
    """The user's HTTPRoute: one rule, stable and canary as weighted backends (the operator owns the weights)."""
    return {
        "apiVersion": f"{GATEWAY_GROUP}/{GATEWAY_VERSION}",
        "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": gateway}],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [
                    {"name": stable.name, "port": stable.port, "weight": 100 - canary_weight},
                    {"name": canary.name, "port": canary.port, "weight": canary_weight},
                ],
            }],
        },
    }


def gateway_programmed(api_client: Any, namespace: str, gateway: str) -> bool:
    """True once Traefik has accepted the Gateway and written ``Programmed=True``."""
    from kubernetes import client

    obj: Any = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GATEWAY_GROUP, GATEWAY_VERSION, namespace, "gateways", gateway)
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Programmed" and c.get("status") == "True" for c in conditions)


def wait(what: str, check: Any, timeout: float, every: float = 0.2) -> Any:
    """Poll ``check()`` until truthy (exceptions count as not yet); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # noqa: BLE001 - not there yet, whatever the reason
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
