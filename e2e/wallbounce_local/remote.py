"""The same end-to-end scenarios against a real cluster (kind, see ``e2e/kind/``) instead of the local stack.

``RemoteStack`` offers what the scenarios use from ``Stack`` — the Gateway URL, the route, the rollouts, the
canary's simulators, Prometheus queries, killing the operator and stopping Prometheus — on objects that already
run in the cluster. The suite uses it when ``WALLBOUNCE_E2E_KUBECONFIG`` is set; the other variables say where the
cluster's parts are reachable from the test machine (kind maps NodePorts to loopback ports):

| variable | default | what |
|---|---|---|
| ``WALLBOUNCE_E2E_KUBECONFIG`` | — | the cluster |
| ``WALLBOUNCE_E2E_NAMESPACE`` | ``llm`` | where the chart installed the service pair and the route |
| ``WALLBOUNCE_E2E_GATEWAY_URL`` | ``http://127.0.0.1:30080`` | the Gateway's listener |
| ``WALLBOUNCE_E2E_PROMETHEUS_URL`` | ``http://127.0.0.1:30090`` | Prometheus, for the tests' own queries |
| ``WALLBOUNCE_E2E_PROMETHEUS_ADDRESS`` | ``http://prometheus.monitoring:9090`` | as the operator sees it |
| ``WALLBOUNCE_E2E_SIM_STABLE`` / ``_CANARY`` | ``http://127.0.0.1:30101`` / ``30102`` | each variant's simulators |
| ``WALLBOUNCE_E2E_OPERATOR_NAMESPACE`` | ``wallbounce-system`` | where the operator's pod runs |

Pods run for real there, so Deployment status is the controller's (``set_available`` does nothing), the operator
is killed by deleting its pod, and Prometheus is stopped by scaling its Deployment to zero.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

from . import gateway
from .prometheus import Prometheus
from .stack import VARIANTS, Options, Stack


class _RemotePrometheus(Prometheus):
    def __init__(self, url: str, workdir: Path) -> None:
        super().__init__(workdir)
        self._url = url.rstrip("/")

    @property
    def url(self) -> str:
        return self._url


class _Endpoint:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")


class RemoteStack(Stack):
    """A running cluster with the chart, Traefik, Prometheus and the simulators installed (``e2e/kind/run.sh``)."""

    def __init__(self, kubeconfig: str, workdir: Path) -> None:
        env = os.environ.get
        super().__init__(workdir, Options(namespace=env("WALLBOUNCE_E2E_NAMESPACE", "llm")))
        self.kubeconfig = kubeconfig
        self.prometheus_address = env("WALLBOUNCE_E2E_PROMETHEUS_ADDRESS", "http://prometheus.monitoring:9090")
        self.prometheus = _RemotePrometheus(env("WALLBOUNCE_E2E_PROMETHEUS_URL", "http://127.0.0.1:30090"), workdir)
        self.traefik = _Endpoint(env("WALLBOUNCE_E2E_GATEWAY_URL", "http://127.0.0.1:30080"))  # type: ignore[assignment]
        self.sim_urls = {"stable": env("WALLBOUNCE_E2E_SIM_STABLE", "http://127.0.0.1:30101"),
                         "canary": env("WALLBOUNCE_E2E_SIM_CANARY", "http://127.0.0.1:30102")}

    def start(self) -> Any:
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=self.kubeconfig)  # type: ignore[no-untyped-call]
        self.backends = {v: gateway.Backend(f"{self.options.prefix}-{v}", "", 0) for v in VARIANTS}
        gateway.wait("the Gateway to answer", lambda: self.ask_gateway().get("variant") in VARIANTS, 120, every=1)
        return None

    def stop(self) -> None:
        if self.api is not None:
            self.api.close()
            self.api = None

    def rollout_body(self, name: str, phases: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        body = super().rollout_body(name, phases, **kwargs)
        body["spec"]["analysis"]["prometheus"]["address"] = self.prometheus_address
        return body

    def set_available(self, deployment: str, available: int) -> None:
        """Real pods: the Deployment controller reports availability."""

    def _kubectl(self, *args: str) -> None:
        subprocess.run(["kubectl", "--kubeconfig", self.kubeconfig, *args], check=True, timeout=180,
                       stdout=subprocess.DEVNULL)

    def kill_operator(self) -> None:
        self._kubectl("delete", "pod", "-n", os.environ.get("WALLBOUNCE_E2E_OPERATOR_NAMESPACE", "wallbounce-system"),
                      "-l", "app.kubernetes.io/component=operator", "--grace-period=0", "--force", "--wait=true")

    def start_operator(self) -> Any:
        ns = os.environ.get("WALLBOUNCE_E2E_OPERATOR_NAMESPACE", "wallbounce-system")
        self._kubectl("wait", "pod", "-n", ns, "-l", "app.kubernetes.io/component=operator",
                      "--for=condition=Ready", "--timeout=120s")
        return None

    def stop_prometheus(self) -> None:
        self._kubectl("scale", "deployment/prometheus", "-n", "monitoring", "--replicas=0")
        self._kubectl("wait", "pod", "-n", "monitoring", "-l", "app=prometheus", "--for=delete", "--timeout=120s")

    def restart_prometheus(self) -> None:
        self._kubectl("scale", "deployment/prometheus", "-n", "monitoring", "--replicas=1")
        self._kubectl("rollout", "status", "deployment/prometheus", "-n", "monitoring", "--timeout=180s")
        assert self.prometheus is not None
        gateway.wait("Prometheus to answer", self.prometheus.ready, 120, every=1)
        time.sleep(1)
