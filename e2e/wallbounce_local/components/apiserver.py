"""kube-apiserver (built by ``testbin/``) on a free loopback port: TLS from the control plane's PKI, client
certificates against the client CA, RBAC on, a Service CIDR of the caller's choosing (the local stack uses a
loopback one), no controllers and no endpoint reconciler (nothing would run them here)."""

from __future__ import annotations

import ssl
import urllib.request
from pathlib import Path

from .. import procs
from .base import ProcessComponent


class ApiServer(ProcessComponent):
    name = "kube-apiserver"
    readiness = "ready (/readyz)"

    def __init__(self, binary: Path, pki: Path, log: Path, *, etcd_url: str = "", service_cidr: str,
                 extra_args: list[str] | None = None, start_timeout: float = 90.0) -> None:
        super().__init__(log)
        self.binary = binary
        self.pki = pki
        self.etcd_url = etcd_url
        self.service_cidr = service_cidr
        self.extra_args = list(extra_args or [])
        self.start_timeout = start_timeout
        self.port = 0

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def prepare(self, attempt: int) -> None:
        self.port = procs.free_port()

    def command(self) -> list[str]:
        p = self.pki
        return [str(self.binary), f"--etcd-servers={self.etcd_url}", f"--cert-dir={p}",
                f"--tls-cert-file={p / 'apiserver.crt'}", f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--client-ca-file={p / 'client-ca.crt'}", f"--secure-port={self.port}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
                f"--service-cluster-ip-range={self.service_cidr}", "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount", "--authorization-mode=RBAC",
                f"--service-account-issuer={self.server}/", f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}", "--enable-priority-and-fairness=false",
                "--profiling=false", *self.extra_args]

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the server CA and presents the admin client certificate."""
        ctx = ssl.create_default_context(cafile=str(self.pki / "server-ca.crt"))
        ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        return ctx

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"{self.server}{path}", context=self.ssl_context(), timeout=5) as resp:  # noqa: S310
            return bytes(resp.read())

    def ready(self) -> bool:
        return self.get("/readyz") == b"ok"
