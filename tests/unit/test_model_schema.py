"""The pydantic models of the operator and the CRD's OpenAPI schema describe the same fields, at every depth."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from wallbounce_operator.model import RolloutSpec, RolloutStatus

CRD = Path(__file__).resolve().parents[2] / "crds" / "wallbouncerollouts.yaml"


def _schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD.read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"])


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``X | None``, ``tuple[X, ...]`` and the like, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_sequence(a) for a in typing.get_args(annotation))
    return False


def _differences(model: type[BaseModel], schema: dict[str, Any], path: str) -> list[str]:
    props = schema.get("properties") or {}
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    out = [f"{path}.{k}: in the model, not in the CRD" for k in sorted(fields.keys() - props.keys())]
    out += [f"{path}.{k}: in the CRD, not in the model" for k in sorted(props.keys() - fields.keys())]
    for key in sorted(fields.keys() & props.keys()):
        annotation = fields[key].annotation
        inner = _model_of(annotation)
        sub = props[key]
        if _is_sequence(annotation):
            if sub.get("type") != "array":
                out.append(f"{path}.{key}: a sequence in the model, {sub.get('type')} in the CRD")
                continue
            sub = sub.get("items") or {}
        if inner is not None:
            out += _differences(inner, sub, f"{path}.{key}")
        elif sub.get("type") == "object" and sub.get("properties"):
            out.append(f"{path}.{key}: an object in the CRD, a plain value in the model")
    return out


@pytest.mark.parametrize(("model", "part"), [(RolloutSpec, "spec"), (RolloutStatus, "status")])
def test_the_models_and_the_crd_describe_the_same_fields(model: type[BaseModel], part: str) -> None:
    assert _differences(model, _schema()[part], part) == []


def test_the_check_itself_sees_a_difference() -> None:
    schema = _schema()["status"]
    schema = {**schema, "properties": {**schema["properties"], "bogus": {"type": "string"}}}
    assert _differences(RolloutStatus, schema, "status") == ["status.bogus: in the CRD, not in the model"]


def test_the_crd_has_no_empty_values() -> None:
    """A stray comma in a flow mapping makes a key with no value: the API server refuses the whole CRD."""
    empty: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if value is None:
                    empty.append(f"{path}.{key}")
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(yaml.safe_load(CRD.read_text()), "")
    assert empty == []
