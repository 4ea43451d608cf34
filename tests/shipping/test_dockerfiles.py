"""The Dockerfile (no Docker engine here, so nothing is built): one target per product on a shared runtime base,
a slim Python 3.11 base, each product built in its own stage from its own distribution (the operator's from
api/ and operator/ only: no LLM client, nothing of e2e/), no build tools in the final stages, a numeric non-root
user, the console-script entrypoints of the operator contract, and COPY sources that exist and are not excluded
by .dockerignore; and the service's entrypoint run for real with the manifests' arguments, environment and
configuration file."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.shipping.support import ROOT
from wallbounce_local.procs import wait_for

DOCKERFILE = ROOT / "Dockerfile"
#: target → (entrypoint, port, the distribution folder it is built from)
IMAGES = {
    "operator": (["wallbounce-operator"], 8080, "operator"),
    "service": (["wallbounce-service"], 4000, "service"),
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


def stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Stages by name (``FROM base AS name``), each starting with its FROM."""
    result: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for ins in instructions(path):
        if ins[0] == "FROM":
            current = result.setdefault(ins[1].split(" AS ")[-1].strip(), [])
        if current is not None:
            current.append(ins)
    return result


def lineage(all_stages: dict[str, list[tuple[str, str]]], name: str) -> list[str]:
    """The stage and the stages it is built FROM, up to the base image."""
    chain = [name]
    while (parent := all_stages[chain[-1]][0][1].split(" AS ")[0].strip()) in all_stages:
        chain.append(parent)
    return chain


def test_the_base_image_is_a_slim_python_3_11() -> None:
    args = dict(a.split("=", 1) for k, a in instructions(DOCKERFILE) if k == "ARG" and "=" in a)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", args["PYTHON_IMAGE"])
    assert not any(k == "HEALTHCHECK" for k, _ in instructions(DOCKERFILE)), "probes live in the manifests"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_target_is_small_and_conventional(image: str) -> None:
    entrypoint, port, folder = IMAGES[image]
    built = stages(DOCKERFILE)
    chain = lineage(built, image)
    assert built[chain[-1]][0][1].split(" AS ")[0] == "${PYTHON_IMAGE}", chain
    final = [ins for name in reversed(chain) for ins in built[name]]
    final_text = " ".join(a for _, a in final)
    for tool in ("gcc", "build-essential", "apt-get install", "pip install", "pip wheel", "git"):
        assert tool not in final_text, f"the {image} image must not install or build ({tool})"
    build_stage = f"{image}-build"
    assert ("COPY", f"--from={build_stage} /opt/venv /opt/venv") in built[image]
    copied = [a.split()[0].rstrip("/") for name in lineage(built, build_stage) for k, a in built[name] if k == "COPY"]
    assert sorted(copied) == sorted(["api", folder]), f"{image} is built from api/ and {folder}/ only: {copied}"
    install = next(a for k, a in built[build_stage] if k == "RUN" and "pip install" in a)
    assert f"./api ./{folder}" in install, install
    user = [a for k, a in built[image] if k == "USER"]
    assert user, "the final stage sets USER"
    uid = user[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, "a numeric non-root USER, so runAsNonRoot can verify it"
    assert json.loads(next(a for k, a in built[image] if k == "ENTRYPOINT")) == entrypoint
    assert ("EXPOSE", str(port)) in built[image]
    assert "PYTHONDONTWRITEBYTECODE=1" in final_text, "read-only root filesystem: no .pyc written at run time"


def test_copy_sources_exist_and_are_in_the_build_context() -> None:
    ignore = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    assert ignore[0] == "**", ".dockerignore starts by excluding everything"
    allowed = [line[1:].rstrip("*").rstrip("/") for line in ignore if line.startswith("!")]
    for k, a in instructions(DOCKERFILE):
        if k != "COPY" or a.startswith("--from"):
            continue
        *sources, _dest = a.split()
        for src in sources:
            src = src.rstrip("/")
            assert (ROOT / src).exists(), f"the Dockerfile copies {src}, which does not exist"
            assert any(src == p or p.startswith(src + "/") or src.startswith(p + "/") for p in allowed), (
                f"{src} is excluded from the build context by .dockerignore")
    assert not any(p.startswith("e2e/wallbounce_local") for p in allowed), "the development stack is never shipped"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_the_entrypoint_is_a_console_script_of_the_products_distribution(image: str) -> None:
    entrypoint, _, folder = IMAGES[image]
    scripts = tomllib.loads((ROOT / folder / "pyproject.toml").read_text())["project"].get("scripts", {})
    assert entrypoint[0] in scripts, f"{folder}/pyproject.toml must declare the `{entrypoint[0]}` the image runs"


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
    script = Path(sys.executable).with_name("wallbounce-service")
    assert script.exists(), f"{script} missing: install the workspace (make venv)"
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    log = (tmp_path / "service.log").open("w")
    proc = subprocess.Popen([str(script), *args], env={**clean, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        def alive_and_live() -> int | None:
            assert proc.poll() is None, f"the service exited: {(tmp_path / 'service.log').read_text()[-2000:]}"
            return get(port, container["livenessProbe"]["httpGet"]["path"])[0]

        status = wait_for("the service to answer /healthz", alive_and_live, 30, tolerate=(OSError,))
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
