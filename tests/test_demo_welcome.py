"""The demo channel's pinned welcome message: golden Block Kit for both modes, within Slack's limits."""

from __future__ import annotations

import json

import pytest
from slack_sdk.models.blocks import Block

from incidentfox.blocks.demo_welcome import WELCOME_HEADER, welcome_blocks, welcome_text
from incidentfox.blocks.limits import MAX_BLOCKS_PER_MESSAGE, MESSAGE_TEXT_BUDGET, block_text_length
from tests.goldens import assert_matches_golden


@pytest.mark.parametrize(
    ("name", "model_configured", "sre_agent"),
    [
        ("welcome_no_llm", False, False),
        ("welcome_with_model", True, False),
        ("welcome_sre_agent", False, True),
    ],
)
def test_welcome_matches_its_golden(name: str, model_configured: bool, sre_agent: bool) -> None:
    blocks = welcome_blocks(model_configured=model_configured, sre_agent=sre_agent)
    assert_matches_golden("demo", name, blocks)


def test_welcome_says_what_to_try_and_how_to_turn_the_demo_off() -> None:
    blocks = welcome_blocks(model_configured=False)
    text = json.dumps(blocks, ensure_ascii=False)
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": WELCOME_HEADER, "emoji": True},
    }
    for needle in (
        "@IncidentFox why is checkout failing?",
        "/incidentfox help",
        "/incidentfox setup",
        "*Home* tab",
        "*Demo* buttons",
        "*Console* tab",
        "no data leaves your machine",
        "no-LLM mode",
        "OPENAI_API_KEY",
        "INCIDENTFOX_DEMO=0",
    ):
        assert needle in text, needle
    with_model = json.dumps(welcome_blocks(model_configured=True), ensure_ascii=False)
    assert "no-LLM mode" not in with_model and "no data leaves" not in with_model
    assert "go to that model" in with_model


def test_welcome_is_valid_block_kit_within_slack_limits() -> None:
    blocks = welcome_blocks(model_configured=False)
    assert len(blocks) <= MAX_BLOCKS_PER_MESSAGE
    assert sum(block_text_length(b) for b in blocks) <= MESSAGE_TEXT_BUDGET
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()
    assert "@IncidentFox why is checkout failing?" in welcome_text()
