"""Third-party CRDs (Gateway API, Istio networking, SMI TrafficSplit, Prometheus Operator) taken from
their Go modules in the module cache (``go mod download``), never committed, and installed into a
(local) API server.

SMI's published CRD is still ``apiextensions.k8s.io/v1beta1`` (removed in Kubernetes 1.22); it is
converted to ``v1`` here with its own schema, so the server validates TrafficSplits as SMI meant.
"""

from __future__ import annotations

import copy
import json
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from . import procs


@dataclass(frozen=True)
class CrdSource:
    module: str
    version: str
    files: tuple[str, ...]  # globs inside the module
    names: tuple[str, ...] = ()  # keep only these CRD names (all when empty)


SOURCES: dict[str, CrdSource] = {
    "gateway-api": CrdSource(
        "sigs.k8s.io/gateway-api", "v1.4.1", ("config/crd/standard/gateway.networking.k8s.io_*.yaml",)
    ),
    "istio": CrdSource(
        "istio.io/api",
        "v1.28.0",
        ("kubernetes/customresourcedefinitions.gen.yaml",),
        ("virtualservices.networking.istio.io", "destinationrules.networking.istio.io"),
    ),
    "smi": CrdSource("github.com/servicemeshinterface/smi-sdk-go", "v0.5.0", ("crds/split.yaml",)),
    "prometheus-operator": CrdSource(
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        (
            "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
        ),
    ),
}


class ThirdPartyError(RuntimeError):
    pass


@cache
def module_dir(module: str, version: str) -> Path:
    """The module's folder in the Go module cache, downloading it through the module proxy if needed."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True, text=True, check=False
    )
    try:
        info = json.loads(proc.stdout)
    except ValueError as exc:
        raise ThirdPartyError(f"go mod download {module}@{version} failed: {proc.stderr.strip()}") from exc
    if "Error" in info or "Dir" not in info:
        raise ThirdPartyError(f"go mod download {module}@{version}: {info.get('Error', 'no Dir')}")
    return Path(info["Dir"])


def crd_documents(name: str) -> list[dict[str, Any]]:
    """The CRDs of one source (``gateway-api``, ``istio``, ``smi``, ``prometheus-operator``) as v1 objects."""
    source = SOURCES[name]
    root = module_dir(source.module, source.version)
    docs: list[dict[str, Any]] = []
    for pattern in source.files:
        paths = sorted(root.glob(pattern))
        if not paths:
            raise ThirdPartyError(f"{source.module}@{source.version} has no {pattern}")
        for path in paths:
            for doc in yaml.safe_load_all(path.read_text()):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                if source.names and doc["metadata"]["name"] not in source.names:
                    continue
                docs.append(to_v1(doc))
    return docs


def to_v1(crd: dict[str, Any]) -> dict[str, Any]:
    """An apiextensions v1beta1 CRD rewritten as v1 (schema, printer columns, per-version)."""
    if crd["apiVersion"] == "apiextensions.k8s.io/v1":
        return crd
    old = copy.deepcopy(crd["spec"])
    schema = (old.get("validation") or {}).get("openAPIV3Schema") or {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}
    schema.setdefault("type", "object")
    columns = [
        {**{k: v for k, v in c.items() if k != "JSONPath"}, "jsonPath": c["JSONPath"]}
        for c in old.get("additionalPrinterColumns", [])
    ]
    versions = []
    for v in old.get("versions") or [{"name": old["version"], "served": True, "storage": True}]:
        entry: dict[str, Any] = {"name": v["name"], "served": v["served"], "storage": v["storage"],
                                 "schema": {"openAPIV3Schema": schema}}
        if columns:
            entry["additionalPrinterColumns"] = columns
        if "subresources" in old:
            entry["subresources"] = old["subresources"]
        versions.append(entry)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd["metadata"]["name"]},
        "spec": {"group": old["group"], "scope": old["scope"], "names": old["names"], "versions": versions},
    }


def install(api_client: Any, names: list[str], timeout: float = 60.0) -> list[str]:
    """Create (or replace) the CRDs of the named sources and wait until each is Established."""
    from kubernetes import client

    ext: Any = client.ApiextensionsV1Api(api_client)  # typed client (kubernetes >= 37): bodies are plain dicts
    installed = []
    for name in names:
        for doc in crd_documents(name):
            crd_name = doc["metadata"]["name"]
            try:
                ext.create_custom_resource_definition(doc)
            except client.ApiException as exc:
                if exc.status != 409:
                    raise ThirdPartyError(f"installing CRD {crd_name} failed: {exc.body}") from exc
                current = ext.read_custom_resource_definition(crd_name)
                doc = {**doc, "metadata": {**doc["metadata"], "resourceVersion": current.metadata.resource_version}}
                ext.replace_custom_resource_definition(crd_name, doc)
            installed.append(crd_name)
    wait_established(api_client, installed, timeout)
    return installed


def wait_established(api_client: Any, crd_names: list[str], timeout: float = 60.0) -> None:
    from kubernetes import client

    ext: Any = client.ApiextensionsV1Api(api_client)  # typed client (kubernetes >= 37): bodies are plain dicts
    pending = set(crd_names)

    def all_established() -> bool:
        for crd_name in list(pending):
            conditions = ext.read_custom_resource_definition(crd_name).status.conditions or []
            if any(c.type == "Established" and c.status == "True" for c in conditions):
                pending.discard(crd_name)
        return not pending

    try:
        procs.wait_for("CRDs to be Established", all_established, timeout)
    except procs.WaitTimeout:
        raise ThirdPartyError(f"CRDs not Established after {timeout:.0f} s: {sorted(pending)}") from None
