"""Golden files for the setup modal and the ``/incidentfox`` replies (help, status).

Each case renders realistic data and compares it with ``tests/golden/commands/<case>.json``; every
view and message must also pass the Slack emulator's Block Kit validation. After an intended change,
regenerate with ``UPDATE_GOLDENS=1 pytest tests/test_command_golden.py`` and review the JSON diff.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from incidentfox.blocks.command_replies import RunLine, help_blocks, help_text, status_blocks
from incidentfox.blocks.setup_modal import (
    SetupForm,
    render_done,
    render_loading,
    render_notice,
    render_setup_form,
)
from incidentfox.emulators.slack.validation import validate_message, validate_view
from incidentfox.handlers.slack.setup import NOT_CONNECTED
from tests.goldens import assert_matches_golden

AT = datetime(2024, 6, 3, 16, 0, tzinfo=UTC)

CLAIMING = SetupForm(
    "C0PAYMENTS", "Acme Corp", True, teams=[], parents=[("+org", "Acme Corp (the new org)")], org_admin=True
)
EXISTING = SetupForm(
    "C0PAYMENTS",
    "Acme",
    False,
    teams=[("checkout", "Checkout"), ("ledger", "Ledger <ops> & co")],
    parents=[("acme", "Acme (the org)"), ("payments", "payments"), ("platform", "platform / core")],
    org_admin=True,
)


def _status() -> dict[str, Any]:
    active = [
        RunLine("why is checkout 502ing?", "running", AT, None, "https://acme.slack.com/archives/C1/p1")
    ]
    finished = [
        RunLine(
            "checkout pods crashlooping", "succeeded", AT, 184.0, "https://acme.slack.com/archives/C1/p2"
        ),
        RunLine("<!channel> is the db down?", "failed", AT, 12.0, None),
        RunLine("payments latency", "interrupted", AT, 3600.0, None),
    ]
    return {"blocks": status_blocks("checkout", active, finished), "text": "Investigations of team checkout"}


CASES: dict[str, Callable[[], dict[str, Any]]] = {
    "setup_loading": lambda: {"view": render_loading("C0PAYMENTS")},
    "setup_claiming_workspace": lambda: {"view": render_setup_form(CLAIMING)},
    "setup_existing_org": lambda: {"view": render_setup_form(EXISTING)},
    "setup_not_connected": lambda: {"view": render_notice("C0PAYMENTS", NOT_CONNECTED)},
    "setup_done_new_org": lambda: {
        "view": render_done(
            team_name="Payments", channel_id="C0PAYMENTS", created=True, org_created="Acme Corp"
        )
    },
    "setup_done_joined": lambda: {
        "view": render_done(team_name="Checkout", channel_id="C0PAYMENTS", created=False, org_created=None)
    },
    "help": lambda: {"blocks": help_blocks(), "text": help_text()},
    "help_unknown": lambda: {"blocks": help_blocks(unknown="deploy <!here> now"), "text": help_text()},
    "status": _status,
    "status_empty": lambda: {"blocks": status_blocks("checkout", [], []), "text": "Investigations"},
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rendering_matches_golden_and_slack_accepts_it(name: str) -> None:
    rendered = CASES[name]()
    if "view" in rendered:
        view = rendered["view"]
        assert validate_view(view, allowed_types={"modal"}) is None
        ids = [block["block_id"] for block in view["blocks"] if "block_id" in block]
        assert len(ids) == len(set(ids)), ids
    else:
        assert validate_message(rendered["text"], rendered["blocks"]) is None
    assert_matches_golden("commands", name, rendered)


def test_user_text_is_escaped_in_replies() -> None:
    said = json.dumps(CASES["help_unknown"]()["blocks"]) + json.dumps(CASES["status"]()["blocks"])
    assert "<!here>" not in said and "<!channel>" not in said
    assert "&lt;!here&gt;" in said and "&lt;!channel&gt;" in said


def test_the_setup_form_never_prefills_a_secret_and_claims_the_channel() -> None:
    view = render_setup_form(EXISTING)
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    for secret in ("k8s_token", "github_token", "pagerduty_api_key", "model_api_key"):
        assert "initial_value" not in inputs[secret]
    assert inputs["routing_channels"]["initial_conversations"] == ["C0PAYMENTS"]
    assert [o["value"] for o in inputs["setup_team"]["options"]] == ["+new", "checkout", "ledger"]
