"""The README as a user follows it: its quickstart, run command by command against a fresh local stack, ends with
``kubectl wait`` succeeding (``make quickstart`` and ``make demo-down`` replaced by the commands they run, the state
in a temporary folder); and no user-facing text — README, docs, charts, manifests, the CRD's descriptions, the
plugin's help — speaks of where the design came from."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shipping.support import ROOT
from wallbounce_local.stack import stop_state_dir

pytestmark = pytest.mark.integration
ORIGIN_WORDS = re.compile(r"\bthe seed\b|\bseed's\b|\bthe guide\b|\bguide's\b|\bthe original\b|techsapo guide|"
                          r"best-practice guide", re.IGNORECASE)
USER_FACING = ["README.md", "docs", "charts", "manifests", "crds", "plugins", "kubectl-plugin/wallbounce_kubectl"]


def quickstart() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Quickstart"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the quickstart has a bash block"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_the_quickstart_ends_with_kubectl_wait_succeeding(tmp_path: Path) -> None:
    lines = quickstart()
    assert lines[0] == "make quickstart" and lines[-1] == "make demo-down"
    assert any(line.startswith("kubectl wait --for=condition=Ready") for line in lines)
    assert any("wallbounce-local load" in line and line.endswith("&") for line in lines), "it sends traffic"
    state = tmp_path / "state"
    bindir = Path(sys.executable).parent
    script = ["set -euo pipefail", f"cd {ROOT}"]
    for line in lines:
        line = line.replace("$PWD/.wallbounce", str(state)).replace(".venv/bin/", f"{bindir}/")
        if line == "make quickstart":
            line = f"{sys.executable} -m wallbounce_local.demo --stack-only"
        elif line == "make demo-down":
            line = f"{bindir}/wallbounce-local down"
        script.append(line)
    env = {**os.environ, "WALLBOUNCE_STATE_DIR": str(state)}
    try:
        proc = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, env=env,
                              timeout=600, check=False)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "wallbouncerollout.wallbounce.dev/techsapo condition met" in proc.stdout
        assert "Phase:       Completed" in proc.stdout and "stable 50% / canary 50%" in proc.stdout
    finally:
        subprocess.run([str(bindir / "wallbounce-local"), "down"], env=env, capture_output=True, timeout=120,
                       check=False)
        stop_state_dir(state)  # whatever `down` could not stop (a step that failed or timed out) stops here


def test_no_user_facing_text_says_where_the_design_came_from() -> None:
    found = []
    for entry in USER_FACING:
        path = ROOT / entry
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            if file.suffix not in {".md", ".yaml", ".yml", ".json", ".txt", ".tpl", ".lua", ".py"}:
                continue
            for number, line in enumerate(file.read_text().splitlines(), 1):
                if ORIGIN_WORDS.search(line):
                    found.append(f"{file.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
    helps = [subprocess.run([str(Path(sys.executable).parent / script), "--help"], capture_output=True, text=True,
                            timeout=60, check=False).stdout for script in ("kubectl-wallbounce", "wallbounce-operator")]
    assert all(h and not ORIGIN_WORDS.search(h) for h in helps)
