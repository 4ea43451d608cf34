"""Certificates for the local control plane, made by trustme: a CA per purpose, the API server's serving
certificate, client certificates (Kubernetes reads the user from CN and the group from O) and the
service-account signing key.

Everything is written as PEM files into one directory (private keys readable by the owner only); nothing
here talks to a server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ORGANIZATION = "wallbounce-local"  # the CAs' O, and the group of a client certificate that names none


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key, as PEM files on disk."""

    cert: Path
    key: Path

    def cert_pem(self) -> bytes:
        return self.cert.read_bytes()

    def key_pem(self) -> bytes:
        return self.key.read_bytes()


def _write(path: Path, data: bytes, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


class CertificateAuthority:
    """A CA whose certificate is ``<directory>/<name>-ca.crt``; it issues serving and client certificates."""

    def __init__(self, directory: Path, name: str) -> None:
        self.directory = directory
        self.name = name
        self._ca = trustme.CA(organization_name=ORGANIZATION, organization_unit_name=f"wallbounce-local-{name}")
        self.files = KeyPair(directory / f"{name}-ca.crt", directory / f"{name}-ca.key")
        _write(self.files.cert, self._ca.cert_pem.bytes())
        _write(self.files.key, self._ca.private_key_pem.bytes(), private=True)

    def _store(self, filename: str, leaf: trustme.LeafCert) -> KeyPair:
        pair = KeyPair(self.directory / f"{filename}.crt", self.directory / f"{filename}.key")
        _write(pair.cert, leaf.cert_chain_pems[0].bytes())
        _write(pair.key, leaf.private_key_pem.bytes(), private=True)
        return pair

    def serving(self, filename: str, hosts: list[str]) -> KeyPair:
        """A TLS server certificate valid for the given DNS names and IP addresses."""
        return self._store(filename, self._ca.issue_cert(*hosts, common_name=hosts[0]))

    def client(self, filename: str, user: str, groups: tuple[str, ...] = ()) -> KeyPair:
        """A client certificate for ``user`` in (at most) one group: a trustme certificate carries one O."""
        if len(groups) > 1:
            raise ValueError(f"a client certificate carries one group, not {len(groups)}: {groups}")
        group = groups[0] if groups else ORGANIZATION
        # Kubernetes ignores a client certificate's names, but Go refuses trustme's SAN extension when empty
        identity = re.sub(r"[^a-z0-9-]+", "-", user.lower()).strip("-") + ".user.wallbounce.local"
        return self._store(filename, self._ca.issue_cert(identity, common_name=user, organization_name=group))


def service_account_key(directory: Path) -> KeyPair:
    """The key pair kube-apiserver signs and verifies service-account tokens with (a bare key, not a
    certificate: trustme makes certificates only)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pair = KeyPair(directory / "sa.pub", directory / "sa.key")
    _write(pair.cert, key.public_key().public_bytes(serialization.Encoding.PEM,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo))
    _write(pair.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()), private=True)
    return pair
