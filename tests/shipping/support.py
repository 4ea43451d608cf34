"""Helpers shared by the shipping tests: repository paths, running binaries, kubectl dry-runs."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
OPERATOR_CHART = ROOT / "charts" / "wallbounce-operator"
SERVICE_CHART = ROOT / "charts" / "wallbounce-service"
CHARTS = (OPERATOR_CHART, SERVICE_CHART)
# helm built from its Go module carries no default Kubernetes version (it would assume 1.20 and refuse the charts'
# kubeVersion); `helm template` and `helm lint` are told the version of the API server the tests run
KUBE_VERSION = ["--kube-version", "1.36.0"]
CRD = ROOT / "crds" / "wallbouncerollouts.yaml"
PROMETHEUS_RULE = MANIFESTS / "base" / "prometheusrule.yaml"
CHART_RULES = {"wallbounce-operator": OPERATOR_CHART / "files" / "prometheus-rules.yaml",
               "wallbounce-service": SERVICE_CHART / "files" / "prometheus-rules.yaml"}
DASHBOARD = MANIFESTS / "base" / "dashboards" / "wallbounce-rollouts.json"
CHART_DASHBOARD = OPERATOR_CHART / "files" / "dashboards" / "wallbounce-rollouts.json"
ROUTERS = ("gatewayAPI", "istio", "smi")
ACTIONS = ("pause", "resume", "promote", "promote-full", "abort", "retry")

# Argo CD's Application CRD, from its Go module (never committed), to dry-run the Application example.
ARGOCD_MODULE = ("github.com/argoproj/argo-cd/v3", "v3.2.0")


def run(cmd: list[str | Path], *, input_text: str | None = None, check: bool = True,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a command; with ``check``, fail the test with its output when it exits non-zero."""
    proc = subprocess.run([str(c) for c in cmd], input=input_text, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}",
                    pytrace=False)
    return proc


def documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def load_yaml_file(path: Path) -> list[dict[str, Any]]:
    return documents(path.read_text())


def dry_run(kubectl: Path, kubeconfig: Path, objects: list[dict[str, Any]],
            namespace: str | None = None) -> list[str]:
    """``kubectl apply --dry-run=server --validate=strict`` of the objects, in one call; fails the test
    unless every object is accepted.  Returns kubectl's lines (one per object)."""
    assert objects, "nothing to apply"
    cmd: list[str | Path] = [kubectl, "--kubeconfig", kubeconfig, "apply", "--dry-run=server",
                             "--validate=strict", "-f", "-"]
    if namespace:
        cmd[3:3] = ["-n", namespace]
    proc = run(cmd, input_text=yaml.safe_dump_all(objects, sort_keys=False))
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    accepted = [line for line in lines if line.endswith("(server dry run)")]
    assert len(accepted) == len(objects), f"expected {len(objects)} objects accepted, kubectl said:\n{proc.stdout}"
    return lines


def kinds(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((o["kind"], o["metadata"]["name"]) for o in objects)


def walk(value: Any) -> Iterator[Any]:
    """Every value nested in a JSON-like structure (depth first)."""
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)
