"""What the process's memory holds beyond its live objects: glibc's allocator, told to keep few arenas and to give
back what the answers of a tick freed.

The operator's live data is small (a few tens of KiB per rollout), but every tick parses large answers (the batched
Prometheus answers, the Kubernetes client's replies) in up to ``IO_THREADS`` threads. glibc gives each thread an
arena of its own (up to 8 per core) and keeps what a freed peak leaves behind in every one of them, so the resident
size grows with the peaks and the threads, not with the rollouts. ``limit_arenas`` (before any thread starts) keeps
two arenas; ``trim`` (after a tick) returns the free pages to the system. Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time

log = logging.getLogger("wallbounce.memory")

M_ARENA_MAX = -8  # mallopt's parameter (malloc.h)
ARENAS = 2
TRIM_EVERY = 5.0  # seconds between trims: each walks the heap (milliseconds), a tick's peak is freed by then


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


_LIBC = _glibc()
_last_trim = 0.0


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Keep at most ``arenas`` malloc arenas (as ``MALLOC_ARENA_MAX`` would); True when the allocator took it."""
    if _LIBC is None:
        return False
    taken = bool(_LIBC.mallopt(M_ARENA_MAX, arenas))
    log.debug("malloc arenas limited to %d: %s", arenas, taken)
    return taken


def trim(now: float | None = None) -> bool:
    """Return the allocator's free pages to the system, at most every ``TRIM_EVERY`` seconds; True when it ran."""
    global _last_trim
    now = time.monotonic() if now is None else now
    if _LIBC is None or now - _last_trim < TRIM_EVERY:
        return False
    _last_trim = now
    _LIBC.malloc_trim(0)
    return True
