"""The parts of the local stack, one module each, behind one protocol (``base.Component``: ``start``, ``ready``,
``stop``, ``logs``): ``etcd``, ``apiserver`` (composed by ``controlplane.ControlPlane``), ``traefik``,
``simulators``, ``service`` (a wall-bounce service process), ``operator``, ``exporter`` (synthetic traffic);
Prometheus is ``wallbounce_local.prometheus.Prometheus`` and the load ``wallbounce_local.loadgen.LoadGenerator``.
"""

from .apiserver import ApiServer
from .base import Component, ProcessComponent, start_together
from .etcd import Etcd
from .exporter import Exporter
from .operator import Operator
from .service import ServiceProcess
from .simulators import Simulators
from .traefik import Traefik

__all__ = ["ApiServer", "Component", "Etcd", "Exporter", "Operator", "ProcessComponent", "ServiceProcess",
           "Simulators", "Traefik", "start_together"]
