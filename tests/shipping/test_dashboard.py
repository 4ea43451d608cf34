"""The Grafana dashboard: the JSON parses, it ships in ConfigMaps with the sidecar label (kustomize base
and Helm chart, byte-identical), it has the panels the issue asks for, and every PromQL expression in
it (Grafana variables substituted) is accepted by a real Prometheus."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from tests.shipping.support import CHART_DASHBOARD, DASHBOARD, MANIFESTS, load_yaml_file
from tests.shipping.test_alerts import unknown_metrics

# What Grafana puts in place of the variables (a multi-value regex variable renders as (a|b)).
VARIABLES = {
    "__rate_interval": "1m",
    "__range": "1h",
    "namespace": "llm",
    "service": "(techsapo-stable|techsapo-canary)",
    "rollout": "(techsapo)",
}


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def expressions() -> list[str]:
    """Every PromQL expression in the panels, and the series selectors of the label_values() variables."""
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    for var in dashboard()["templating"]["list"]:
        if var["type"] == "query":
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["query"]["query"])
            assert match, f"variable {var['name']}: unexpected query {var['query']}"
            exprs.append(match.group(1))
    return exprs


def substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in VARIABLES, f"unknown Grafana variable ${name} in {expr}"
        return VARIABLES[name]

    out = re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)
    assert "$" not in out
    return out


def test_dashboard_has_the_panels_the_issue_asks_for() -> None:
    titles = {p["title"] for p in dashboard()["panels"]}
    for wanted in ("Traffic split stable / canary", "Error rate", "p95 latency", "Consensus confidence",
                   "Cost per request", "Provider success ratio", "Rollout phase", "Canary weight and step"):
        assert wanted in titles
    panel_ids = [p["id"] for p in dashboard()["panels"]]
    assert len(panel_ids) == len(set(panel_ids)), "panel ids must be unique"
    assert dashboard()["uid"] == "wallbounce-rollouts"


def test_each_gate_is_drawn_beside_its_value() -> None:
    """One panel per analysed metric: the canary's value, the step's promotion gate and its rollback limit."""
    gates = {p["title"]: p for p in dashboard()["panels"] if p["title"].startswith("Gate: ")}
    assert len(gates) == 4
    for title, panel in gates.items():
        exprs = [t["expr"] for t in panel["targets"]]
        metric = re.findall(r'metric="(\w+)"', exprs[0])
        assert len(exprs) == 3 and metric and all(f'metric="{metric[0]}"' in e for e in exprs), title
        assert "wallbounce_rollout_analysis_value" in exprs[0]
        assert 'gate="promote"' in exprs[1] and 'gate="rollback"' in exprs[2], title
    titles = {p["title"] for p in dashboard()["panels"]}
    assert {"Time spent per phase (p90)", "Events by reason"} <= titles


def test_dashboard_ships_in_configmaps_with_the_sidecar_label() -> None:
    kustomization = load_yaml_file(MANIFESTS / "base" / "kustomization.yaml")[0]
    generator = next(g for g in kustomization["configMapGenerator"] if g["name"] == "wallbounce-dashboard")
    assert generator["options"]["labels"] == {"grafana_dashboard": "1"}
    assert generator["files"] == ["wallbounce-rollouts.json=dashboards/wallbounce-rollouts.json"]
    assert CHART_DASHBOARD.read_bytes() == DASHBOARD.read_bytes(), "the chart's dashboard copy drifted"


def test_dashboard_queries_use_only_contract_metrics() -> None:
    for expr in expressions():
        assert not unknown_metrics(expr), f"{expr}: {unknown_metrics(expr)}"


def test_every_dashboard_query_is_accepted_by_prometheus(prometheus_factory: Callable[..., Any]) -> None:
    server = prometheus_factory([])
    exprs = expressions()
    assert len(exprs) >= 15
    for expr in exprs:
        query = urllib.parse.urlencode({"query": substitute(expr)})
        try:
            with urllib.request.urlopen(f"{server.url}/api/v1/query?{query}", timeout=10) as resp:
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
        assert body["status"] == "success", f"Prometheus rejected {expr!r}: {body.get('error')}"


def test_prometheus_really_rejects_a_bad_expression(prometheus_factory: Callable[..., Any]) -> None:
    """The check above can fail: an unbalanced expression is reported as a bad_data error."""
    server = prometheus_factory([])
    broken = "sum by (variant) (rate(wallbounce_requests_total[$__rate_interval])"
    query = urllib.parse.urlencode({"query": substitute(broken)})
    try:
        urllib.request.urlopen(f"{server.url}/api/v1/query?{query}", timeout=10)
        raise AssertionError("Prometheus accepted a broken expression")
    except urllib.error.HTTPError as exc:
        assert json.loads(exc.read())["errorType"] == "bad_data"
