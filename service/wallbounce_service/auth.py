"""API keys and tenants: who is asking, and with which limits.

Keys live in a YAML file — in Kubernetes a mounted Secret — that is re-read when its content changes, so keys are
rotated without a restart (a broken new file is refused, logged, and the last good one stays). In memory only the
SHA-256 of each key is kept; a presented key is hashed and looked up, so comparing never leaks a key's prefix.

The file::

    tenants:
      acme: {requests_per_s: 5, burst: 10, tokens_per_min: 200000, usd_per_day: 10, max_concurrent: 16}
    keys:
      - {id: acme-ci, tenant: acme, key: wbk_…}          # the key itself (a Secret only), or
      - {id: acme-web, tenant: acme, sha256: 3f2a…}      # its SHA-256 (safe to keep in Git)
      - {id: old, tenant: acme, sha256: 77c1…, disabled: true}

``Authorization: Bearer <key>`` (or ``X-API-Key: <key>``) authenticates; no key, an unknown key or a disabled key is
``Unauthenticated`` (401). A key whose tenant may not use a task type is ``Forbidden`` (403, ``authorize``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .config import AuthSettings, TenantLimits
from .errors import Forbidden, Unauthenticated

log = logging.getLogger("wallbounce.auth")

KEY_PREFIX = "wbk_"
ANONYMOUS = "anonymous"
_ID = r"^[A-Za-z0-9._:-]{1,64}$"


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=_ID)
    tenant: str = Field(pattern=_ID)
    key: str | None = Field(default=None, min_length=16, max_length=512)
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    disabled: bool = False

    @model_validator(mode="after")
    def _one_of(self) -> KeyEntry:
        if (self.key is None) == (self.sha256 is None):
            raise ValueError(f"key {self.id}: give exactly one of 'key' and 'sha256'")
        return self

    @property
    def digest(self) -> str:
        return self.sha256.lower() if self.sha256 else hash_key(self.key or "")


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenants: dict[str, TenantLimits] = Field(default_factory=dict)
    keys: list[KeyEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> KeysFile:
        seen: set[str] = set()
        for entry in self.keys:
            if entry.tenant not in self.tenants:
                raise ValueError(f"key {entry.id}: unknown tenant {entry.tenant!r}")
            if entry.id in seen:
                raise ValueError(f"key id {entry.id} appears twice")
            seen.add(entry.id)
        return self


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: the key's id (logged), its tenant and the tenant's limits."""

    key_id: str
    tenant: str
    limits: TenantLimits


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh API key: 256 random bits, URL-safe, with a prefix that the secret scanner recognises."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def load_keys(path: Path) -> dict[str, Principal]:
    """The keys of ``path`` by SHA-256 digest (disabled keys left out); raises ``ValueError`` naming the problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parsed = KeysFile.model_validate(data)
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    return {
        entry.digest: Principal(entry.id, entry.tenant, parsed.tenants[entry.tenant])
        for entry in parsed.keys
        if not entry.disabled
    }


class KeyStore:
    """The current keys; ``watch`` re-reads the file when it changes."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._by_digest: dict[str, Principal] = {}
        self._fingerprint: bytes | None = None
        self.problem: str | None = None
        self.loads = 0
        self._anonymous = Principal(ANONYMOUS, ANONYMOUS, settings.anonymous_limits)

    def load(self) -> None:
        """(Re-)reads the keys file; keeps the last good keys when the new file is unreadable or invalid."""
        path = self.settings.keys_file
        if path is None:
            self.problem = "no API keys file is configured (auth.keys_file)" if self.settings.required else None
            return
        try:
            raw = path.read_bytes()
        except OSError as exc:
            self.problem = f"the API keys file cannot be read: {exc.strerror or exc}"
            log.error("API keys file unreadable", extra={"path": str(path), "error": str(exc)})
            return
        fingerprint = hashlib.sha256(raw).digest()
        if fingerprint == self._fingerprint:
            return
        try:
            keys = load_keys(path)
        except ValueError as exc:
            self.problem = f"the API keys file is invalid: {exc}"
            log.error("API keys file invalid; keeping the previous keys", extra={"error": str(exc)})
            self._fingerprint = fingerprint
            return
        self._by_digest, self._fingerprint, self.problem = keys, fingerprint, None
        self.loads += 1
        log.info("API keys loaded", extra={"keys": len(keys), "tenants": len({p.tenant for p in keys.values()})})

    async def watch(self) -> None:
        """Re-reads the file every ``reload_s`` (Kubernetes swaps a Secret's files atomically)."""
        while True:
            await asyncio.sleep(self.settings.reload_s)
            await asyncio.to_thread(self.load)

    def authenticate(self, headers: Any) -> Principal:
        """The caller of a request with these headers, or ``Unauthenticated``."""
        key = _presented_key(headers)
        if key is None:
            if not self.settings.required:
                return self._anonymous
            raise Unauthenticated("an API key is required: send 'Authorization: Bearer <key>'")
        principal = self._by_digest.get(hash_key(key))
        if principal is None:
            raise Unauthenticated("the API key is not valid")
        return principal


def authorize(principal: Principal, task_type: str) -> None:
    """``Forbidden`` unless the principal's tenant may ask for ``task_type``."""
    if task_type not in principal.limits.task_types:
        raise Forbidden(
            f"the key's tenant may not use task_type {task_type} (allowed: {', '.join(principal.limits.task_types)})",
            field="task_type",
        )


def _presented_key(headers: Any) -> str | None:
    value = headers.get("Authorization")
    if value:
        scheme, _, token = value.partition(" ")
        token = token.strip()
        return token if scheme.lower() == "bearer" and token else ""
    alt = headers.get("X-API-Key")
    return alt.strip() if alt is not None else None
