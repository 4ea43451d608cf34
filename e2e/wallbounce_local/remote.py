"""The same end-to-end scenarios against a real cluster (kind, see ``e2e/kind/``) instead of the local stack.

``RemoteStack`` offers what the scenarios use from ``Stack`` — the Gateway URL, the rollout driver (the route,
the rollouts, the canary's simulators), Prometheus queries, killing the operator and stopping Prometheus — on
objects that already run in the cluster. The suite uses it when ``WALLBOUNCE_E2E_KUBECONFIG`` is set; the other
variables say where the cluster's parts are reachable from the test machine (kind maps NodePorts to loopback
ports):

| variable | default | what |
|---|---|---|
| ``WALLBOUNCE_E2E_KUBECONFIG`` | — | the cluster |
| ``WALLBOUNCE_E2E_NAMESPACE`` | ``llm`` | where the chart installed the service pair and the route |
| ``WALLBOUNCE_E2E_GATEWAY_URL`` | ``http://127.0.0.1:30080`` | the Gateway's listener |
| ``WALLBOUNCE_E2E_PROMETHEUS_URL`` | ``http://127.0.0.1:30090`` | Prometheus, for the tests' own queries |
| ``WALLBOUNCE_E2E_PROMETHEUS_ADDRESS`` | ``http://prometheus.monitoring:9090`` | as the operator sees it |
| ``WALLBOUNCE_E2E_SIM_STABLE`` / ``_CANARY`` | ``http://127.0.0.1:30101`` / ``30102`` | each variant's simulators |
| ``WALLBOUNCE_E2E_OPERATOR_NAMESPACE`` | ``wallbounce-system`` | where the operator's pod runs |

Pods run for real there, so Deployment status is the controller's (the driver's ``set_available`` does
nothing), the operator is killed by deleting its pod, and Prometheus is stopped by scaling its Deployment to zero.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from . import procs
from .prometheus import PrometheusAPI
from .stack import VARIANTS, Options, Stack


class RemoteStack(Stack):
    """A running cluster with the chart, Traefik, Prometheus and the simulators installed (``e2e/kind/run.sh``)."""

    def __init__(self, kubeconfig: str, workdir: Path) -> None:
        env = os.environ.get
        super().__init__(workdir, Options(namespace=env("WALLBOUNCE_E2E_NAMESPACE", "llm")))
        self.kubeconfig = kubeconfig
        self.remote_prometheus = env("WALLBOUNCE_E2E_PROMETHEUS_ADDRESS", "http://prometheus.monitoring:9090")
        self.prometheus = PrometheusAPI(env("WALLBOUNCE_E2E_PROMETHEUS_URL", "http://127.0.0.1:30090"))
        self.remote_gateway = env("WALLBOUNCE_E2E_GATEWAY_URL", "http://127.0.0.1:30080").rstrip("/")
        self.sim_urls = {"stable": env("WALLBOUNCE_E2E_SIM_STABLE", "http://127.0.0.1:30101"),
                         "canary": env("WALLBOUNCE_E2E_SIM_CANARY", "http://127.0.0.1:30102")}
        self.operator_namespace = env("WALLBOUNCE_E2E_OPERATOR_NAMESPACE", "wallbounce-system")

    @property
    def gateway_url(self) -> str:
        return self.remote_gateway

    @property
    def prometheus_address(self) -> str:
        return self.remote_prometheus

    def start(self) -> Any:
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=self.kubeconfig)  # type: ignore[no-untyped-call]
        self._make_driver(self.sim_urls, controller=True)  # real pods: the Deployment controller reports status
        self.rollouts.prometheus = self.prometheus_address
        procs.wait_for("the Gateway to answer", lambda: self.ask_gateway().get("variant") in VARIANTS, 120, every=1,
                       tolerate=(Exception,))
        return None

    def stop(self) -> None:
        if self.api is not None:
            self.api.close()
            self.api = None

    def _kubectl(self, *args: str) -> None:
        subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *args], check=True, timeout=180,
                       stdout=subprocess.DEVNULL)

    def kill_operator(self) -> None:
        self._kubectl("delete", "pod", "-n", self.operator_namespace, "-l", "app.kubernetes.io/component=operator",
                      "--grace-period=0", "--force", "--wait=true")

    def start_operator(self) -> None:
        self._kubectl("wait", "pod", "-n", self.operator_namespace, "-l", "app.kubernetes.io/component=operator",
                      "--for=condition=Ready", "--timeout=120s")

    def stop_prometheus(self) -> None:
        self._kubectl("scale", "deployment/prometheus", "-n", "monitoring", "--replicas=0")
        self._kubectl("wait", "pod", "-n", "monitoring", "-l", "app=prometheus", "--for=delete", "--timeout=120s")

    def restart_prometheus(self) -> None:
        self._kubectl("scale", "deployment/prometheus", "-n", "monitoring", "--replicas=1")
        self._kubectl("rollout", "status", "deployment/prometheus", "-n", "monitoring", "--timeout=180s")
        assert self.prometheus is not None
        procs.wait_for("Prometheus to answer", self.prometheus.ready, 120, every=1, tolerate=(Exception,))
        time.sleep(1)
