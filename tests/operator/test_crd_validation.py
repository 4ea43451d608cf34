"""Every CEL and schema rule of the WallBounceRollout CRD, applied with the real kubectl against the
real API server: a bad spec is refused with a message naming the field; good ones are accepted."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from wallbounce_api import API_VERSION, GROUP, KIND, PLURAL, VERSION
from wallbounce_local import controlplane

pytestmark = pytest.mark.integration

GOOD: dict[str, Any] = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "metadata": {"name": "techsapo"},
    "spec": {
        "stable": {"deployment": "techsapo-stable", "service": "techsapo-stable"},
        "canary": {"deployment": "techsapo-canary", "service": "techsapo-canary"},
        "trafficRouting": {"gatewayAPI": {"httpRoute": "techsapo"}},
        "analysis": {"prometheus": {"address": "http://prometheus.monitoring:9090"}},
    },
}


def apply(kubectl: Path, kubeconfig: Path, namespace: str, body: dict[str, Any],
          tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "wbr.yaml"
    path.write_text(yaml.safe_dump(body))
    return subprocess.run([str(kubectl), "--kubeconfig", str(kubeconfig), "apply", "-n", namespace, "-f", str(path)],
                          capture_output=True, text=True, timeout=60)


def with_spec(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(GOOD)
    body["spec"].update(changes)
    return body


def phases(*items: dict[str, Any]) -> dict[str, Any]:
    return with_spec(phases=list(items))


BAD = {
    "weights not increasing": (phases({"weight": 10}, {"weight": 5}), "spec.phases",
                               "weights must be strictly increasing"),
    "duplicate weights": (phases({"weight": 10}, {"weight": 10}), "spec.phases", "strictly increasing"),
    "weight above 100": (phases({"weight": 101}), "spec.phases[0].weight", "less than or equal to 100"),
    "weight zero": (phases({"weight": 0}), "spec.phases[0].weight", "greater than or equal to 1"),
    "empty ladder": (phases(), "spec.phases", "at least 1 items"),
    "two routers": (with_spec(trafficRouting={"gatewayAPI": {"httpRoute": "a"}, "smi": {"trafficSplit": "b"}}),
                    "spec.trafficRouting", "exactly one of gatewayAPI, istio, smi"),
    "no router": (with_spec(trafficRouting={}), "spec.trafficRouting", "exactly one of gatewayAPI, istio, smi"),
    "error gate looser than limit": (phases({"weight": 1, "promote": {"maxErrorRate": 0.01},
                                             "rollback": {"errorRate": 0.008}}),
                                     "spec.phases[0].promote.maxErrorRate", "must be below rollback.errorRate"),
    "error gate looser than the tier default": (phases({"weight": 1, "promote": {"maxErrorRate": 0.009}}),
                                                "spec.phases[0].promote.maxErrorRate",
                                                "must be below rollback.errorRate"),
    "rollback limit under the tier gate": (phases({"weight": 40, "rollback": {"errorRate": 0.01}}),
                                           "spec.phases[0].rollback.errorRate", "must be above promote.maxErrorRate"),
    "latency gate looser": (phases({"weight": 1, "promote": {"maxLatencyP95": "12s"}}),
                            "spec.phases[0].promote.maxLatencyP95", "must be below rollback.latencyP95"),
    "confidence gate looser": (phases({"weight": 1, "promote": {"minConsensusConfidence": 0.5}}),
                               "spec.phases[0].promote.minConsensusConfidence",
                               "must be above rollback.consensusConfidence"),
    "confidence level 1": (with_spec(analysis={"prometheus": {"address": "http://p:9090"}, "confidenceLevel": 1}),
                           "spec.analysis.confidenceLevel", "less than 1"),
    "negative confidence level": (with_spec(analysis={"prometheus": {"address": "http://p:9090"},
                                                      "confidenceLevel": -0.1}),
                                  "spec.analysis.confidenceLevel", "greater than or equal to 0"),
    "negative duration": (phases({"weight": 1, "duration": "-5m"}), "spec.phases[0].duration", "should match"),
    "zero interval": (with_spec(analysis={"prometheus": {"address": "http://p:9090"}, "interval": "0s"}),
                      "spec.analysis.interval", "at least 1s"),
    "negative minRequests": (phases({"weight": 1, "minRequests": -1}), "spec.phases[0].minRequests",
                             "greater than or equal to 0"),
    "negative errorLimit": (with_spec(analysis={"prometheus": {"address": "http://p:9090"}, "errorLimit": -1}),
                            "spec.analysis.errorLimit", "greater than or equal to 0"),
    "same service twice": (with_spec(canary={"deployment": "techsapo-canary", "service": "techsapo-stable"}),
                           "spec.canary.service", "different Service"),
    "unknown strategy": (with_spec(rollbackStrategy="Yolo"), "spec.rollbackStrategy", "Unsupported value"),
    "a window PromQL refuses": (with_spec(analysis={"window": "1.5m"}), "spec.analysis.window", "should match"),
    "a window in days": (with_spec(analysis={"window": "1d"}), "spec.analysis.window", "should match"),
    "zero progress deadline": (with_spec(progressDeadline="0s"), "spec.progressDeadline", "at least 1s"),
    "one subset for both": (with_spec(trafficRouting={"istio": {"virtualService": "vs", "destinationRule": {
        "name": "dr", "stableSubset": "v1", "canarySubset": "v1"}}}),
        "spec.trafficRouting.istio.destinationRule.canarySubset", "must differ"),
    "negative relative ratio": (phases({"weight": 1, "relative": {"maxErrorRateRatio": -1}}),
                                "spec.phases[0].relative.maxErrorRateRatio", "greater than or equal to 0"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_spec_is_refused_naming_the_field(case: str, control_plane: controlplane.ControlPlane,
                                                 kubectl: Path, wbr_crd: str, namespace: str,
                                                 tmp_path: Path) -> None:
    body, field, message = BAD[case]
    result = apply(kubectl, control_plane.kubeconfig, namespace, body, tmp_path)
    assert result.returncode != 0, f"{case} was accepted"
    assert field in result.stderr, result.stderr
    assert message in result.stderr, result.stderr


def test_good_specs_are_accepted_with_defaults(control_plane: controlplane.ControlPlane, kubectl: Path,
                                               wbr_crd: str, namespace: str, tmp_path: Path, kube: Any) -> None:
    from kubernetes import client

    assert apply(kubectl, control_plane.kubeconfig, namespace, GOOD, tmp_path).returncode == 0
    obj: Any = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "techsapo")
    spec = obj["spec"]
    assert [p["weight"] for p in spec["phases"]] == [1, 2, 10, 20, 35, 50]
    assert spec["phases"][0] == {"weight": 1, "duration": "10m", "minRequests": 100}
    assert (spec["analysis"]["interval"], spec["analysis"]["window"], spec["analysis"]["confidenceLevel"],
            spec["analysis"]["errorLimit"]) == ("30s", "2m", 0.95, 5)
    assert (spec["rollbackStrategy"], spec["paused"], spec["progressDeadline"]) == ("Emergency", False, "5m")
    assert "prometheus" not in with_spec(analysis={})["spec"]["analysis"]  # optional: the operator's default
    custom = with_spec(
        trafficRouting={"istio": {"virtualService": "vs", "routes": ["primary"]}},
        phases=[{"weight": 5, "duration": "30s", "minRequests": 0,
                 "promote": {"maxErrorRate": 0.01, "maxLatencyP95": "2s", "minConsensusConfidence": 0.8,
                             "maxCostPerRequest": 0.02},
                 "rollback": {"errorRate": 0.05, "latencyP95": "4s", "consensusConfidence": 0.5}},
                {"weight": 100}],
        rollbackStrategy="Gradual")
    custom["metadata"]["name"] = "custom"
    result = apply(kubectl, control_plane.kubeconfig, namespace, custom, tmp_path)
    assert result.returncode == 0, result.stderr
