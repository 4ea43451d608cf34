"""The Kubernetes objects Traefik (``components.traefik``) serves as the local stack's Gateway API data plane.

The API server refuses EndpointSlice addresses in 127.0.0.0/8, so the backends are reached another way:
the control plane runs with a *loopback Service CIDR* (e.g. ``127.0.100.0/24``), each Service gets an
explicit ``clusterIP`` in it, carries Traefik's ``traefik.io/service.nativelb: "true"`` annotation (Traefik
then dials ``ClusterIP:port`` instead of reading EndpointSlices), and the service process binds that
``ClusterIP:port`` itself. Traffic goes client → Traefik → service process; nothing of ours is in between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def gateway_programmed(api_client: Any, namespace: str, gateway: str) -> bool:
    """True once Traefik has accepted the Gateway and written ``Programmed=True``."""
    from kubernetes import client

    obj: Any = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        GATEWAY_GROUP, GATEWAY_VERSION, namespace, "gateways", gateway)
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Programmed" and c.get("status") == "True" for c in conditions)
