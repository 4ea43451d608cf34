"""The service as a process (``wallbounce_service.cli``) against the simulator process, re-scripted at run time,
and the OpenAPI document validated against the live service by schemathesis (no 5xx, no schema violations)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from wallbounce_service.cli import build_parser

from .conftest import auth_header
from .processes import post_json, running_stack

GEN = "/api/v1/generate"

# schemathesis cases per POST operation and mode; `make chaos` runs a few thousand in all
POST_EXAMPLES = int(os.environ.get("CHAOS_SCHEMATHESIS_EXAMPLES", "25"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with running_stack(tmp_path_factory.mktemp("stack"), variant="canary") as urls:
        yield urls


def test_cli_defaults_to_port_4000() -> None:
    args = build_parser().parse_args([])
    assert args.port == 4000
    args = build_parser().parse_args(["--host", "127.0.0.1", "--port", "4100"])
    assert (args.host, args.port) == ("127.0.0.1", 4100)


def test_process_serves_and_the_simulator_can_be_rescripted_at_run_time(stack: dict[str, str]) -> None:
    status, body, headers = post_json(stack["url"] + GEN, {"prompt": "Is blue-green deployment safe?"})
    assert status == 200 and body["variant"] == "canary" and headers["X-Wallbounce-Variant"] == "canary"
    # the demo's lever: make the canary's simulators fail, over the control endpoint
    status, _, _ = post_json(
        stack["sim_url"] + "/_sim/script",
        {"gemini": {"error_status": 500}, "anthropic": {"error_status": 529}, "openai": {"error_status": 503}},
    )
    assert status == 200
    status, body, _ = post_json(stack["url"] + GEN, {"prompt": "Is canary analysis useful?"})
    assert status == 503 and body["error"]["code"] in ("not_enough_providers", "providers_unavailable")
    # and disagree
    post_json(stack["sim_url"] + "/_sim/reset", {})
    post_json(stack["sim_url"] + "/_sim/script", {"anthropic": {"final": "No, never do that."}})
    status, body, _ = post_json(stack["url"] + GEN, {"prompt": "Should we do that?"})
    assert status == 422 and body["error"]["code"] == "low_consensus"
    post_json(stack["sim_url"] + "/_sim/reset", {})
    log_lines = Path(stack["log"]).read_text().splitlines()
    records = [json.loads(line) for line in log_lines if line.startswith("{")]
    assert any(r.get("message") == "service ready" for r in records)


@pytest.mark.timeout(max(300, POST_EXAMPLES * 2))
def test_openapi_document_matches_live_behaviour(stack: dict[str, str]) -> None:
    """schemathesis, positive and negative cases for every operation: no 5xx, no schema violations, and the
    documented status codes, content types and headers only (about 150 cases in all)."""
    # documented answers to schema-valid input: 422 (a budget below every pair, a consensus below the minimum) and
    # 404 (a well-formed session_id that the service never minted for this tenant)
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "404", "422"]}}}
    )
    schema = schemathesis.openapi.from_url(stack["url"] + "/api/v1/openapi.json", config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /api/v1/generate", "POST /api/v1/generate/stream", "GET /readyz"}
    calls: dict[str, int] = {}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET":
                continue  # GET operations take no input: nothing to make invalid

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=POST_EXAMPLES if operation.method.upper() == "POST" else 5,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            def check(case: schemathesis.Case) -> None:
                response = case.call_and_validate(base_url=stack["url"], headers=auth_header(), timeout=30)
                label = case.operation.label
                calls[label] = calls.get(label, 0) + 1
                assert response.status_code < 500

            check()
    assert sum(calls.values()) >= 60, calls
