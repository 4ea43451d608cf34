"""The whole system on one machine: one library that starts (and stops) every part, for the demo and the
end-to-end suite alike.

- the local control plane (etcd + kube-apiserver) with a **loopback Service CIDR**, our CRD and the Gateway API CRDs;
- the provider simulators, one process per variant, so the canary's providers can fail or disagree alone;
- two wall-bounce service processes (``stable`` and ``canary``), each with its own configuration, each listening
  on its Service's ClusterIP:port (see ``gateway``: that is how Traefik reaches them without EndpointSlices);
- Deployments ``techsapo-stable``/``techsapo-canary`` as stand-ins, their status set available;
- Traefik as the Gateway API data plane: GatewayClass, Gateway (HTTP listener on a loopback port), and the
  HTTPRoute ``techsapo`` with both Services as weighted backends (100/0);
- Prometheus scraping both services (target labels ``namespace`` and ``service``) and the operator;
- the operator (``wallbounce operator``) as a process.

Everything lives under ``state_dir`` (logs, configurations, the kubeconfig, ``stack.json``) and every process
carries ``state_dir`` on its command line, so ``wallbounce-local down`` (``stop_by_state_dir``) stops it all.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import controlplane, gateway, procs, thirdparty
from .loadgen import LOCAL_API_KEY, auth_headers
from .prometheus import Prometheus, static_job

GROUP, VERSION, PLURAL = "wallbounce.dev", "v1alpha1", "wallbouncerollouts"
ACTION_ANNOTATION = "wallbounce.dev/action"
VARIANTS = ("stable", "canary")
STACK_FILE = "stack.json"
FAKE_KEYS = {"OPENAI_API_KEY": "sk-test-local", "ANTHROPIC_API_KEY": "sk-ant-test-local",
             "GEMINI_API_KEY": "gemini-test-local"}
#: Provider environment that must not leak from the user's shell into the stack's services.
_PROVIDER_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GEMINI_API_KEY",
                 "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "WALLBOUNCE_CONFIG_FILE", "REDIS_URL")

HEALTHY_SCRIPT: dict[str, Any] = {"error_status": None, "error_rate": 0.0, "answer": None,
                                  "final": "Yes, this is the recommended approach.", "verdict": "agree"}
DISAGREE_SCRIPT: dict[str, dict[str, Any]] = {
    # basic requests go to Gemini and Claude: make them contradict each other on the same question
    "gemini": {"answer": "No. Keep-alive must stay off here: idle sockets pile up on the balancer and hide "
                         "backend failures until they time out.\nFINAL: No, never enable it."},
    "anthropic": {"answer": "Yes, turn it on: reusing connections saves a TCP and TLS handshake per call and "
                            "cuts tail latency noticeably.\nFINAL: Yes, enable it."},
    "openai": {"answer": "It depends entirely on the workload; measure before deciding.\nFINAL: Maybe, measure it."},
}


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


def _ancestors() -> set[int]:
    """This process and its parents (a shell or tmux whose command line names the state dir is not ours)."""
    found, pid = set(), os.getpid()
    for _ in range(64):
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid <= 1:
            break
    return found


def stop_state_dir(state_dir: Path) -> list[int]:
    """Like ``controlplane.stop_by_state_dir`` (recorded pids, then every process mentioning ``state_dir``),
    but never this process's own ancestors: ``--state-dir X`` on a shell's or tmux's command line mentions X too."""
    mine = _ancestors()
    stopped = []
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


def _http_json(url: str, body: Any = None, timeout: float = 5.0) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",  # noqa: S310
                                 headers={"Content-Type": "application/json", **auth_headers()})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback URLs we built
        return json.loads(resp.read() or b"null")


class Stack:
    """``start()`` brings everything up in order (fails loudly, naming the part and its log); ``stop()`` ends it."""

    def __init__(self, state_dir: Path, options: Options | None = None,
                 progress: Callable[[str], None] | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.options = options or Options()
        self.progress = progress or (lambda _msg: None)
        self.log_dir = self.state_dir / "logs"
        self.marker = f"wallbounce_state={self.state_dir}"  # on every Python child's command line
        self.plane: controlplane.ControlPlane | None = None
        self.api: Any = None
        self.traefik: gateway.Traefik | None = None
        self.prometheus: Prometheus | None = None
        self.sims: dict[str, procs.Process] = {}
        self.sim_urls: dict[str, str] = {}
        self.services: dict[str, procs.Process] = {}
        self.backends: dict[str, gateway.Backend] = {}
        self.operator: procs.Process | None = None
        self.operator_port = 0
        self.info: StackInfo | None = None

    # ----- lifecycle -------------------------------------------------------------------------

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
        self.plane = controlplane.ControlPlane(self.state_dir, service_cidr=o.service_cidr)
        self.plane.start()
        from kubernetes import config

        self.api = config.new_client_from_config(config_file=str(self.plane.kubeconfig))  # type: ignore[no-untyped-call]
        self.progress("CRDs: WallBounceRollout + Gateway API v1.4.1")
        self._install_crds()
        self._ensure_namespace()
        port = procs.free_port()
        self.backends = {v: gateway.Backend(f"{o.prefix}-{v}", o.ip(v), port) for v in VARIANTS}
        self.progress("provider simulators (one set per variant)")
        for v in VARIANTS:
            self._start_sim(v)
        self.progress(f"service processes on {self.backends['stable'].address} and {self.backends['canary'].address}")
        for v in VARIANTS:
            self._start_service(v)
        for v in VARIANTS:
            self._wait_service(v)
        self.progress("Deployments (stand-ins, available), Services, Gateway, HTTPRoute")
        self._create_objects()
        self.progress("Traefik (Gateway API data plane)")
        self._start_traefik()
        self._warm_up()
        self.progress("Prometheus")
        self._start_prometheus()
        self.progress("operator")
        self.start_operator()

    def stop(self) -> None:
        """Stop every part (operator first, control plane last), then anything still mentioning the state dir."""
        if self.operator is not None:
            self.operator.stop()
        if self.traefik is not None:
            self.traefik.stop()
        if self.prometheus is not None:
            self.prometheus.stop()
        for proc in [*self.services.values(), *self.sims.values()]:
            proc.stop()
        if self.api is not None:
            self.api.close()
            self.api = None
        if self.plane is not None:
            for part in (self.plane.apiserver, self.plane.etcd):
                if part is not None:
                    part.stop()
        stop_state_dir(self.state_dir)

    # ----- parts -----------------------------------------------------------------------------

    def _python(self, *args: str) -> list[str]:
        return [sys.executable, "-X", self.marker, *args]

    def _install_crds(self) -> None:
        from kubernetes import client

        thirdparty.install(self.api, ["gateway-api"])
        crd = yaml.safe_load((_repo_root() / "crds" / "wallbouncerollouts.yaml").read_text())
        ext = client.ApiextensionsV1Api(self.api)
        try:
            ext.create_custom_resource_definition(crd)
        except client.ApiException as exc:
            if exc.status != 409:
                raise
        thirdparty.wait_established(self.api, [crd["metadata"]["name"]])

    def _ensure_namespace(self) -> None:
        from kubernetes import client

        try:
            core: Any = client.CoreV1Api(self.api)
            core.create_namespace({"metadata": {"name": self.options.namespace}})
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def _start_sim(self, variant: str) -> None:
        port = procs.free_port()
        script = {v: {"latency_s": self.options.sim_latency_s} for v in ("openai", "gemini", "anthropic")}
        proc = procs.Process(f"simulators-{variant}", self._python(
            "-m", "wallbounce_sim", "--host", "127.0.0.1", "--port", str(port), "--script", json.dumps(script)),
            self.log_dir / f"simulators-{variant}.log").start()
        url = f"http://127.0.0.1:{port}"
        proc.wait_until(lambda: _http_json(f"{url}/_sim/stats") is not None, 30, "answering /_sim/stats")
        self.sims[variant], self.sim_urls[variant] = proc, url

    def _service_config(self, variant: str) -> Path:
        folder = self.state_dir / "services" / variant
        folder.mkdir(parents=True, exist_ok=True)
        config = {
            "variant": variant,
            "log_format": "json",
            "cache": {"enabled": False},  # every request really fans out to the providers
            "retry": {"attempts": 2, "base_delay_s": 0.05, "max_delay_s": 0.2},
            "providers": {name: {"model": model, "timeout_s": 10} for name, model in
                          (("openai", "gpt-5"), ("gemini", "gemini-2.5-pro"), ("anthropic", "claude-sonnet-4-6"))},
            "request_deadline_s": 20,
            "auth": {"keys_file": str(self._keys_file())},
        }
        path = folder / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _keys_file(self) -> Path:
        """The API keys of the stack's services: one tenant, the load generator's key (hashed), no tight limits."""
        import hashlib

        path = self.state_dir / "services" / "api-keys.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        limits = {"requests_per_s": 10000, "burst": 10000, "tokens_per_min": 10**10, "usd_per_day": 10**6,
                  "max_concurrent": 10000}
        path.write_text(yaml.safe_dump({"tenants": {"local": limits}, "keys": [
            {"id": "local-loadgen", "tenant": "local", "sha256": hashlib.sha256(LOCAL_API_KEY.encode()).hexdigest()}]}))
        return path

    def _start_service(self, variant: str) -> None:
        backend = self.backends[variant]
        env = {k: v for k, v in os.environ.items() if k not in _PROVIDER_ENV and not k.startswith("WALLBOUNCE_")}
        sim = self.sim_urls[variant]
        env.update(FAKE_KEYS)
        env.update({"OPENAI_BASE_URL": f"{sim}/v1", "ANTHROPIC_BASE_URL": sim, "GOOGLE_GEMINI_BASE_URL": sim,
                    "WALLBOUNCE_VARIANT": variant, "WALLBOUNCE_CONFIG_FILE": str(self._service_config(variant)),
                    "WALLBOUNCE_REVISION": f"local-{variant}"})
        self.services[variant] = procs.Process(f"service-{variant}", self._python(
            "-m", "wallbounce_service.cli", "--host", backend.cluster_ip, "--port", str(backend.port)),
            self.log_dir / f"service-{variant}.log", env=env).start()

    def _wait_service(self, variant: str) -> None:
        url = f"http://{self.backends[variant].address}/readyz"
        self.services[variant].wait_until(lambda: _http_json(url) is not None, 60, "ready (/readyz)")

    def _create_objects(self) -> None:
        from kubernetes import client

        o, ns = self.options, self.options.namespace
        core: Any = client.CoreV1Api(self.api)
        apps: Any = client.AppsV1Api(self.api)
        objects = client.CustomObjectsApi(self.api)
        for v in VARIANTS:
            name = f"{o.prefix}-{v}"
            apps.create_namespaced_deployment(ns, {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
                "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}},
                                      "spec": {"containers": [{
                                          "name": "wallbounce", "image": f"wallbounce:{v}",
                                          "env": [{"name": "WALLBOUNCE_VARIANT", "value": v}]}]}}}})
            self.set_available(name, 1)
            core.create_namespaced_service(ns, gateway.service_body(self.backends[v]))
        gc, gw = gateway.gateway_objects(ns, o.gateway, o.gateway_class, 0)
        objects.create_cluster_custom_object(gateway.GATEWAY_GROUP, gateway.GATEWAY_VERSION, "gatewayclasses", gc)
        self._gateway_body = gw
        objects.create_namespaced_custom_object(gateway.GATEWAY_GROUP, gateway.GATEWAY_VERSION, ns, "httproutes",
                                                gateway.httproute_body(o.route, o.gateway, self.backends["stable"],
                                                                       self.backends["canary"]))

    def _start_traefik(self) -> None:
        from kubernetes import client

        assert self.plane is not None
        o = self.options
        self.traefik = gateway.Traefik(self.log_dir / "traefik", self.plane.kubeconfig, o.namespace)
        port = procs.free_port()
        body = self._gateway_body
        body["spec"]["listeners"][0]["port"] = port  # the listener's port must be a Traefik entryPoint's port
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            gateway.GATEWAY_GROUP, gateway.GATEWAY_VERSION, o.namespace, "gateways", body)
        self.traefik.start(port)
        gateway.wait("the Gateway to be Programmed by Traefik",
                     lambda: gateway.gateway_programmed(self.api, o.namespace, o.gateway), 60)
        gateway.wait("a request through the Gateway to reach the stable service",
                     lambda: self.ask_gateway().get("variant") == "stable", 60, every=0.5)

    def ask_gateway(self, prompt: str = "Is the route up?") -> dict[str, Any]:
        assert self.traefik is not None
        return dict(_http_json(f"{self.traefik.url}/api/v1/generate", {"prompt": prompt}, timeout=30))

    def _warm_up(self) -> None:
        """A few requests straight to each service, one of them failing, so that its request counters exist
        for both outcomes before Prometheus first scrapes them: the service creates label children lazily,
        ``increase()`` cannot count a series' first sample, and the operator's default error query reads an
        absent ``outcome="error"`` series as no data (NoData, never a Pass) instead of zero errors."""
        import urllib.error

        for v in VARIANTS:
            url = f"http://{self.backends[v].address}/api/v1/generate"
            self.script_simulators(v, {name: {"error_status": 500} for name in ("openai", "gemini", "anthropic")})
            try:
                _http_json(url, {"prompt": "warm-up: an error, on purpose"}, timeout=30)
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    raise
            self.script_simulators(v, {name: dict(HEALTHY_SCRIPT) for name in ("openai", "gemini", "anthropic")})
            for i in range(3):
                _http_json(url, {"prompt": f"warm-up {i}: is the service up?"}, timeout=30)

    def _start_prometheus(self) -> None:
        o = self.options
        self.operator_port = self.operator_port or procs.free_port()
        jobs = [static_job(f"{o.prefix}-{v}", [self.backends[v].address],
                           {"namespace": o.namespace, "service": self.backends[v].name}) for v in VARIANTS]
        jobs.append(static_job("wallbounce-operator", [f"127.0.0.1:{self.operator_port}"]))
        self.prometheus = Prometheus(self.state_dir / "prometheus", jobs, scrape_interval=o.scrape_interval)
        self.prometheus.start()

    def start_operator(self) -> procs.Process:
        """Start (or restart, on the same metrics port) ``wallbounce operator`` scoped to the stack's namespace."""
        assert self.plane is not None
        self.operator_port = self.operator_port or procs.free_port()
        env = {**os.environ, "KUBECONFIG": str(self.plane.kubeconfig)}
        self.operator = procs.Process("operator", self._python(
            "-m", "wallbounce_operator.cli", "operator", "--namespace", self.options.namespace,
            "--metrics-port", str(self.operator_port), "--metrics-host", "127.0.0.1",
            "--tick", str(self.options.operator_tick), "--query-timeout", "2"),
            self.log_dir / "operator.log", env=env).start()
        url = f"http://127.0.0.1:{self.operator_port}/healthz"

        def healthy() -> bool:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return bool(resp.status == 200)

        self.operator.wait_until(healthy, 60, "healthy (/healthz)")
        return self.operator

    def kill_operator(self) -> None:
        """SIGKILL the operator's process group: no cleanup, as a crash or an OOM kill would."""
        assert self.operator is not None and self.operator.pid is not None
        import signal

        os.killpg(self.operator.pid, signal.SIGKILL)
        if self.operator.popen is not None:
            self.operator.popen.wait(timeout=10)

    def stop_prometheus(self) -> None:
        assert self.prometheus is not None and self.prometheus.process is not None
        self._prometheus_argv = self.prometheus.process.argv
        self.prometheus.process.stop()

    def restart_prometheus(self) -> None:
        """Start Prometheus again on the same port and data (the rollouts name its address)."""
        assert self.prometheus is not None
        proc = procs.Process("prometheus", self._prometheus_argv, self.prometheus.log).start()
        self.prometheus.process = proc
        proc.wait_until(self.prometheus.ready, 60, "ready (/-/ready)")

    def _write_info(self, seconds: float) -> StackInfo:
        assert self.plane and self.traefik and self.prometheus and self.operator
        procs_: dict[str, procs.Process | None] = {
            "operator": self.operator, "traefik": self.traefik.process, "prometheus": self.prometheus.process,
            **{f"service-{v}": p for v, p in self.services.items()},
            **{f"simulators-{v}": p for v, p in self.sims.items()}}
        info = StackInfo(
            state_dir=str(self.state_dir), kubeconfig=str(self.plane.kubeconfig), namespace=self.options.namespace,
            gateway_url=self.traefik.url, prometheus_url=self.prometheus.url,
            operator_metrics=f"http://127.0.0.1:{self.operator_port}/metrics",
            services={v: f"http://{b.address}" for v, b in self.backends.items()}, simulators=dict(self.sim_urls),
            pids={k: p.pid for k, p in procs_.items() if p is not None and p.pid is not None},
            logs={k: str(p.log) for k, p in procs_.items() if p is not None},
            started_at=time.time(), start_seconds=seconds)
        (self.state_dir / STACK_FILE).write_text(json.dumps(asdict(info), indent=2))
        return info

    # ----- the canary's providers ------------------------------------------------------------

    def script_simulators(self, variant: str, per_vendor: dict[str, dict[str, Any]]) -> None:
        _http_json(f"{self.sim_urls[variant]}/_sim/script", per_vendor)

    def canary_healthy(self) -> None:
        self.script_simulators("canary", {v: dict(HEALTHY_SCRIPT) for v in ("openai", "gemini", "anthropic")})

    def canary_failing(self, status: int = 500) -> None:
        """Every provider of the canary answers ``status``: the canary service answers 503 (error outcome)."""
        self.script_simulators("canary", {v: {"error_status": status} for v in ("openai", "gemini", "anthropic")})

    def canary_disagreeing(self) -> None:
        """The canary's providers contradict each other: its consensus confidence collapses."""
        self.script_simulators("canary", DISAGREE_SCRIPT)

    # ----- Kubernetes objects ----------------------------------------------------------------

    @property
    def namespace(self) -> str:
        return self.options.namespace

    def _objects(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self.api)

    def set_available(self, deployment: str, available: int) -> None:
        from kubernetes import client

        client.AppsV1Api(self.api).patch_namespaced_deployment_status(deployment, self.namespace, {"status": {
            "replicas": 1, "readyReplicas": available, "availableReplicas": available, "updatedReplicas": 1}})

    def route(self) -> dict[str, Any]:
        return dict(self._objects().get_namespaced_custom_object(
            gateway.GATEWAY_GROUP, gateway.GATEWAY_VERSION, self.namespace, "httproutes", self.options.route))

    def route_weights(self) -> tuple[int, int]:
        refs = self.route()["spec"]["rules"][0]["backendRefs"]
        by_name = {r["name"]: int(r.get("weight", 1)) for r in refs}
        return by_name[self.backends["stable"].name], by_name[self.backends["canary"].name]

    def set_route_weights(self, stable: int, canary: int) -> None:
        """Edit the route by hand (as a user or a GitOps re-sync would)."""
        route = self.route()
        for ref in route["spec"]["rules"][0]["backendRefs"]:
            ref["weight"] = stable if ref["name"] == self.backends["stable"].name else canary
        self._objects().replace_namespaced_custom_object(
            gateway.GATEWAY_GROUP, gateway.GATEWAY_VERSION, self.namespace, "httproutes", self.options.route, route)

    def rollout_body(self, name: str, phases: list[dict[str, Any]], *, interval: str = "1s", window: str = "6s",
                     confidence_level: float = 0.0, error_limit: int = 20, strategy: str = "Emergency",
                     **spec: Any) -> dict[str, Any]:
        assert self.prometheus is not None
        p = self.options.prefix
        return {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "WallBounceRollout",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "stable": {"deployment": f"{p}-stable", "service": f"{p}-stable"},
                "canary": {"deployment": f"{p}-canary", "service": f"{p}-canary"},
                "trafficRouting": {"gatewayAPI": {"httpRoute": self.options.route}},
                "analysis": {"prometheus": {"address": self.prometheus.url}, "interval": interval, "window": window,
                             "confidenceLevel": confidence_level, "errorLimit": error_limit},
                "phases": phases,
                "rollbackStrategy": strategy,
                **spec,
            },
        }

    def apply_rollout(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._objects().create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, body))

    def delete_rollout(self, name: str) -> None:
        from kubernetes import client

        try:
            self._objects().delete_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise

    def rollout(self, name: str) -> dict[str, Any]:
        return dict(self._objects().get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name))

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.rollout(name).get("status") or {})

    def action(self, name: str, verb: str) -> None:
        """``pause``/``resume``/``abort``/``promote``/``promote-full``/``retry`` through the action annotation."""
        self._objects().patch_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, name,
                                                       {"metadata": {"annotations": {ACTION_ANNOTATION: verb}}})

    def events(self, name: str) -> list[tuple[str, str]]:
        from kubernetes import client

        core: Any = client.CoreV1Api(self.api)
        listed = core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}")
        items = sorted(listed.items, key=lambda e: (e.metadata.creation_timestamp, e.metadata.name))
        return [(str(e.reason), str(e.message)) for e in items]

    # ----- Prometheus ------------------------------------------------------------------------

    def canary_error_rate(self, window: str = "6s") -> float | None:
        """The canary's error ratio as the operator's default query sees it (None: no data)."""
        svc, ns = self.backends["canary"].name, self.namespace
        sel = f'namespace="{ns}", service="{svc}"'
        q = (f'sum(increase(wallbounce_requests_total{{{sel}, outcome="error"}}[{window}])) / '
             f"sum(increase(wallbounce_requests_total{{{sel}}}[{window}]))")
        return self._scalar(q)

    def canary_confidence(self, window: str = "6s") -> float | None:
        sel = f'namespace="{self.namespace}", service="{self.backends["canary"].name}"'
        q = (f"sum(rate(wallbounce_consensus_confidence_sum{{{sel}}}[{window}])) / "
             f"sum(rate(wallbounce_consensus_confidence_count{{{sel}}}[{window}]))")
        return self._scalar(q)

    def _scalar(self, promql: str) -> float | None:
        """One number from Prometheus; None for no sample or NaN (no requests in the window)."""
        assert self.prometheus is not None
        result = self.prometheus.query(promql)
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if value != value else value


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


def _repo_root() -> Path:
    from . import testbin

    return testbin.repo_root()
