"""Traffic routers: one module per mesh (Gateway API, Istio, SMI) behind one small protocol."""

from __future__ import annotations

from ..model import Routing
from .base import Mesh, RouteError, RouteNotFound, TrafficRouter
from .gateway_api import GatewayAPI
from .istio import Istio
from .smi import SMI

MESHES: dict[str, Mesh] = {"gatewayAPI": GatewayAPI(), "istio": Istio(), "smi": SMI()}


def mesh_for(routing: Routing) -> Mesh:
    return MESHES[routing.kind]


__all__ = ["MESHES", "Mesh", "RouteError", "RouteNotFound", "TrafficRouter", "mesh_for"]
