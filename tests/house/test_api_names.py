"""``wallbounce-api`` says what the CRD says: its coordinates, short name, phases and condition types are the
ones ``crds/wallbouncerollouts.yaml`` declares, so code that imports the names and manifests that spell them
cannot drift apart."""

from __future__ import annotations

from pathlib import Path

import yaml

import wallbounce_api as api

CRD = Path(__file__).resolve().parents[2] / "crds" / "wallbouncerollouts.yaml"


def test_the_coordinates_are_the_crds() -> None:
    crd = yaml.safe_load(CRD.read_text())
    names = crd["spec"]["names"]
    assert crd["metadata"]["name"] == api.CRD_NAME
    assert crd["spec"]["group"] == api.GROUP
    assert [v["name"] for v in crd["spec"]["versions"]] == [api.VERSION]
    assert (names["kind"], names["plural"], names["singular"], names["shortNames"]) == (
        api.KIND, api.PLURAL, api.SINGULAR, [api.SHORT_NAME])
    assert api.API_VERSION == "wallbounce.dev/v1alpha1"
    assert api.ACTION_ANNOTATION == "wallbounce.dev/action"


def test_the_status_words_are_the_crds() -> None:
    crd = yaml.safe_load(CRD.read_text())
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    phases = status["phase"]["description"].rstrip(".").replace(" or ", ", ").split(", ")
    assert phases == [str(p) for p in api.Phase]
    conditions = status["conditions"]["description"].split(" conditions")[0].replace(" and ", ", ").split(", ")
    assert conditions == [str(c) for c in api.ConditionType]


def test_the_metrics_contract_names_are_prometheus_names() -> None:
    names = [v for k, v in vars(api.metrics).items() if k.isupper() and isinstance(v, str)]
    assert names and all(n.replace("_", "").isalnum() and n.islower() for n in names)
    assert api.metrics.REQUESTS_TOTAL.endswith("_total") and api.metrics.Outcome.ERROR == "error"


def test_the_service_exports_every_metric_of_the_contract() -> None:
    """The service spells its metric names itself (its package is being rewritten elsewhere): hold it to the API."""
    from prometheus_client import generate_latest

    from wallbounce_service.metrics import Metrics

    exposition = generate_latest(Metrics("canary").registry).decode()
    declared = {line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE ")}
    contract = {v for k, v in vars(api.metrics).items() if k.isupper() and v.startswith("wallbounce_")}
    assert contract <= declared, contract - declared
