"""The Dockerfiles (no Docker engine here, so nothing is built): multi-stage, a slim Python 3.11 base,
no build tools in the final stage, a numeric non-root user, the console-script entrypoints of the
operator contract, and COPY sources that exist and are not excluded by .dockerignore; and the service's
entrypoint run for real with the manifests' arguments, environment and configuration file."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.shipping.support import ROOT

IMAGES = {
    "operator": (["wallbounce", "operator"], 8080),
    "service": (["wallbounce", "service"], 4000),
}


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def stages(path: Path) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(path):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_dockerfile_is_small_and_conventional(image: str) -> None:
    path = ROOT / image / "Dockerfile"
    entrypoint, port = IMAGES[image]
    all_ins = instructions(path)
    args = dict(a.split("=", 1) for k, a in all_ins if k == "ARG" and "=" in a)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", args["PYTHON_IMAGE"])
    built = stages(path)
    assert len(built) >= 2, "multi-stage: build in one stage, run in another"
    assert built[0][0][1].endswith("AS builder")
    final = built[-1]
    assert final[0][1] == "${PYTHON_IMAGE}"
    final_text = " ".join(a for _, a in final)
    for tool in ("gcc", "build-essential", "apt-get install", "pip install", "pip wheel", "git"):
        assert tool not in final_text, f"the final stage must not install or build ({tool})"
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in final
    user = [a for k, a in final if k == "USER"]
    assert user, "the final stage sets USER"
    uid = user[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root USER, so runAsNonRoot can verify it"
    assert json.loads(next(a for k, a in final if k == "ENTRYPOINT")) == entrypoint
    assert ("EXPOSE", str(port)) in final
    assert "PYTHONDONTWRITEBYTECODE=1" in final_text, "read-only root filesystem: no .pyc written at run time"
    assert not any(k == "HEALTHCHECK" for k, _ in all_ins), "probes live in the manifests"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_copy_sources_exist_and_are_in_the_build_context(image: str) -> None:
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "**", ".dockerignore starts by excluding everything"
    allowed = [line[1:].rstrip("*").rstrip("/") for line in ignore if line.startswith("!")]
    for k, a in instructions(ROOT / image / "Dockerfile"):
        if k != "COPY" or a.startswith("--from"):
            continue
        *sources, _dest = a.split()
        for src in sources:
            src = src.rstrip("/")
            assert (ROOT / src).exists(), f"{image}/Dockerfile copies {src}, which does not exist"
            assert any(src == p or p.startswith(src + "/") or src.startswith(p + "/") for p in allowed), (
                f"{src} is excluded from the build context by .dockerignore")


def test_the_entrypoint_is_a_declared_console_script() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("scripts", {})
    assert "wallbounce" in scripts, "pyproject.toml must declare the `wallbounce` console script the images run"


def test_the_service_runs_as_the_manifests_start_it(tmp_path: Path) -> None:
    """The service Deployment's args, WALLBOUNCE_VARIANT and config file, run through the real console script
    (on loopback instead of 0.0.0.0): the probes' and the scrape's paths answer, the config file is valid."""
    deployment = next(d for d in yaml.safe_load_all((ROOT / "manifests" / "base" / "service.yaml").read_text())
                      if d["kind"] == "Deployment" and d["metadata"]["name"] == "techsapo-canary")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    assert env["WALLBOUNCE_CONFIG_FILE"] == "/etc/wallbounce/config.yaml"
    env["WALLBOUNCE_CONFIG_FILE"] = str(ROOT / "manifests" / "base" / "service-config.yaml")
    assert env["WALLBOUNCE_AUTH__KEYS_FILE"] == "/etc/wallbounce/keys/keys.yaml"
    env["WALLBOUNCE_AUTH__KEYS_FILE"] = str(ROOT / "manifests" / "base" / "api-keys.yaml")  # the shipped file
    port = free_port()
    args = [a.replace("0.0.0.0", "127.0.0.1").replace("4000", str(port)) for a in container["args"]]
    script = Path(sys.executable).with_name("wallbounce")
    assert script.exists(), f"{script} missing: install the project (pip install -e .)"
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    log = (tmp_path / "service.log").open("w")
    proc = subprocess.Popen([str(script), "service", *args], env={**clean, **env}, stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"the service exited: {(tmp_path / 'service.log').read_text()[-2000:]}"
            try:
                status, _ = get(port, container["livenessProbe"]["httpGet"]["path"])
                break
            except OSError:
                assert time.monotonic() < deadline, "the service did not answer /healthz within 30 s"
                time.sleep(0.2)
        assert status == 200
        status, body = get(port, container["readinessProbe"]["httpGet"]["path"])
        ready = json.loads(body)
        assert status == 503 and ready["variant"] == "canary", "not ready without provider keys"
        assert not [p for p in ready["problems"] if "keys file" in p], ready  # the shipped keys file is valid
        status, body = get(port, "/metrics")
        assert status == 200 and 'wallbounce_inflight_requests{revision="unknown",variant="canary"}' in body
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()
