"""``kubectl wallbounce get NAME``: the rollout and what it moves, as a tree — the rollout, its stable and canary
Deployments (images, revision, ready/available replicas) and the route's weights — as text or as data for
``-o json|yaml``. Pure: it is given the objects and returns the picture."""

from __future__ import annotations

from typing import Any

#: trafficRouting key → (kubectl resource, kind shown)
ROUTES = {"gatewayAPI": ("httproutes.gateway.networking.k8s.io", "HTTPRoute"),
          "istio": ("virtualservices.networking.istio.io", "VirtualService"),
          "smi": ("trafficsplits.split.smi-spec.io", "TrafficSplit")}
ROUTE_NAME_FIELD = {"gatewayAPI": "httpRoute", "istio": "virtualService", "smi": "trafficSplit"}


def references(rollout: dict[str, Any]) -> list[str]:
    """``kubectl get`` arguments of the objects the rollout names: its two Deployments and its route."""
    spec = rollout.get("spec") or {}
    refs = [f"deployments.apps/{spec[v]['deployment']}" for v in ("stable", "canary") if (spec.get(v) or {}).get(
        "deployment")]
    for key, value in (spec.get("trafficRouting") or {}).items():
        if key in ROUTES and isinstance(value, dict) and value.get(ROUTE_NAME_FIELD[key]):
            refs.append(f"{ROUTES[key][0]}/{value[ROUTE_NAME_FIELD[key]]}")
    return refs


def route_weights(route: dict[str, Any], spec: dict[str, Any]) -> dict[str, int | None]:
    """The weights the route carries for stable and canary (the first rule that routes to them)."""
    stable_svc, canary_svc = spec["stable"].get("service"), spec["canary"].get("service")
    routing = spec.get("trafficRouting") or {}
    pairs: list[tuple[str | None, int | None]] = []
    if route.get("kind") == "HTTPRoute":
        for rule in route.get("spec", {}).get("rules") or []:
            pairs = [(b.get("name"), b.get("weight", 1)) for b in rule.get("backendRefs") or []]
            if pairs:
                break
    elif route.get("kind") == "VirtualService":
        subsets = (routing.get("istio") or {}).get("destinationRule")
        for http in route.get("spec", {}).get("http") or []:
            dests = http.get("route") or []
            if subsets:
                names = {subsets.get("stableSubset"): stable_svc, subsets.get("canarySubset"): canary_svc}
                pairs = [(names.get(d.get("destination", {}).get("subset")), d.get("weight")) for d in dests]
            else:
                pairs = [(d.get("destination", {}).get("host", "").split(".")[0], d.get("weight")) for d in dests]
            if pairs:
                break
    elif route.get("kind") == "TrafficSplit":
        pairs = [(b.get("service"), b.get("weight")) for b in route.get("spec", {}).get("backends") or []]
    weights = dict(pairs)
    return {"stable": weights.get(stable_svc), "canary": weights.get(canary_svc)}


def _deployment(dep: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if dep is None:
        return {"name": name, "found": False}
    st, spec = dep.get("status") or {}, dep.get("spec") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return {"name": name, "found": True,
            "images": {c["name"]: c.get("image") for c in containers},
            "revision": (dep["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision"),
            "replicas": spec.get("replicas", 1), "ready": st.get("readyReplicas", 0),
            "available": st.get("availableReplicas", 0), "updated": st.get("updatedReplicas", 0)}


def build(rollout: dict[str, Any], objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The tree as data: what ``-o json|yaml`` prints and the text rendering draws."""
    meta, spec, st = rollout["metadata"], rollout.get("spec") or {}, rollout.get("status") or {}
    by_kind = {(o.get("kind"), o["metadata"]["name"]): o for o in objects}
    conditions = {c["type"]: c["status"] for c in st.get("conditions") or []}
    tree: dict[str, Any] = {
        "name": meta["name"], "namespace": meta.get("namespace"), "phase": st.get("phase"),
        "step": st.get("step"), "steps": st.get("steps", len(spec.get("phases") or []) or None),
        "weight": st.get("weight"), "desiredWeight": st.get("desiredWeight"),
        "verdict": (st.get("analysis") or {}).get("verdict"), "message": st.get("message"),
        "pauseReasons": st.get("pauseReasons") or [], "conditions": conditions,
    }
    for variant in ("stable", "canary"):
        name = (spec.get(variant) or {}).get("deployment", "")
        node = _deployment(by_kind.get(("Deployment", name)), name)
        if variant == "canary":
            node["currentRevisionHash"] = st.get("canaryRevision")
        tree[variant] = node
    for key, value in (spec.get("trafficRouting") or {}).items():
        if key not in ROUTES or not isinstance(value, dict):
            continue
        kind, name = ROUTES[key][1], value.get(ROUTE_NAME_FIELD[key], "")
        route = by_kind.get((kind, name))
        tree["route"] = {"kind": kind, "name": name, "found": route is not None,
                         "weights": route_weights(route, spec) if route else {}}
    return tree


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value}%"


def render(tree: dict[str, Any]) -> str:
    """The tree as text, in the manner of ``kubectl argo rollouts get rollout``."""
    step = f"{tree['step'] or '-'}/{tree['steps'] or '-'}"
    phase = tree["phase"] or "Pending"
    if tree["pauseReasons"]:
        phase += f" ({', '.join(tree['pauseReasons'])})"
    lines = [f"Name:        {tree['name']}", f"Namespace:   {tree['namespace']}", f"Phase:       {phase}",
             f"Step:        {step}", f"Weight:      canary {_pct(tree['weight'])}"
             + (f" (asked for {_pct(tree['desiredWeight'])})" if tree["desiredWeight"] not in (None, tree["weight"])
                else ""),
             f"Verdict:     {tree['verdict'] or '-'}", f"Message:     {tree['message'] or '-'}",
             "Conditions:  " + (", ".join(f"{k}={v}" for k, v in tree["conditions"].items()) or "-"), ""]
    rows = [("NAME", "KIND", "STATUS", "INFO"),
            (f"⟳ {tree['name']}", "WallBounceRollout", tree["phase"] or "Pending", f"step {step}")]
    route = tree.get("route") or {}
    weights = route.get("weights") or {}
    for i, variant in enumerate(("stable", "canary")):
        node = tree[variant]
        branch = "├──" if i == 0 or route else "└──"
        if not node["found"]:
            rows.append((f"{branch} {variant}: {node['name']}", "Deployment", "NotFound", ""))
            continue
        info = [f"rev {node['revision'] or '-'}"]
        if node.get("currentRevisionHash"):
            info[0] += f" ({node['currentRevisionHash']})"
        info += [f"{c}={image}" for c, image in node["images"].items()]
        info.append(f"weight {_pct(weights.get(variant))}")
        rows.append((f"{branch} {variant}: {node['name']}", "Deployment",
                     f"{node['ready']}/{node['replicas']} ready, {node['available']} available", "  ".join(info)))
    if route:
        status = "NotFound" if not route["found"] else (
            f"stable {_pct(weights.get('stable'))} / canary {_pct(weights.get('canary'))}")
        rows.append((f"└── route: {route['name']}", route["kind"], status, ""))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    lines += ["   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)
