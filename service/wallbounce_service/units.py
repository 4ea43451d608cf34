"""Units of the numbers in canonical final answers: a small table that converts a value to its dimension's base unit.

Only the units answers about services carry: time, data size, data rate, request rate, percent, money (per
currency), and counts. pint would do this in general, but it costs seconds to load, about 12 MB, and lacks the
informal units models write (KB, rps, 件); the table is the whole of what the comparison needs.
Lookup is case-sensitive first (MB is not Mb), then case-insensitive, then without a plural ``s``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    dimension: str
    factor: float  # value × factor = value in the dimension's base unit


def _table() -> dict[str, Unit]:
    t: dict[str, Unit] = {}

    def add(dimension: str, factor: float, *names: str) -> None:
        for name in names:
            t[name] = Unit(dimension, factor)

    add("time", 1e-9, "ns", "nanosecond", "ナノ秒")
    add("time", 1e-6, "us", "µs", "μs", "microsecond", "マイクロ秒")
    add("time", 1e-3, "ms", "msec", "millisecond", "ミリ秒")
    add("time", 1.0, "s", "sec", "secs", "second", "秒")
    add("time", 60.0, "min", "mins", "minute", "分", "分間")
    add("time", 3600.0, "h", "hr", "hrs", "hour", "時間")
    add("time", 86400.0, "d", "day", "日", "日間")
    add("time", 604800.0, "week", "週", "週間")
    add("data", 1.0, "B", "byte", "バイト")
    add("data", 1e3, "KB", "kB", "kilobyte")
    add("data", 1024.0, "KiB", "kibibyte")
    add("data", 1e6, "MB", "megabyte")
    add("data", 1024.0**2, "MiB", "mebibyte")
    add("data", 1e9, "GB", "gigabyte")
    add("data", 1024.0**3, "GiB", "gibibyte")
    add("data", 1e12, "TB", "terabyte")
    add("data", 1024.0**4, "TiB", "tebibyte")
    add("data", 0.125, "bit", "ビット")
    add("data", 125.0, "Kb", "kbit", "kilobit")
    add("data", 125e3, "Mb", "Mbit", "megabit")
    add("data", 125e6, "Gb", "Gbit", "gigabit")
    add("data_rate", 125.0, "kbps", "Kbps", "kbit/s")
    add("data_rate", 125e3, "Mbps", "Mbit/s", "Mb/s")
    add("data_rate", 125e6, "Gbps", "Gbit/s", "Gb/s")
    add("data_rate", 1e6, "MB/s", "MBps")
    add("data_rate", 1e9, "GB/s", "GBps")
    add("rate", 1.0, "rps", "qps", "req/s", "requests/s", "requests per second", "/s", "per second", "回/秒")
    add("rate", 1 / 60, "rpm", "req/min", "requests per minute", "/min", "per minute", "回/分")
    add("fraction", 0.01, "%", "percent", "per cent", "パーセント")
    add("money_usd", 1.0, "$", "usd", "USD", "dollar", "ドル")
    add("money_jpy", 1.0, "JPY", "jpy", "yen", "円")
    add("money_eur", 1.0, "EUR", "eur", "euro", "€", "ユーロ")
    return t


UNITS = _table()

def _case_insensitive(table: dict[str, Unit]) -> dict[str, Unit]:
    """Lower-cased names that stay unambiguous (``mb`` could be MB or Mb: left out)."""
    seen: dict[str, set[Unit]] = {}
    for name, unit in table.items():
        seen.setdefault(name.lower(), set()).add(unit)
    return {name: next(iter(units)) for name, units in seen.items() if len(units) == 1}


_LOWER = _case_insensitive(UNITS)


def normalise_unit(unit: str) -> str:
    text = unicodedata.normalize("NFKC", unit).strip()
    return re.sub(r"\s+", " ", text)


def lookup(unit: str) -> Unit | None:
    """The unit named ``unit`` (``""`` and unknown names: None)."""
    name = normalise_unit(unit)
    if not name:
        return None
    found = UNITS.get(name) or _LOWER.get(name.lower())
    if found is None and len(name) > 3 and name.lower().endswith("s"):
        found = UNITS.get(name[:-1]) or _LOWER.get(name[:-1].lower())
    return found


def same_count_noun(a: str, b: str) -> bool:
    """Two unknown units that name the same thing counted (``request`` and ``requests``)."""
    x, y = normalise_unit(a).lower(), normalise_unit(b).lower()
    return x == y or x.rstrip("s") == y.rstrip("s")
