"""Where the locally built binaries are: etcd, kube-apiserver, kubectl (part ``core``), traefik and
helm. They are built by ``testbin/build.sh`` into a cache keyed by each Go module's go.sum; this
module asks that script (a no-op when the cache is warm) and returns the bin directory.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path


class TestbinError(RuntimeError):
    """The binaries could not be found or built."""


def repo_root() -> Path:
    """The checkout holding ``testbin/`` (the package is installed in editable mode from it)."""
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for parent in (start, *start.parents):
            if (parent / "testbin" / "build.sh").exists() and (parent / "pyproject.toml").exists():
                return parent
    raise TestbinError("cannot find the repository root (a folder with testbin/build.sh)")


@cache
def bin_dir(part: str = "core") -> Path:
    """Build (or reuse) ``part`` and return its bin directory.

    ``WALLBOUNCE_TESTBIN_<PART>`` (e.g. WALLBOUNCE_TESTBIN_CORE) may point at a ready directory.
    """
    override = os.environ.get(f"WALLBOUNCE_TESTBIN_{part.upper()}")
    if override:
        return Path(override)
    script = repo_root() / "testbin" / "build.sh"
    proc = subprocess.run(
        ["bash", str(script), part], stdout=subprocess.PIPE, stderr=None, text=True, check=False
    )
    if proc.returncode != 0:
        raise TestbinError(
            f"testbin: building '{part}' failed (exit {proc.returncode}); run {script} {part} to see why"
        )
    path = Path(proc.stdout.strip().splitlines()[-1])
    if not path.is_dir():
        raise TestbinError(f"testbin: {script} printed {path}, which is not a directory")
    return path


def binary(name: str, part: str = "core") -> Path:
    path = bin_dir(part) / name
    if not os.access(path, os.X_OK):
        raise TestbinError(f"testbin: {path} is missing or not executable")
    return path
