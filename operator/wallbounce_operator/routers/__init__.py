"""Traffic routers: one module per mesh (Gateway API, Istio, SMI) behind one small protocol."""

from __future__ import annotations

from .base import Mesh, RouteError, RouteInvalid, RouteNotFound, RouteNotOwned, TrafficRouter
from .gateway_api import GatewayAPI
from .istio import Istio
from .smi import SMI

MESHES: dict[str, Mesh] = {"gatewayAPI": GatewayAPI(), "istio": Istio(), "smi": SMI()}

__all__ = ["MESHES", "Mesh", "RouteError", "RouteInvalid", "RouteNotFound", "RouteNotOwned", "TrafficRouter"]
