"""``python -m wallbounce_kubectl.package DIR``: the plugin as Krew installs it. ``DIR/kubectl-wallbounce.tar.gz``
holds ``kubectl-wallbounce`` — one executable file, a zip application of this package and ``wallbounce_api`` (both
standard library only) run by the ``python3`` on PATH (3.11 or later) — and ``kubectl_complete-wallbounce``, the
completion hook kubectl asks. ``DIR/wallbounce.yaml`` is plugins/wallbounce.yaml with this archive's sha256 (and,
with ``--uri``, its download address). The archive is byte-for-byte reproducible: fixed times, owners and order."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
import tarfile
import zipfile
from pathlib import Path

import wallbounce_api
import wallbounce_kubectl

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
MAIN = "import sys\nfrom wallbounce_kubectl.cli import main\nsys.exit(main())\n"
COMPLETE_MAIN = "import sys\nfrom wallbounce_kubectl.complete import main\nsys.exit(main())\n"
MANIFEST = Path(__file__).resolve().parents[2] / "plugins" / "wallbounce.yaml"


def zipapp(main: str) -> bytes:
    """A zip application (shebang + zip) of the two packages' sources, deterministic."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for package in (wallbounce_kubectl, wallbounce_api):
            root = Path(str(package.__file__)).parent
            for path in sorted(root.rglob("*.py")):
                info = zipfile.ZipInfo(f"{root.name}/{path.relative_to(root).as_posix()}", FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, path.read_bytes())
        info = zipfile.ZipInfo("__main__.py", FIXED_TIME)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, main)
    return b"#!/usr/bin/env python3\n" + buffer.getvalue()


def archive() -> bytes:
    files = {"kubectl-wallbounce": zipapp(MAIN), "kubectl_complete-wallbounce": zipapp(COMPLETE_MAIN)}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o755, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def manifest(sha256: str, uri: str | None) -> str:
    text = MANIFEST.read_text()
    text = re.sub(r"(?m)^(\s+sha256: ).*$", lambda m: m.group(1) + sha256, text)
    if uri:
        text = re.sub(r"(?m)^(\s+uri: ).*$", lambda m: m.group(1) + uri, text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wallbounce_kubectl.package", description=__doc__)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--uri", help="where the archive will be downloaded from (the manifest's platforms[].uri)")
    args = parser.parse_args(argv)
    args.dir.mkdir(parents=True, exist_ok=True)
    data = archive()
    (args.dir / "kubectl-wallbounce.tar.gz").write_bytes(data)
    (args.dir / "wallbounce.yaml").write_text(manifest(hashlib.sha256(data).hexdigest(), args.uri))
    return 0


if __name__ == "__main__":
    sys.exit(main())
