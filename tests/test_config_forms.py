"""The config forms of the setup and edit modals: a PagerDuty submission becomes a merge patch."""

from __future__ import annotations

from typing import Any

from incidentfox.blocks.config_forms import VALUE, parse_section


def _values(**fields: dict[str, Any]) -> dict[str, Any]:
    return {block_id: {VALUE: state} for block_id, state in fields.items()}


def test_pagerduty_fields_become_a_patch_with_the_channel_and_the_notes_author() -> None:
    values = _values(
        pagerduty_api_key={"type": "plain_text_input", "value": ""},
        pagerduty_from_email={"type": "plain_text_input", "value": "sre-bot@acme.example"},
        pagerduty_webhook_secret={"type": "plain_text_input", "value": "whsec-from-pagerduty"},
        pagerduty_channel={"type": "conversations_select", "selected_conversation": "C0INCIDENTS"},
    )
    current = {"integrations": {"pagerduty": {"api_key": "••••1234"}}}
    patch, errors = parse_section("pagerduty", values, current, org_admin=True)
    assert errors == {}
    assert patch == {
        "integrations": {
            "pagerduty": {
                "from_email": "sre-bot@acme.example",
                "webhook_secret": "whsec-from-pagerduty",
                "channel_id": "C0INCIDENTS",
            }
        }
    }, "an empty secret keeps the stored key"


def test_a_bad_email_is_a_field_error_and_an_emptied_channel_falls_back_to_the_inherited_one() -> None:
    values = _values(
        pagerduty_from_email={"type": "plain_text_input", "value": "not an email"},
        pagerduty_channel={"type": "conversations_select", "selected_conversation": None},
    )
    current = {"integrations": {"pagerduty": {"channel_id": "C0OLD"}}}
    patch, errors = parse_section("pagerduty", values, current, org_admin=False)
    assert errors == {"pagerduty_from_email": "Enter an email address, like sre-bot@example.com."}
    assert patch == {"integrations": {"pagerduty": {"channel_id": None}}}
