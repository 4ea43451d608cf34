"""Session manager: conversation history, owned by one tenant (and user), under ids only the server mints.

``mint(owner)`` creates a session and returns its id: 192 random bits, unguessable. Every look-up is by
``(owner, id)``: an id sent by another tenant or user — or one the server never minted — is simply not there, so
``history`` answers ``None`` and the request is refused; nothing about other sessions is revealed. Turns keep only
what goes back to the providers (``context_chars`` of each prompt and answer, secrets already redacted).

Backends: ``MemorySessionStore`` (bounded in sessions and in bytes, least recently used dropped first) and
``RedisSessionStore`` (``REDIS_URL``; a marker and a capped list per session, TTL refreshed on every write) so that
both Deployments and all replicas share them.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

ENTRY_OVERHEAD = 300


@dataclass(frozen=True)
class Turn:
    prompt: str
    response: str
    timestamp: float


def new_session_id() -> str:
    return "ses_" + secrets.token_urlsafe(24)


class SessionStore(Protocol):
    async def mint(self, owner: str) -> str: ...

    async def history(self, owner: str, session_id: str) -> list[Turn] | None: ...

    async def append(self, owner: str, session_id: str, turn: Turn) -> None: ...


class MemorySessionStore:
    def __init__(
        self,
        ttl_s: float,
        max_turns: int,
        max_sessions: int,
        max_bytes: int = 32 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_turns = max_turns
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self._data: OrderedDict[tuple[str, str], tuple[float, list[Turn]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def mint(self, owner: str) -> str:
        session_id = new_session_id()
        self._put((owner, session_id), [])
        return session_id

    async def history(self, owner: str, session_id: str) -> list[Turn] | None:
        key = (owner, session_id)
        item = self._data.get(key)
        if item is None:
            return None
        expires, turns = item
        if expires <= self.clock():
            self._drop(key)
            return None
        return list(turns)

    async def append(self, owner: str, session_id: str, turn: Turn) -> None:
        turns = await self.history(owner, session_id)
        if turns is None:
            return  # expired or evicted meanwhile: nothing to add to
        self._drop((owner, session_id))
        self._put((owner, session_id), [*turns, turn][-self.max_turns :])

    def _put(self, key: tuple[str, str], turns: list[Turn]) -> None:
        self._data[key] = (self.clock() + self.ttl_s, turns)
        self.bytes += _size(key, turns)
        while self._data and (len(self._data) > self.max_sessions or self.bytes > self.max_bytes):
            self._drop(next(iter(self._data)))

    def _drop(self, key: tuple[str, str]) -> None:
        _, turns = self._data.pop(key)
        self.bytes -= _size(key, turns)


def _size(key: tuple[str, str], turns: list[Turn]) -> int:
    return len(key[0]) + len(key[1]) + sum(len(t.prompt) + len(t.response) + 64 for t in turns) + ENTRY_OVERHEAD


class RedisSessionStore:
    def __init__(self, redis: Any, ttl_s: float, max_turns: int, prefix: str = "wallbounce:session:") -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.max_turns = max_turns
        self.prefix = prefix

    def _keys(self, owner: str, session_id: str) -> tuple[str, str]:
        base = f"{self.prefix}{owner}:{session_id}"
        return base + ":meta", base + ":turns"

    async def mint(self, owner: str) -> str:
        session_id = new_session_id()
        meta, _ = self._keys(owner, session_id)
        await self.redis.set(meta, b"1", px=max(1, int(self.ttl_s * 1000)))
        return session_id

    async def history(self, owner: str, session_id: str) -> list[Turn] | None:
        meta, turns = self._keys(owner, session_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(meta)
            pipe.lrange(turns, 0, -1)
            exists, raw = await pipe.execute()
        if not exists:
            return None
        return [Turn(**json.loads(item)) for item in raw]

    async def append(self, owner: str, session_id: str, turn: Turn) -> None:
        meta, turns = self._keys(owner, session_id)
        ttl = max(1, int(self.ttl_s * 1000))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(turns, json.dumps(asdict(turn), ensure_ascii=False))
            pipe.ltrim(turns, -self.max_turns, -1)
            pipe.pexpire(turns, ttl)
            pipe.pexpire(meta, ttl)
            await pipe.execute()
