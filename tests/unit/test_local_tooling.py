"""Certificates, kubeconfigs and process helpers of the local stack (no servers)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wallbounce_local import certs, controlplane, procs


def test_client_certificate_carries_user_and_group(tmp_path: Path) -> None:
    ca = certs.CertificateAuthority(tmp_path, "client")
    pair = ca.client("admin", "alice", ("system:masters",))
    cert = x509.load_pem_x509_certificate(pair.cert_pem())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == ["system:masters"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in list(usage)
    ca_cert = x509.load_pem_x509_certificate(ca.files.cert_pem())
    cert.verify_directly_issued_by(ca_cert)
    assert oct(pair.key.stat().st_mode & 0o777) == "0o600"


def test_a_client_certificate_names_one_group_at_most(tmp_path: Path) -> None:
    """trustme writes one O: asking for two groups is refused, not silently cut to one."""
    ca = certs.CertificateAuthority(tmp_path, "client")
    with pytest.raises(ValueError, match="one group"):
        ca.client("admin", "alice", ("system:masters", "devs"))


def test_serving_certificate_names_ip_and_dns(tmp_path: Path) -> None:
    ca = certs.CertificateAuthority(tmp_path, "server")
    pair = ca.serving("apiserver", ["localhost", "127.0.0.1"])
    sans = x509.load_pem_x509_certificate(pair.cert_pem()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_kubeconfig_embeds_credentials(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    controlplane.write_kubeconfig(path, "https://127.0.0.1:6443", b"CA", b"CERT", b"KEY", user="bob")
    config = yaml.safe_load(path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
    assert config["clusters"][0]["cluster"]["certificate-authority-data"] == "Q0E="
    assert config["users"][0] == {"name": "bob", "user": {"client-certificate-data": "Q0VSVA==",
                                                          "client-key-data": "S0VZ"}}
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_terminate_kills_the_whole_process_group(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    # a parent that ignores SIGTERM and has a child: both must be gone afterwards
    script = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {marker!r}]); "
              "time.sleep(60)")
    proc = procs.Process("sleeper", [sys.executable, "-c", script, marker], tmp_path / "log").start()
    assert proc.pid is not None
    procs.wait_for("the parent and its child", lambda: len(procs.pids_mentioning(marker)) == 2, 5, every=0.05)
    proc.stop(timeout=1)
    assert procs.pids_mentioning(marker) == []


def test_wait_for_returns_the_first_truthy_answer_or_names_what_it_waited_for() -> None:
    answers = iter([0, None, "", "ready"])
    assert procs.wait_for("an answer", lambda: next(answers), 5, every=0) == "ready"
    with pytest.raises(procs.WaitTimeout, match="waiting for nothing at all") as timeout:
        procs.wait_for("nothing at all", lambda: False, 0.05, every=0.01)
    assert isinstance(timeout.value, AssertionError) and isinstance(timeout.value, TimeoutError)


def test_wait_for_tolerates_only_the_exceptions_it_is_told_to() -> None:
    answers: list[object] = [OSError("not yet"), OSError("still not"), 7]

    def check() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert procs.wait_for("a server", check, 5, every=0, tolerate=(OSError,)) == 7
    with pytest.raises(ValueError):
        procs.wait_for("a number", lambda: int("x"), 5, every=0, tolerate=(OSError,))


def test_every_part_of_the_stack_is_a_component(tmp_path: Path) -> None:
    """One protocol for all of them (start, ready, stop, logs): the stack starts and stops a list."""
    from wallbounce_local import components as c
    from wallbounce_local.gateway import Backend
    from wallbounce_local.loadgen import LoadGenerator
    from wallbounce_local.prometheus import Prometheus

    parts = [controlplane.ControlPlane(tmp_path / "cp"), c.Etcd(tmp_path / "etcd", tmp_path / "d", tmp_path / "l"),
             c.ApiServer(tmp_path / "api", tmp_path / "pki", tmp_path / "l", service_cidr="10.0.0.0/24"),
             Prometheus(tmp_path / "prom"), c.Traefik(tmp_path / "t", tmp_path / "kc", "ns"),
             c.Simulators("canary", tmp_path / "l"), c.Operator(tmp_path / "l", tmp_path / "kc"),
             c.ServiceProcess("canary", Backend("s", "127.0.0.1", 1), "http://sim", tmp_path / "s", tmp_path / "l"),
             c.Exporter(tmp_path / "l"), LoadGenerator("http://gateway")]
    for part in parts:
        assert isinstance(part, c.Component), part
        assert part.name and isinstance(part.logs, dict)
        part.stop()  # never started: nothing to stop, and no error
