"""Flux's custom health checks as kustomize-controller evaluates them: the object's top-level fields are the CEL
variables; ``inProgress``, then ``failed``, then ``current``: the first true one decides, none true is InProgress,
an expression that cannot be evaluated (a field missing) leaves the object InProgress too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import celpy
import yaml

from tests.shipping.support import MANIFESTS

FLUX_KUSTOMIZATION = MANIFESTS / "flux" / "flux-kustomization.yaml"


def health_check(path: Path = FLUX_KUSTOMIZATION) -> dict[str, str]:
    spec = yaml.safe_load(path.read_text())["spec"]
    [check] = [c for c in spec["healthCheckExprs"] if c["kind"] == "WallBounceRollout"]
    return dict(check)


def flux_health(obj: dict[str, Any], check: dict[str, str] | None = None) -> str:
    check = check or health_check()
    env = celpy.Environment()
    variables = {key: celpy.json_to_cel(value) for key, value in obj.items()}
    for field, result in (("inProgress", "InProgress"), ("failed", "Failed"), ("current", "Current")):
        if field not in check:
            continue
        try:
            value = env.program(env.compile(check[field])).evaluate(variables)
        except celpy.CELEvalError:
            return "InProgress"
        if isinstance(value, celpy.CELEvalError):
            return "InProgress"
        if bool(value):
            return result
    return "InProgress"
