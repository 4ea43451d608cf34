"""What a Deployment says about the version it runs (pure functions on trimmed objects, no I/O).

- The **current revision** is the ReplicaSet owned by the Deployment whose ``deployment.kubernetes.io/revision``
  annotation equals the Deployment's (as ``kubectl rollout status`` finds it); its ``pod-template-hash`` label is the
  revision, and its available replicas — not the Deployment's, which count the previous revision's pods too — say
  whether the revision can serve.
- The **template key** compares stable with canary: the pod template's ``spec``, without the environment variables
  that differ by design (``spec.completion.variantEnv``), hashed.
- The **stable template** for ``completion.promoteStable``: the canary's pod spec with stable's own values of those
  variables, applied with server-side apply.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from .informers import REVISION_ANNOTATION, TEMPLATE_HASH_LABEL
from .model import WorkloadState


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]


def template_key(deployment: dict[str, Any], variant_env: Iterable[str]) -> str:
    ignored = set(variant_env)
    pod_spec = copy.deepcopy(((deployment.get("spec") or {}).get("template") or {}).get("spec") or {})
    for container in _containers(pod_spec):
        env = [e for e in container.get("env") or [] if e.get("name") not in ignored]
        if env:
            container["env"] = env
        else:
            container.pop("env", None)
    return hashlib.sha256(json.dumps(pod_spec, sort_keys=True).encode()).hexdigest()[:16]


def _deadline_exceeded(deployment: dict[str, Any]) -> bool:
    return any(c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"
               for c in (deployment.get("status") or {}).get("conditions") or [])


def current_replicaset(deployment: dict[str, Any], replicasets: list[dict[str, Any]]) -> dict[str, Any] | None:
    meta = deployment.get("metadata") or {}
    revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
    if revision is None:
        return None
    uid = meta.get("uid")
    for rs in replicasets:
        rs_meta = rs.get("metadata") or {}
        owned = any(o.get("kind") == "Deployment" and o.get("name") == meta.get("name")
                    and (uid is None or o.get("uid") in (None, uid)) for o in rs_meta.get("ownerReferences") or [])
        if owned and (rs_meta.get("annotations") or {}).get(REVISION_ANNOTATION) == revision:
            return rs
    return None


def workload_state(deployment: dict[str, Any] | None, replicasets: list[dict[str, Any]],
                   variant_env: Iterable[str], what: str) -> WorkloadState:
    if deployment is None:
        return WorkloadState(found=False, message=f"Deployment {what} not found")
    key = template_key(deployment, variant_env)
    meta, status = deployment.get("metadata") or {}, deployment.get("status") or {}
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    exceeded = _deadline_exceeded(deployment)
    if generation is not None and (observed is None or int(observed) < int(generation)):
        return WorkloadState(revision=None, available=False, template_key=key, deadline_exceeded=exceeded,
                             message=f"Deployment {what} has not observed its generation {generation} yet")
    rs = current_replicaset(deployment, replicasets)
    if rs is None:
        return WorkloadState(revision=None, available=False, template_key=key, deadline_exceeded=exceeded,
                             message=f"Deployment {what} has no ReplicaSet of its current revision yet")
    revision = ((rs.get("metadata") or {}).get("labels") or {}).get(TEMPLATE_HASH_LABEL)
    available = int((rs.get("status") or {}).get("availableReplicas") or 0)
    message = "" if available else f"revision {revision} of {what} has no available replica"
    if exceeded:
        message = f"Deployment {what} reports ProgressDeadlineExceeded"
    return WorkloadState(revision=revision, available=available > 0, deadline_exceeded=exceeded,
                         template_key=key, message=message)


def stable_apply_body(stable: dict[str, Any], canary: dict[str, Any], variant_env: Iterable[str]) -> dict[str, Any]:
    """The server-side apply body that gives stable the canary's pod spec, keeping stable's values of the
    variant environment variables (and stable's template labels: its Service selects them)."""
    keep = set(variant_env)
    pod_spec = copy.deepcopy(((canary.get("spec") or {}).get("template") or {}).get("spec") or {})
    stable_spec = ((stable.get("spec") or {}).get("template") or {}).get("spec") or {}
    stable_env = {c.get("name"): {e.get("name"): e for e in c.get("env") or []} for c in _containers(stable_spec)}
    for container in _containers(pod_spec):
        own = stable_env.get(container.get("name"), {})
        env = [e for e in container.get("env") or [] if e.get("name") not in keep]
        env += [own[name] for name in sorted(keep) if name in own]
        if env:
            container["env"] = env
        else:
            container.pop("env", None)
    meta = stable.get("metadata") or {}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")},
            "spec": {"template": {"spec": pod_spec}}}
