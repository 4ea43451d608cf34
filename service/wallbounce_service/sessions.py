"""Session manager: conversation history per ``session_id`` with a TTL and a cap on turns.

Backends: ``MemorySessionStore`` (default; bounded number of sessions, least recently used dropped first) and
``RedisSessionStore`` (``REDIS_URL``; a list per session trimmed to the cap, TTL refreshed on every write) so that
both Deployments and all replicas share sessions. Turns hold the (already anonymised-and-restored) prompt and the
chosen answer; they are never logged.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Turn:
    prompt: str
    response: str
    timestamp: float


class SessionStore(Protocol):
    async def history(self, session_id: str) -> list[Turn]: ...

    async def append(self, session_id: str, turn: Turn) -> None: ...


class MemorySessionStore:
    def __init__(
        self, ttl_s: float, max_turns: int, max_sessions: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_turns = max_turns
        self.max_sessions = max_sessions
        self.clock = clock
        self._data: OrderedDict[str, tuple[float, list[Turn]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    async def history(self, session_id: str) -> list[Turn]:
        item = self._data.get(session_id)
        if item is None:
            return []
        expires, turns = item
        if expires <= self.clock():
            del self._data[session_id]
            return []
        return list(turns)

    async def append(self, session_id: str, turn: Turn) -> None:
        turns = await self.history(session_id)
        turns.append(turn)
        self._data[session_id] = (self.clock() + self.ttl_s, turns[-self.max_turns :])
        self._data.move_to_end(session_id)
        while len(self._data) > self.max_sessions:
            self._data.popitem(last=False)


class RedisSessionStore:
    def __init__(self, redis: Any, ttl_s: float, max_turns: int, prefix: str = "wallbounce:session:") -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.max_turns = max_turns
        self.prefix = prefix

    async def history(self, session_id: str) -> list[Turn]:
        raw = await self.redis.lrange(self.prefix + session_id, 0, -1)
        return [Turn(**json.loads(item)) for item in raw]

    async def append(self, session_id: str, turn: Turn) -> None:
        key = self.prefix + session_id
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(key, json.dumps(asdict(turn), ensure_ascii=False))
            pipe.ltrim(key, -self.max_turns, -1)
            pipe.pexpire(key, max(1, int(self.ttl_s * 1000)))
            await pipe.execute()
