"""docs/service-protocol.md documents every round's prompt and schema exactly as the code sends them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wallbounce_service import protocol

DOC = (Path(__file__).resolve().parents[2] / "docs" / "service-protocol.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("system", "schema"),
    [
        (protocol.ANSWER_SYSTEM, protocol.ANSWER),
        (protocol.CROSS_EXAMINATION_SYSTEM, protocol.CROSS_EXAMINATION),
        (protocol.REVIEW_SYSTEM, protocol.REVIEW),
    ],
    ids=["answer", "cross-examination", "review"],
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
