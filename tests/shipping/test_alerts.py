"""The PrometheusRule: ``promtool check rules`` and ``promtool test rules`` (every alert has a series that
must fire and one that must not, in tests/shipping/promtool/), the alert levels with their ``for`` durations
(warning and critical only, no alert that pages on one evaluation), ``absent()`` for vanished targets, a
``runbook_url`` to its own section of docs/runbooks.md, metric names from the contracts, and the Helm charts
carrying the same groups."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.shipping.support import CHART_RULES, PROMETHEUS_RULE, run
from wallbounce_api import metrics as m

PROMTOOL_TESTS = Path(__file__).parent / "promtool"

# The metrics contract (design.md) and the operator's metrics (docs/operator-contract.md), plus the
# process and scrape metrics every target has.
SERVICE_METRICS = {
    m.REQUESTS_TOTAL, m.REQUEST_DURATION_SECONDS, m.CONSENSUS_CONFIDENCE, m.PROVIDER_REQUESTS_TOTAL,
    m.PROVIDER_DURATION_SECONDS, m.TOKENS_TOTAL, m.COST_USD_TOTAL, m.CACHE_REQUESTS_TOTAL, m.INFLIGHT_REQUESTS,
    "wallbounce_provider_available",  # the service's one addition to the contract
}
OPERATOR_METRICS = {
    "wallbounce_operator_rollouts", "wallbounce_operator_rollout_weight", "wallbounce_operator_rollout_step",
    "wallbounce_operator_rollout_phase", "wallbounce_operator_rollout_paused", "wallbounce_operator_verdicts_total",
    "wallbounce_operator_transitions_total", "wallbounce_operator_reconcile_duration_seconds",
    "wallbounce_operator_prometheus_queries_total", "wallbounce_operator_prometheus_query_errors_total",
    "wallbounce_operator_info", "wallbounce_operator_notifications_total", "wallbounce_rollout_events_total",
    "wallbounce_rollout_phase_duration_seconds", "wallbounce_rollout_info", "wallbounce_rollout_analysis_value",
    "wallbounce_rollout_threshold", "wallbounce_operator_oldest_evaluation_age_seconds",
}
HISTOGRAMS = {m.REQUEST_DURATION_SECONDS, m.CONSENSUS_CONFIDENCE, m.PROVIDER_DURATION_SECONDS,
              "wallbounce_operator_reconcile_duration_seconds", "wallbounce_rollout_phase_duration_seconds"}
KNOWN = SERVICE_METRICS | OPERATOR_METRICS | {f"{h}_{s}" for h in HISTOGRAMS for s in ("bucket", "sum", "count")}


def unknown_metrics(expr: str) -> set[str]:
    """``wallbounce_*`` names in a PromQL expression that no contract defines (typos)."""
    return {name for name in re.findall(r"\bwallbounce_[a-z0-9_]+", expr) if name not in KNOWN}


def groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]["groups"])


def alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in groups() for rule in group["rules"] if "alert" in rule}


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A plain Prometheus rules file made from the PrometheusRule, next to copies of the promtool tests."""
    (tmp_path / "wallbounce-rules.yaml").write_text(yaml.safe_dump({"groups": groups()}, sort_keys=False))
    for test_file in PROMTOOL_TESTS.glob("*.yaml"):
        shutil.copy(test_file, tmp_path / test_file.name)
    return tmp_path


def test_promtool_checks_the_rules(promtool: Path, rules_dir: Path) -> None:
    proc = run([promtool, "check", "rules", rules_dir / "wallbounce-rules.yaml"])
    assert f"SUCCESS: {len(alerts())} rules found" in proc.stdout


def test_promtool_unit_tests_pass(promtool: Path, rules_dir: Path) -> None:
    files = sorted(p.name for p in rules_dir.glob("*_test.yaml"))
    assert files == ["operator_alerts_test.yaml", "service_alerts_test.yaml"]
    proc = run([promtool, "test", "rules", *[rules_dir / f for f in files]])
    assert proc.stdout.count("SUCCESS") == len(files), proc.stdout


def test_promtool_unit_tests_fail_when_an_alert_is_broken(promtool: Path, rules_dir: Path) -> None:
    """The unit tests can fail: raise the emergency error-rate threshold and they do."""
    broken = groups()
    for group in broken:
        for rule in group["rules"]:
            if rule.get("alert") == "WallBounceErrorRateAtRollbackLevel":
                rule["expr"] = rule["expr"].replace("> 0.03", "> 0.5")
    (rules_dir / "wallbounce-rules.yaml").write_text(yaml.safe_dump({"groups": broken}, sort_keys=False))
    proc = run([promtool, "test", "rules", rules_dir / "service_alerts_test.yaml"], check=False)
    assert proc.returncode != 0
    assert "WallBounceErrorRateAtRollbackLevel" in proc.stdout + proc.stderr


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for test_file in PROMTOOL_TESTS.glob("*_test.yaml"):
        for case in yaml.safe_load(test_file.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
                # a firing check must expect exactly one alert: the other series in the case must not fire
                assert len(check.get("exp_alerts") or []) <= 1, check
    assert firing == set(alerts()), f"alerts never expected to fire: {set(alerts()) - firing}"
    with_for = {name for name, rule in alerts().items() if rule.get("for")}
    assert with_for <= quiet, f"alerts with a 'for' never checked before it elapses: {with_for - quiet}"


def test_the_alert_levels() -> None:
    rules = alerts()
    levels = {
        "warning": ("5m", {"WallBounceConsensusConfidenceLow": "< 0.8", "WallBounceLatencyP95High": "> 5",
                           "WallBounceMemoryHigh": "> 800 * 1024 * 1024"}),
        "critical": ("1m", {"WallBounceErrorRateHigh": "> 0.02", "WallBounceConsensusConfidenceCritical": "< 0.7",
                            "WallBounceMemoryCritical": "> 1000 * 1024 * 1024", "WallBounceAllProvidersDown": "== 0",
                            "WallBounceProcessDown": "== 0", "WallBounceRolloutRolledBack": "== 1"}),
    }
    for severity, (duration, named) in levels.items():
        for name, threshold in named.items():
            rule = rules[name]
            assert rule["labels"]["severity"] == severity, name
            assert rule.get("for") == duration, name
            assert threshold in rule["expr"], name
    rollback_level = rules["WallBounceErrorRateAtRollbackLevel"]
    assert (rollback_level["labels"]["severity"], rollback_level["for"]) == ("critical", "30s")
    assert "> 0.03" in rollback_level["expr"]
    assert "process_resident_memory_bytes" in rules["WallBounceMemoryHigh"]["expr"]
    assert {r["labels"]["severity"] for r in rules.values()} == {"warning", "critical"}
    assert all(r.get("for") for r in rules.values()), [n for n, r in rules.items() if not r.get("for")]
    for name in ("WallBounceRolloutPausedOnAnalysisErrors", "WallBouncePrometheusUnreachable"):
        assert name in rules


def test_vanished_targets_alert_through_absent() -> None:
    rules = alerts()
    assert rules["WallBounceOperatorAbsent"]["expr"] == 'absent(up{job="wallbounce-operator"})'
    assert rules["WallBounceServiceTargetsAbsent"]["expr"] == 'absent(up{job="wallbounce-service"})'


def test_every_alert_has_its_runbook_section() -> None:
    runbooks = (PROMETHEUS_RULE.parents[2] / "docs" / "runbooks.md").read_text()
    sections = dict(re.findall(r"(?m)^## (\w+)\n(.*?)(?=^## |\Z)", runbooks, re.S))
    assert set(sections) == set(alerts()), "one section per alert, no other"
    for name, rule in alerts().items():
        url = rule["annotations"]["runbook_url"]
        assert url.endswith(f"/docs/runbooks.md#{name.lower()}"), name
        for part in ("**What it means.**", "**What to check.**", "**What to do.**"):
            assert part in sections[name], f"docs/runbooks.md, {name}: {part}"


def test_alerts_use_only_contract_metrics() -> None:
    for name, rule in alerts().items():
        assert not unknown_metrics(rule["expr"]), f"{name}: {unknown_metrics(rule['expr'])}"
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_the_chart_ships_the_same_rule_groups() -> None:
    """Each chart ships its own group of the kustomize base's PrometheusRule, verbatim."""
    shipped = {name: yaml.safe_load(path.read_text())["groups"] for name, path in CHART_RULES.items()}
    assert {name: [g["name"] for g in gs] for name, gs in shipped.items()} == {
        "wallbounce-operator": ["wallbounce-operator"], "wallbounce-service": ["wallbounce-service"]}
    assert sorted((g for gs in shipped.values() for g in gs), key=lambda g: g["name"]) == sorted(
        groups(), key=lambda g: g["name"])
