"""A real Kubernetes control plane on loopback: etcd plus kube-apiserver, built from Go modules by
``testbin/``, with certificates made here, an admin kubeconfig, and a state file so that another
process (the ``wallbounce-local`` CLI) can find, report and stop it.

There is no controller-manager and no kubelet: no pods run, namespaces do not finish deleting and
owner references do not cascade. Tests create what they need and set status themselves.
"""

from __future__ import annotations

import base64
import json
import ssl
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import certs, procs, testbin
from .components.apiserver import ApiServer
from .components.etcd import Etcd

STATE_FILE = "controlplane.json"
ADMIN_USER = "wallbounce-admin"


@dataclass
class State:
    """What a running control plane is: written to ``<state_dir>/controlplane.json``."""

    state_dir: str
    server: str
    kubeconfig: str
    etcd_url: str
    pids: dict[str, int]
    logs: dict[str, str]
    started_at: float
    start_seconds: float
    version: str = ""
    bin_dir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class ControlPlane:
    """etcd + kube-apiserver in ``state_dir`` (a ``Component`` of two).  ``start()`` blocks until ``/readyz``
    answers ok."""

    name = "control plane"

    def __init__(
        self,
        state_dir: Path,
        *,
        service_cidr: str = "10.0.0.0/24",
        start_timeout: float = 90.0,
        extra_apiserver_args: list[str] | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.service_cidr = service_cidr
        self.start_timeout = start_timeout
        self.extra_apiserver_args = list(extra_apiserver_args or [])
        self.pki = self.state_dir / "pki"
        self.log_dir = self.state_dir / "logs"
        self.kubeconfig = self.state_dir / "kubeconfig"
        self.etcd: Etcd | None = None
        self.apiserver: ApiServer | None = None
        self.state: State | None = None
        self._client_ca: certs.CertificateAuthority | None = None

    # ----- lifecycle -------------------------------------------------------------------------

    @property
    def logs(self) -> dict[str, Path]:
        return {"etcd": self.log_dir / "etcd.log", "kube-apiserver": self.log_dir / "kube-apiserver.log"}

    def start(self) -> State:
        begun = time.monotonic()
        bins = testbin.bin_dir("core")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.pki.mkdir(exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self.etcd = Etcd(bins / "etcd", self.state_dir / "etcd-data", self.logs["etcd"],
                         start_timeout=self.start_timeout)
        self.apiserver = ApiServer(bins / "kube-apiserver", self.pki, self.logs["kube-apiserver"],
                                   service_cidr=self.service_cidr, extra_args=self.extra_apiserver_args,
                                   start_timeout=self.start_timeout)
        try:
            self._make_certs()
            self.etcd.start()
            self.apiserver.etcd_url = self.etcd.client_url
            self.apiserver.start()
            self._write_kubeconfig(self.apiserver.server)
        except BaseException:
            self.stop()
            raise
        assert self.etcd.pid and self.apiserver.pid
        self.state = State(
            state_dir=str(self.state_dir),
            server=self.apiserver.server,
            kubeconfig=str(self.kubeconfig),
            etcd_url=self.etcd.client_url,
            pids={"etcd": self.etcd.pid, "kube-apiserver": self.apiserver.pid},
            logs={k: str(v) for k, v in self.logs.items()},
            started_at=time.time(),
            start_seconds=round(time.monotonic() - begun, 2),
            version=self.server_version(),
            bin_dir=str(bins),
        )
        (self.state_dir / STATE_FILE).write_text(json.dumps(asdict(self.state), indent=2))
        return self.state

    def ready(self) -> bool:
        return self.apiserver is not None and self.apiserver.ready()

    def stop(self) -> None:
        """Stop both processes (API server first), then anything still mentioning the state dir."""
        for part in (self.apiserver, self.etcd):
            if part is not None:
                part.stop()
        stop_by_state_dir(self.state_dir)

    # ----- pieces ----------------------------------------------------------------------------

    def _make_certs(self) -> None:
        certs.CertificateAuthority(self.pki, "server").serving(
            "apiserver", ["localhost", "127.0.0.1", "kubernetes", "kubernetes.default"])
        self._client_ca = certs.CertificateAuthority(self.pki, "client")
        self._client_ca.client("admin", ADMIN_USER, ("system:masters",))
        certs.service_account_key(self.pki)

    def _ssl(self) -> ssl.SSLContext:
        assert self.apiserver is not None
        return self.apiserver.ssl_context()

    def _get(self, url: str) -> bytes:
        with urllib.request.urlopen(url, context=self._ssl(), timeout=5) as resp:  # noqa: S310
            return bytes(resp.read())

    @property
    def server(self) -> str:
        return self.state.server if self.state else _server_of(self.kubeconfig)

    def server_version(self) -> str:
        return str(json.loads(self._get(f"{self.server}/version"))["gitVersion"])

    # ----- kubeconfigs -----------------------------------------------------------------------

    def _write_kubeconfig(self, server: str) -> None:
        write_kubeconfig(
            self.kubeconfig,
            server,
            (self.pki / "server-ca.crt").read_bytes(),
            (self.pki / "admin.crt").read_bytes(),
            (self.pki / "admin.key").read_bytes(),
            user=ADMIN_USER,
        )

    def user_kubeconfig(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        """A kubeconfig for another user (client certificate from the client CA), for RBAC tests."""
        if self._client_ca is None:
            raise RuntimeError("the control plane was not started by this process")
        pair = self._client_ca.client(f"user-{user}", user, groups)
        path = self.state_dir / f"kubeconfig-{user}"
        write_kubeconfig(
            path, self.server, (self.pki / "server-ca.crt").read_bytes(), pair.cert_pem(), pair.key_pem(), user=user
        )
        return path


def write_kubeconfig(path: Path, server: str, ca: bytes, cert: bytes, key: bytes, *, user: str) -> None:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "wallbounce-local", "cluster": {"server": server, "certificate-authority-data": b64(ca)}}
        ],
        "users": [{"name": user, "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": "wallbounce-local", "context": {"cluster": "wallbounce-local", "user": user}}],
        "current-context": "wallbounce-local",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)


def _server_of(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"])


def read_state(state_dir: Path) -> State | None:
    path = state_dir / STATE_FILE
    try:
        return State(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def running(state: State) -> dict[str, bool]:
    """Which recorded processes are still alive (and still ours: same pid, same binary)."""
    alive = {}
    for name, pid in state.pids.items():
        cmd = procs.cmdline(pid)
        alive[name] = procs.pid_alive(pid) and bool(cmd) and Path(cmd[0]).name == name
    return alive


def stop_by_state_dir(state_dir: Path) -> list[int]:
    """Stop every process recorded in, or mentioning, ``state_dir``; returns the pids stopped."""
    state = read_state(state_dir)
    stopped = []
    if state is not None:
        alive = running(state)
        for name in ("kube-apiserver", "etcd"):
            pid = state.pids.get(name)
            if pid and alive.get(name):
                procs.terminate(pid)
                stopped.append(pid)
    for pid in procs.pids_mentioning(str(state_dir)):
        procs.terminate(pid)
        stopped.append(pid)
    return stopped
