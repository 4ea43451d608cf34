"""docs/service-protocol.md documents every round's prompt and schema exactly as the code sends them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wallbounce_service import protocol
from wallbounce_service.finals import Final

DOC = (Path(__file__).resolve().parents[2] / "docs" / "service-protocol.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("system", "schema"),
    [
        (protocol.ANSWER_SYSTEM, protocol.ANSWER),
        (protocol.CROSS_EXAMINATION_SYSTEM, protocol.CROSS_EXAMINATION),
        (protocol.REVIEW_SYSTEM, protocol.REVIEW),
        (protocol.RESTATEMENT_SYSTEM, protocol.RESTATEMENT),
    ],
    ids=["answer", "cross-examination", "review", "restatement"],
)
def test_every_round_is_documented_verbatim(system: str, schema: protocol.OutputSchema) -> None:
    assert system in DOC, "the system prompt changed: regenerate docs/service-protocol.md"
    assert json.dumps(schema.schema, indent=2, ensure_ascii=False) in DOC, f"the {schema.name} schema changed"
    assert f"`{schema.name}`" in DOC


def test_the_probe_and_the_prompt_markers_are_documented() -> None:
    for prefix in protocol.PROBE_PREFIX.values():
        assert prefix in DOC
    for marker in ("<question>", "</question>", "<answers>", "</answers>"):
        assert marker in DOC


def test_a_restatement_shows_the_provider_its_own_final_only() -> None:
    own = protocol.StructuredAnswer("It is fine.", Final("claim", "It is not unsafe.", "not unsafe"), ("one claim",))
    text = protocol.restatement_prompt("Is it safe?", own)
    assert text.startswith("<question>\nIs it safe?\n</question>") and "It is not unsafe." in text
    assert "<answers>" not in text and "one claim" not in text and "It is fine." not in text
    assert protocol.parse_restatement({"restated_final": {"kind": "boolean", "value": "yes", "unit": "",
                                                          "text": "Yes."}}) == Final("boolean", "Yes.", "yes",
                                                                                     boolean=True)
    assert protocol.parse_restatement({"final": {}}) is None
