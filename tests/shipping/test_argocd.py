"""Argo CD: the Lua health check and resource actions, laid out as in Argo CD's ``resource_customizations``
(``wallbounce.dev/WallBounceRollout/health.lua``, ``health_test.yaml``, ``testdata/``, ``actions/``,
``actions/action_test.yaml``), run the way Argo CD runs them (a Lua 5.1 interpreter from PyPI, ``obj`` as a global,
JSON numbers as floats, no os/io) against every case of those test files as Argo CD's own test does; the argocd-cm
snippet carries exactly those .lua files; the Application syncs out-of-sync objects only and ignores exactly what
the operator writes (the route weights, and fields of its field manager); both examples are accepted by a real API
server (Argo CD's CRD installed)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import lupa.lua51 as lua51
import pytest
import yaml

from tests.shipping.conftest import Cluster
from tests.shipping.support import ACTIONS, MANIFESTS, documents, dry_run, load_yaml_file, run
from wallbounce_api import ACTION_ANNOTATION, GROUP, KIND

ARGOCD = MANIFESTS / "argocd"
CUSTOM = ARGOCD / "resource_customizations" / GROUP / KIND
HEALTH = CUSTOM / "health.lua"
DISCOVERY = CUSTOM / "actions" / "discovery.lua"
GROUP_KIND = f"{GROUP}_{KIND}"


def jsonish(value: Any) -> Any:
    """As Argo CD hands objects to Lua: parsed JSON, every number a float."""
    if isinstance(value, dict):
        return {k: jsonish(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonish(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def from_lua(value: Any) -> Any:
    if lua51.lua_type(value) != "table":
        return value
    items = dict(value.items())
    if items and all(isinstance(k, int) for k in items) and sorted(items) == list(range(1, len(items) + 1)):
        return [from_lua(items[i]) for i in range(1, len(items) + 1)]
    return {k: from_lua(v) for k, v in items.items()}


def run_lua(script: Path | str, obj: dict[str, Any]) -> Any:
    runtime = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    runtime.execute("io = nil; os = nil; debug = nil; require = nil; dofile = nil; loadfile = nil")
    runtime.globals().obj = runtime.table_from(jsonish(obj), recursive=True)
    text = script.read_text() if isinstance(script, Path) else script
    return from_lua(runtime.execute(text))


def rollout(phase: str | None = None, **status: Any) -> dict[str, Any]:
    obj: dict[str, Any] = copy.deepcopy(load_yaml_file(MANIFESTS / "samples" / "rollout-default-ladder.yaml")[0])
    obj["metadata"].update(generation=3, annotations={"team": "llm"})
    if phase is not None:
        obj["status"] = {"phase": phase, "observedGeneration": 3, "step": 2, "steps": 6, "weight": 2,
                         "analysis": {"verdict": "Pass", "reason": "all gates hold", "errorRate": 0.001}, **status}
    return obj


@pytest.mark.parametrize(("phase", "health"), [
    ("Progressing", "Progressing"),
    ("Holding", "Progressing"),
    ("Paused", "Suspended"),
    ("RolledBack", "Degraded"),
    ("Aborted", "Degraded"),
    ("RollingBack", "Degraded"),
    ("Promoting", "Progressing"),
    ("Completed", "Healthy"),
    ("Promoted", "Healthy"),
])
def test_health_of_each_phase(phase: str, health: str) -> None:
    hs = run_lua(HEALTH, rollout(phase))
    assert hs["status"] == health
    assert hs["message"] == f"{phase}: step 2/6, canary weight 2%, last verdict Pass (all gates hold)"


def test_health_without_status_is_progressing() -> None:
    assert run_lua(HEALTH, rollout())["status"] == "Progressing"
    obj = rollout()
    obj["status"] = {}
    assert run_lua(HEALTH, obj) == {"status": "Progressing", "message": "Waiting for the operator to report a phase"}


def test_health_waits_for_the_operator_to_observe_a_new_spec() -> None:
    obj = rollout("Completed", observedGeneration=2)
    assert run_lua(HEALTH, obj) == {"status": "Progressing",
                                    "message": "Waiting for the operator to observe generation 3"}


def test_health_message_says_why_it_paused_and_the_operator_message() -> None:
    hs = run_lua(HEALTH, rollout("Paused", pauseReason="AnalysisErrors", message="Prometheus unreachable",
                                 analysis={"verdict": "Error"}))
    assert hs == {"status": "Suspended",
                  "message": "Paused: step 2/6, canary weight 2%, last verdict Error; paused: AnalysisErrors"
                             " - Prometheus unreachable"}


def test_a_stalled_rollout_is_degraded_with_the_reason() -> None:
    hs = run_lua(HEALTH, rollout("Progressing", conditions=[
        {"type": "Stalled", "status": "True", "reason": "ProgressDeadlineExceeded", "message": "not available"}]))
    assert hs["status"] == "Degraded" and "stalled: ProgressDeadlineExceeded not available" in hs["message"]


def test_health_of_an_unknown_phase_is_unknown() -> None:
    assert run_lua(HEALTH, rollout("Exploded"))["status"] == "Unknown"


@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_sets_the_annotation_and_nothing_else(action: str) -> None:
    before = rollout("Progressing")
    after = run_lua(CUSTOM / "actions" / action / "action.lua", before)
    assert after["metadata"]["annotations"] == {"team": "llm", ACTION_ANNOTATION: action}
    after["metadata"]["annotations"].pop(ACTION_ANNOTATION)
    assert after == jsonish(before), "an action must not change the spec (Argo CD would see drift)"
    bare = rollout("Progressing")
    del bare["metadata"]["annotations"]
    assert run_lua(CUSTOM / "actions" / action / "action.lua", bare)["metadata"]["annotations"] == {
        ACTION_ANNOTATION: action}


def enabled(obj: dict[str, Any]) -> set[str]:
    actions = run_lua(DISCOVERY, obj)
    assert set(actions) == set(ACTIONS)
    return {name for name, spec in actions.items() if not spec["disabled"]}


@pytest.mark.parametrize(("phase", "expected"), [
    (None, {"pause", "promote", "promote-full", "abort"}),
    ("Progressing", {"pause", "promote", "promote-full", "abort"}),
    ("Holding", {"pause", "promote", "promote-full", "abort"}),
    ("Paused", {"resume", "promote", "promote-full", "abort"}),
    ("RolledBack", {"retry"}),
    ("Aborted", {"retry"}),
    ("Completed", {"abort"}),
    ("Promoted", set()),
])
def test_discovery_offers_the_actions_that_apply(phase: str | None, expected: set[str]) -> None:
    assert enabled(rollout(phase)) == expected


def test_resume_is_not_offered_while_git_says_paused() -> None:
    obj = rollout("Paused", pauseReason="Spec")
    obj["spec"]["paused"] = True
    assert "resume" not in enabled(obj)


def argocd_cm() -> dict[str, Any]:
    return load_yaml_file(ARGOCD / "argocd-cm.yaml")[0]


def test_argocd_cm_snippet_holds_exactly_the_lua_files() -> None:
    data = argocd_cm()["data"]
    assert data[f"resource.customizations.health.{GROUP_KIND}"] == HEALTH.read_text()
    actions = yaml.safe_load(data[f"resource.customizations.actions.{GROUP_KIND}"])
    assert actions["discovery.lua"] == DISCOVERY.read_text()
    assert [d["name"] for d in actions["definitions"]] == list(ACTIONS)
    for definition in actions["definitions"]:
        assert definition["action.lua"] == (CUSTOM / "actions" / definition["name"] / "action.lua").read_text()
    lua_files = {p.relative_to(CUSTOM).as_posix() for p in ARGOCD.rglob("*.lua")}
    assert lua_files == {"health.lua", "actions/discovery.lua", *(f"actions/{a}/action.lua" for a in ACTIONS)}


def select(obj: Any, path: str) -> list[Any]:
    """Values at a jq path of the simple form Argo CD examples use: ``.a.b[].c``."""
    values = [obj]
    for step in re.findall(r"\.(\w+)(\[\])?", path):
        key, each = step
        values = [v[key] for v in values if isinstance(v, dict) and key in v]
        if each:
            values = [item for v in values for item in v]
    return values


def routes(cluster: Cluster) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in ("base", "overlays/istio", "overlays/smi"):
        for o in documents(run([cluster.kubectl, "kustomize", MANIFESTS / path]).stdout):
            if o["kind"] in {"HTTPRoute", "VirtualService", "TrafficSplit"}:
                found[o["kind"]] = o
    return found


def test_health_test_yaml_in_argocds_format() -> None:
    """Every case of health_test.yaml, as Argo CD's TestLuaHealthScript runs them: the testdata object in, the
    health status and message out; the cases cover every phase, a stalled one, pause reasons, an unobserved
    generation and no status."""
    cases = yaml.safe_load((CUSTOM / "health_test.yaml").read_text())["tests"]
    for case in cases:
        obj = load_yaml_file(CUSTOM / case["inputPath"])[0]
        assert run_lua(HEALTH, obj) == case["healthStatus"], case["inputPath"]
    phases = {load_yaml_file(CUSTOM / c["inputPath"])[0].get("status", {}).get("phase") for c in cases}
    assert phases == {"Progressing", "Holding", "Paused", "RollingBack", "Completed", "Promoting", "Promoted",
                      "RolledBack", "Aborted", None}
    assert {c["healthStatus"]["status"] for c in cases} == {"Progressing", "Suspended", "Degraded", "Healthy"}
    assert sorted(p.name for p in (CUSTOM / "testdata").iterdir()) == sorted(
        Path(c["inputPath"]).name for c in cases), "every testdata file is a case"


def test_action_test_yaml_in_argocds_format() -> None:
    """Every discovery and action case of actions/action_test.yaml, as Argo CD's TestLuaResourceActionsScript runs
    them."""
    spec = yaml.safe_load((CUSTOM / "actions" / "action_test.yaml").read_text())
    for case in spec["discoveryTests"]:
        obj = load_yaml_file(CUSTOM / "actions" / case["inputPath"])[0]
        found = run_lua(DISCOVERY, obj)
        assert {name: a["disabled"] for name, a in found.items()} == {
            r["name"]: r["disabled"] for r in case["result"]}, case["inputPath"]
    for case in spec["actionTests"]:
        obj = load_yaml_file(CUSTOM / "actions" / case["inputPath"])[0]
        out = run_lua(CUSTOM / "actions" / case["action"] / "action.lua", obj)
        assert out == jsonish(load_yaml_file(CUSTOM / "actions" / case["expectedOutputPath"])[0]), case["action"]
    assert {c["action"] for c in spec["actionTests"]} == set(ACTIONS)


def test_ignore_differences_select_exactly_the_weights(cluster: Cluster) -> None:
    app = load_yaml_file(ARGOCD / "application.yaml")[0]
    assert {"ApplyOutOfSyncOnly=true", "RespectIgnoreDifferences=true"} <= set(app["spec"]["syncPolicy"]["syncOptions"])
    managers = [d for d in app["spec"]["ignoreDifferences"] if "managedFieldsManagers" in d]
    assert managers == [{"group": "*", "kind": "*", "managedFieldsManagers": ["wallbounce-operator"]}]
    ignored = {(d["group"], d["kind"]): d["jqPathExpressions"] for d in app["spec"]["ignoreDifferences"]
               if "jqPathExpressions" in d}
    assert set(ignored) == {("gateway.networking.k8s.io", "HTTPRoute"), ("networking.istio.io", "VirtualService"),
                            ("split.smi-spec.io", "TrafficSplit")}
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]
    objects = routes(cluster)
    for (group, kind), paths in ignored.items():
        obj = objects[kind]
        assert obj["apiVersion"].startswith(group + "/")
        assert len(paths) == 1
        assert select(obj, paths[0]) == [100, 0], f"{kind}: {paths[0]} must select the two weights"
        stripped = copy.deepcopy(obj)
        for holder in select(stripped, paths[0].rsplit(".", 1)[0]):
            holder.pop("weight")
        assert "weight" not in yaml.safe_dump(stripped), f"{kind}: a weight is not covered by {paths[0]}"


def test_argocd_examples_are_accepted_by_the_api_server(cluster: Cluster) -> None:
    objects = [*load_yaml_file(ARGOCD / "application.yaml"), argocd_cm()]
    dry_run(cluster.kubectl, cluster.kubeconfig, objects)
