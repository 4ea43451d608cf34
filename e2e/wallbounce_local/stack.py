"""The whole system on one machine, for the demo and the end-to-end suite alike: a list of components
(``components``: one module each), started in order and stopped in reverse, plus the Kubernetes objects
between them.

- the local control plane (etcd + kube-apiserver) with a **loopback Service CIDR**, our CRD and the Gateway API CRDs;
- the provider simulators, one process per variant, so the canary's providers can fail or disagree alone;
- two wall-bounce service processes (``stable`` and ``canary``), each with its own configuration, each listening
  on its Service's ClusterIP:port (see ``gateway``: that is how Traefik reaches them without EndpointSlices);
- Deployments ``techsapo-stable``/``techsapo-canary`` as stand-ins, their status set available;
- Traefik as the Gateway API data plane: GatewayClass, Gateway (HTTP listener on a loopback port), and the
  HTTPRoute ``techsapo`` with both Services as weighted backends (100/0);
- Prometheus scraping both services (target labels ``namespace`` and ``service``) and the operator;
- the operator as a process.

``stack.rollouts`` is the ``RolloutDriver`` of its namespace (the simulators set the canary's traffic);
``stack.canary`` reads the canary's metrics as the operator's default queries do. Faults: ``kill_operator``,
``start_operator``, ``stop_prometheus``, ``restart_prometheus``.

Everything lives under ``state_dir`` (logs, configurations, the kubeconfig, ``stack.json``) and every process
carries ``state_dir`` on its command line, so ``wallbounce-local down`` (``stop_state_dir``) stops it all.
"""

from __future__ import annotations

import ipaddress
import json
import time
import urllib.error
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from wallbounce_api.metrics import Variant

from . import controlplane, crds, gateway, procs, thirdparty
from .components import Component, Operator
from .components.base import ProcessComponent, start_together
from .components.service import ServiceProcess
from .components.simulators import Simulators
from .components.traefik import Traefik
from .driver import RolloutDriver, httproute_body
from .loadgen import auth_headers
from .prometheus import Prometheus, PrometheusAPI, static_job
from .promql import CanaryMetrics
from .traffic import HEALTHY_SCRIPT, VENDORS, SimulatorTraffic
from .web import http_json

VARIANTS = tuple(str(v) for v in Variant)
STACK_FILE = "stack.json"
#: Rollouts of the stack: analysed every second over 6 s, raw ratios (a few requests cannot reach statistical
#: power), 20 errors in a row before a pause.
ANALYSIS = {"interval": "1s", "window": "6s", "confidenceLevel": 0.0, "errorLimit": 20}


@dataclass
class Options:
    """What the stack looks like; the defaults suit the demo (tests pass another CIDR and namespace)."""

    namespace: str = "llm"
    service_cidr: str = "127.0.100.0/24"
    prefix: str = "techsapo"
    route: str = "techsapo"
    gateway: str = "techsapo-gateway"
    gateway_class: str = "wallbounce-traefik"
    sim_latency_s: float = 0.05
    scrape_interval: str = "1s"
    operator_tick: float = 0.25

    def ip(self, variant: str) -> str:
        net = ipaddress.ip_network(self.service_cidr)
        return str(net.network_address + (10 if variant == "stable" else 11))


@dataclass
class StackInfo:
    """Where the running stack is: written to ``<state_dir>/stack.json``."""

    state_dir: str
    kubeconfig: str
    namespace: str
    gateway_url: str
    prometheus_url: str
    operator_metrics: str
    services: dict[str, str]
    simulators: dict[str, str]
    pids: dict[str, int]
    logs: dict[str, str]
    started_at: float
    start_seconds: float
    data_plane: str = "loopback Service CIDR + explicit ClusterIPs + Traefik native LB"
    extra: dict[str, Any] = field(default_factory=dict)


def stop_state_dir(state_dir: Path) -> list[int]:
    """Like ``controlplane.stop_by_state_dir`` (recorded pids, then every process mentioning ``state_dir``),
    but never this process's own ancestors: ``--state-dir X`` on a shell's or tmux's command line mentions X too."""
    mine = procs.ancestors()
    stopped: list[int] = []
    info = read_info(state_dir)
    plane = controlplane.read_state(state_dir)
    recorded = list((info.pids if info else {}).values()) + list((plane.pids if plane else {}).values())
    for pid in [*recorded, *procs.pids_mentioning(str(state_dir))]:
        if pid in mine or pid in stopped or not procs.pid_alive(pid):
            continue
        if pid in recorded and str(state_dir) not in " ".join(procs.cmdline(pid)) and not _is_plane(pid):
            continue  # a recycled pid: not ours any more
        procs.terminate(pid)
        stopped.append(pid)
    return stopped


def _is_plane(pid: int) -> bool:
    cmd = procs.cmdline(pid)
    return bool(cmd) and Path(cmd[0]).name in ("etcd", "kube-apiserver")


def read_info(state_dir: Path) -> StackInfo | None:
    try:
        return StackInfo(**json.loads((state_dir / STACK_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


class Stack:
    """``start()`` brings every component up in order (fails loudly, naming the part and its log); ``stop()``
    stops them in reverse, then anything left that mentions the state directory."""

    def __init__(self, state_dir: Path, options: Options | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.options = options or Options()
        self.progress = progress or (lambda _msg: None)
        self.log_dir = self.state_dir / "logs"
        self.marker = f"wallbounce_state={self.state_dir}"  # on every Python child's command line
        self.api: Any = None
        self.plane = controlplane.ControlPlane(self.state_dir, service_cidr=self.options.service_cidr)
        self.backends: dict[str, gateway.Backend] = {}
        self.sims: dict[str, Simulators] = {}
        self.services: dict[str, ServiceProcess] = {}
        self.traefik: Traefik | None = None
        self.prometheus: Prometheus | PrometheusAPI | None = None
        self.operator: Operator | None = None
        self.started: list[Component] = []  # in start order
        self.info: StackInfo | None = None
        self._rollouts: RolloutDriver[SimulatorTraffic] | None = None

    # ----- what tests and the demo use --------------------------------------------------------------------

    @property
    def namespace(self) -> str:
        return self.options.namespace

    @property
    def rollouts(self) -> RolloutDriver[SimulatorTraffic]:
        """The driver of the stack's namespace: its pair, its route, its Prometheus, its simulators."""
        assert self._rollouts is not None, "the stack has not started"
        return self._rollouts

    def _make_driver(self, simulators: dict[str, str], *, controller: bool = False) -> None:
        """The driver, once the API server and the simulators run (rollouts name Prometheus: set when it runs)."""
        self._rollouts = RolloutDriver(self.api, self.namespace, prometheus="", traffic=SimulatorTraffic(simulators),
                                       analysis=ANALYSIS, prefix=self.options.prefix, route=self.options.route,
                                       controller=controller)

    @property
    def prometheus_address(self) -> str:
        """Prometheus as the operator reaches it (rollouts name it)."""
        assert self.prometheus is not None
        return self.prometheus.url

    @property
    def canary(self) -> CanaryMetrics:
        """The canary's error rate and confidence as the operator's default queries see them."""
        assert self.prometheus is not None
        return CanaryMetrics(self.prometheus, self.namespace, f"{self.options.prefix}-canary")

    @property
    def gateway_url(self) -> str:
        assert self.traefik is not None
        return self.traefik.url

    def ask_gateway(self, prompt: str = "Is the route up?") -> dict[str, Any]:
        return dict(http_json(f"{self.gateway_url}/api/v1/generate", {"prompt": prompt}, timeout=30,
                              headers=auth_headers()))

    def logs(self) -> dict[str, Path]:
        return {name: path for part in self.started for name, path in part.logs.items()}

    # ----- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> StackInfo:
        begun = time.monotonic()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        try:
            self._start_all()
        except BaseException:
            self.stop()
            raise
        self.info = self._write_info(round(time.monotonic() - begun, 1))
        return self.info

    def _start_all(self) -> None:
        o = self.options
        self.progress(f"control plane (etcd + kube-apiserver, Service CIDR {o.service_cidr})")
        self._up(self.plane)
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=str(self.plane.kubeconfig))  # type: ignore[no-untyped-call]
        self.progress("CRDs: WallBounceRollout + Gateway API v1.4.1")
        thirdparty.install(self.api, ["gateway-api"])
        crds.install_wallbounce_crd(self.api)
        self._ensure_namespace()
        port = procs.free_port()
        self.backends = {v: gateway.Backend(f"{o.prefix}-{v}", o.ip(v), port) for v in VARIANTS}
        self.progress("provider simulators (one set per variant)")
        self.sims = {v: Simulators(v, self.log_dir / f"simulators-{v}.log", latency_s=o.sim_latency_s,
                                   marker=self.marker) for v in VARIANTS}
        self._up_together(list(self.sims.values()))
        self._make_driver({v: s.url for v, s in self.sims.items()})
        self.progress("Deployments (stand-ins, available: a ReplicaSet of their current revision each)")
        for v in VARIANTS:
            self.rollouts.create_deployment(self.backends[v].name, image=f"wallbounce:{v}")
        self.progress(f"service processes on {self.backends['stable'].address} and {self.backends['canary'].address}")
        self.services = {v: ServiceProcess(v, self.backends[v], self.sims[v].url, self.state_dir / "services" / v,
                                           self.log_dir / f"service-{v}.log", marker=self.marker,
                                           revision=self.rollouts.current_revision(self.backends[v].name))
                         for v in VARIANTS}
        self._up_together(list(self.services.values()))
        self.progress("Services, Gateway, HTTPRoute")
        self.traefik = Traefik(self.log_dir / "traefik", self.plane.kubeconfig, o.namespace)
        self._create_objects(self.traefik.port)
        self.progress("Traefik (Gateway API data plane)")
        self._up(self.traefik)
        self._wait_gateway()
        self._warm_up()
        self.progress("Prometheus")
        self.operator = Operator(self.log_dir / "operator.log", self.plane.kubeconfig, namespaces=[o.namespace],
                                 tick=o.operator_tick, marker=self.marker)
        self.operator.port = procs.free_port()  # Prometheus scrapes it: fixed before either starts
        self.prometheus = Prometheus(self.state_dir / "prometheus", self._scrape_jobs(),
                                     scrape_interval=o.scrape_interval)
        self._up(self.prometheus)
        self.rollouts.prometheus = self.prometheus_address
        self.operator.args = ["--prometheus", self.prometheus_address, "--guard-period", "1"]
        self.progress("operator")
        self._up(self.operator)

    def _up(self, part: Component) -> None:
        part.start()
        self.started.append(part)

    def _up_together(self, parts: list[ProcessComponent]) -> None:
        self.started.extend(parts)  # stopped too if one of them fails
        start_together(parts)

    def stop(self) -> None:
        """Stop every part in reverse order (operator first, control plane last), then anything still
        mentioning the state dir."""
        for part in reversed(self.started):
            part.stop()
        self.started.clear()
        if self.api is not None:
            self.api.close()
            self.api = None
        stop_state_dir(self.state_dir)

    # ----- the objects between the components --------------------------------------------------------------

    def _ensure_namespace(self) -> None:
        from kubernetes import client

        try:
            core: Any = client.CoreV1Api(self.api)
            core.create_namespace({"metadata": {"name": self.options.namespace}})
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def _create_objects(self, listener_port: int) -> None:
        """The Services, the Gateway (its listener on Traefik's entryPoint port) and the HTTPRoute over both
        Services."""
        o, driver = self.options, self.rollouts
        for v in VARIANTS:
            driver.core.create_namespaced_service(o.namespace, gateway.service_body(self.backends[v]))
        gc, gw = gateway.gateway_objects(o.namespace, o.gateway, o.gateway_class, listener_port)
        driver.objects.create_cluster_custom_object(gateway.GATEWAY_GROUP, gateway.GATEWAY_VERSION,
                                                    "gatewayclasses", gc)
        driver.objects.create_namespaced_custom_object(gateway.GATEWAY_GROUP, gateway.GATEWAY_VERSION, o.namespace,
                                                       "gateways", gw)
        stable, canary = self.backends["stable"], self.backends["canary"]
        driver.create_route_body(httproute_body(o.route, stable.name, canary.name, stable.port, gateway=o.gateway))

    def _wait_gateway(self) -> None:
        o = self.options
        procs.wait_for("the Gateway to be Programmed by Traefik",
                       lambda: gateway.gateway_programmed(self.api, o.namespace, o.gateway), 60,
                       tolerate=(Exception,))
        procs.wait_for("a request through the Gateway to reach the stable service",
                       lambda: self.ask_gateway().get("variant") == "stable", 60, every=0.5, tolerate=(Exception,))

    def _warm_up(self) -> None:
        """A few requests straight to each service, one of them failing, so that its request counters exist
        for both outcomes before Prometheus first scrapes them: the service creates label children lazily,
        ``increase()`` cannot count a series' first sample, and the operator's default error query reads an
        absent ``outcome="error"`` series as no data (NoData, never a Pass) instead of zero errors."""
        for v in VARIANTS:
            sims = SimulatorTraffic({v: self.sims[v].url})
            sims.script(v, {vendor: {"error_status": 500} for vendor in VENDORS})
            try:
                self.services[v].generate("warm-up: an error, on purpose")
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    raise
            sims.script(v, {vendor: HEALTHY_SCRIPT for vendor in VENDORS})
            for i in range(3):
                self.services[v].generate(f"warm-up {i}: is the service up?")

    def _scrape_jobs(self) -> list[dict[str, Any]]:
        o = self.options
        assert self.operator is not None
        jobs = [static_job(f"{o.prefix}-{v}", [self.backends[v].address],
                           {"namespace": o.namespace, "service": self.backends[v].name}) for v in VARIANTS]
        jobs.append(static_job("wallbounce-operator", [f"127.0.0.1:{self.operator.port}"]))
        return jobs

    # ----- faults ----------------------------------------------------------------------------------------

    def kill_operator(self) -> None:
        """SIGKILL the operator's process group: no cleanup, as a crash or an OOM kill would."""
        assert self.operator is not None
        self.operator.kill()

    def start_operator(self) -> None:
        """Start the operator again, on the same metrics port (Prometheus scrapes it)."""
        assert self.operator is not None
        self.operator.start()

    def stop_prometheus(self) -> None:
        assert isinstance(self.prometheus, Prometheus)
        self.prometheus.stop()

    def restart_prometheus(self) -> None:
        """Start Prometheus again on the same port and data (the rollouts name its address)."""
        assert isinstance(self.prometheus, Prometheus)
        self.prometheus.start()

    # ----- the state file --------------------------------------------------------------------------------

    def _write_info(self, seconds: float) -> StackInfo:
        assert self.traefik and self.prometheus and self.operator
        processes = [p for p in self.started if isinstance(p, ProcessComponent)]
        info = StackInfo(
            state_dir=str(self.state_dir), kubeconfig=str(self.plane.kubeconfig), namespace=self.options.namespace,
            gateway_url=self.traefik.url, prometheus_url=self.prometheus.url,
            operator_metrics=f"{self.operator.url}/metrics",
            services={v: s.url for v, s in self.services.items()}, simulators={v: s.url for v, s in self.sims.items()},
            pids={p.name: p.pid for p in processes if p.pid is not None},
            logs={p.name: str(p.log) for p in processes},
            started_at=time.time(), start_seconds=seconds)
        (self.state_dir / STACK_FILE).write_text(json.dumps(asdict(info), indent=2))
        return info


def compressed_ladder(durations: float = 3.0,
                      weights: tuple[int, ...] = (1, 2, 10, 20, 35, 50)) -> list[dict[str, Any]]:
    """The seed's ladder with durations of seconds. Small traffic cannot reach the statistical power of the
    default thresholds (about 480 clean requests at 1 %), so the compressed ladder judges raw ratios
    (``confidenceLevel: 0`` in the rollout) with looser error limits and a few canary requests per window."""
    phases = []
    for w in weights:
        phases.append({
            "weight": w, "duration": f"{durations:g}s", "minRequests": 1 if w <= 2 else 3 if w <= 10 else 5,
            "promote": {"maxErrorRate": 0.02, "maxLatencyP95": "5s", "minConsensusConfidence": 0.7},
            "rollback": {"errorRate": 0.1, "latencyP95": "10s", "consensusConfidence": 0.6},
        })
    return phases
