"""``/incidentfox setup`` end to end: a workspace admin claims the workspace and sets up a team without
curl, a non-admin is refused, and bad fields come back as errors inside the modal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from incidentfox.config.permissions import Principal
from incidentfox.emulators.slack.store import RecordedCall
from incidentfox.handlers.slack.setup import NOT_CONNECTED, OPEN_FAILED
from tests.slack_world import World, world

ADMIN_USER = "U0WSADMIN"
BOB = "U0BOB"
NEW_CHANNEL = "C0PAYMENTS"
ORG = "incidentfox-test"
"""The org ``/incidentfox setup`` creates, named after the emulated workspace ("IncidentFox Test")."""


def text(value: str) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


def picked(value: str) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": {"value": value}}}


def channels(*ids: str) -> dict[str, Any]:
    return {"value": {"type": "multi_conversations_select", "selected_conversations": list(ids)}}


def form_values(w: World, **overrides: dict[str, Any]) -> dict[str, Any]:
    values = {
        "setup_team": picked("+new"),
        "setup_name": text("Payments"),
        "setup_id": text(""),
        "setup_parent": picked("+org"),
        "routing_channels": channels(NEW_CHANNEL),
        "routing_repos": text("acme/payments"),
        "routing_services": text("PPAY001"),
        "k8s_api_url": text(w.k8s.api_url),
        "k8s_token": text(w.k8s.token),
        "k8s_namespace": text("prod"),
    }
    values.update(overrides)
    return values


async def open_setup(w: World, user: str, channel: str = NEW_CHANNEL) -> RecordedCall:
    before = len(w.slack.calls("views.update"))
    status, _ = await w.command("setup", user=user, channel=channel)
    assert status == 200
    opened = await w.slack.wait_for("views.open", lambda c: c.args.get("trigger_id") is not None)
    assert "Reading your org" in json.dumps(opened.args["view"])
    await w.slack.wait_for("views.update", lambda c: len(w.slack.calls("views.update")) > before)
    return w.slack.calls("views.update")[-1]


async def submit(w: World, update: RecordedCall, values: dict[str, Any], user: str) -> dict[str, Any]:
    payload = w.slack.make_view_submission(update.args["view_id"], values, user=user)
    status, body = await w.post_interactive(payload)
    assert status == 200
    return json.loads(body) if body else {}


async def test_workspace_admin_claims_the_workspace_and_sets_up_a_team_that_investigates(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, claim_workspace=False) as w:
        w.slack.add_user(ADMIN_USER, is_admin=True)
        update = await open_setup(w, ADMIN_USER)
        form = json.dumps(update.args["view"])
        assert "not connected to IncidentFox yet" in form and "setup_name" in form
        answer = await submit(w, update, form_values(w), ADMIN_USER)
        assert answer["response_action"] == "update", answer
        assert "Created team *Payments*" in json.dumps(answer["view"])

        assert w.fox.runtime is not None
        config = w.fox.runtime.config
        admin = Principal(kind="admin")
        org = (await config.get_config(admin, ORG, ORG))["config"]
        assert org["slack"] == {"workspace_ids": [w.slack.team_id], "admin_user_ids": [ADMIN_USER]}
        team = (await config.get_config(admin, ORG, "payments"))["config"]
        assert team["routing"] == {
            "slack_channel_ids": [NEW_CHANNEL],
            "github_repos": ["acme/payments"],
            "pagerduty_service_ids": ["PPAY001"],
        }
        assert team["integrations"]["kubernetes"]["token"].startswith("••••")
        assert team["slack"]["member_user_ids"] == [ADMIN_USER]
        actor = f"slack:{w.slack.team_id}:{ADMIN_USER}"
        assert [h["actor"] for h in await config.history(admin, ORG, "payments")] == [actor]
        assert w.k8s.token not in json.dumps(answer)

        mention = w.slack.make_app_mention(NEW_CHANNEL, ADMIN_USER, "why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention))
        await w.final_update(mention["ts"], "Root cause")


async def test_a_non_admin_cannot_claim_the_workspace_and_is_told_who_can(tmp_path: Path) -> None:
    async with world(tmp_path, claim_workspace=False) as w:
        update = await open_setup(w, BOB)
        assert NOT_CONNECTED.split(".")[0] in json.dumps(update.args["view"])
        assert "setup_name" not in json.dumps(update.args["view"])
        assert w.fox.runtime is not None
        assert await w.fox.runtime.config.routing.lookup_one("slack_workspace", w.slack.team_id) is None


async def test_field_errors_come_back_in_the_modal_and_nothing_is_half_written(tmp_path: Path) -> None:
    async with world(tmp_path, claim_workspace=False) as w:
        w.slack.add_user(ADMIN_USER, is_admin=True)
        assert w.fox.runtime is not None
        config = w.fox.runtime.config
        update = await open_setup(w, ADMIN_USER)
        bad = form_values(
            w, setup_name=text(""), k8s_api_url=text("k8s.example.com"), routing_repos=text("not-a-repo")
        )
        answer = await submit(w, update, bad, ADMIN_USER)
        assert answer["response_action"] == "errors"
        assert set(answer["errors"]) == {"setup_name", "k8s_api_url", "routing_repos"}
        assert "https://" in answer["errors"]["k8s_api_url"]
        assert await config.routing.lookup_one("slack_workspace", w.slack.team_id) is None

        assert (await submit(w, update, form_values(w), ADMIN_USER))["response_action"] == "update"
        update = await open_setup(w, ADMIN_USER, channel="C0LEDGER")
        ledger = form_values(
            w,
            setup_name=text("Ledger"),
            routing_channels=channels("C0LEDGER", NEW_CHANNEL),
            routing_repos=text(""),
            routing_services=text(""),
        )
        conflict = await submit(w, update, ledger, ADMIN_USER)
        assert conflict["response_action"] == "errors"
        assert set(conflict["errors"]) == {"routing_channels"}
        assert conflict["errors"]["routing_channels"] == (
            f"Already claimed by another team: {NEW_CHANNEL}. An org admin can move it to this team."
        ), "the holding team is never named"
        nodes = await config.list_nodes(Principal(kind="admin"), ORG)
        assert [n["node_id"] for n in nodes] == [ORG, "payments"], "the refused team was not created"

        taken = await submit(
            w,
            update,
            {**ledger, "setup_name": text("Payments"), "routing_channels": channels("C0LEDGER")},
            ADMIN_USER,
        )
        assert taken == {
            "response_action": "errors",
            "errors": {"setup_id": "That team id is taken in this org; choose another."},
        }
        created = await submit(w, update, {**ledger, "routing_channels": channels("C0LEDGER")}, ADMIN_USER)
        assert created["response_action"] == "update"


async def test_joining_an_existing_team_adds_the_channel_to_its_claims(tmp_path: Path) -> None:
    async with world(tmp_path, claim_workspace=False) as w:
        w.slack.add_user(ADMIN_USER, is_admin=True)
        update = await open_setup(w, ADMIN_USER)
        assert (await submit(w, update, form_values(w), ADMIN_USER))["response_action"] == "update"
        update = await open_setup(w, ADMIN_USER, channel="C0PAYOPS")
        assert "Join Payments (payments)" in json.dumps(update.args["view"])
        values = {"setup_team": picked("payments"), "routing_channels": channels("C0PAYOPS")}
        answer = await submit(w, update, values, ADMIN_USER)
        assert "Joined *Payments*" in json.dumps(answer["view"])
        assert w.fox.runtime is not None
        team = (await w.fox.runtime.config.get_config(Principal(kind="admin"), ORG, "payments"))["config"]
        assert team["routing"]["slack_channel_ids"] == [NEW_CHANNEL, "C0PAYOPS"]
        assert team["integrations"]["kubernetes"]["namespace"] == "prod"


async def test_other_users_of_a_claimed_workspace_are_refused_with_the_admins_named(tmp_path: Path) -> None:
    async with world(tmp_path, claim_workspace=False) as w:
        w.slack.add_user(ADMIN_USER, is_admin=True)
        update = await open_setup(w, ADMIN_USER)
        assert (await submit(w, update, form_values(w), ADMIN_USER))["response_action"] == "update"
        refused = await open_setup(w, BOB, channel="C0BOBS")
        said = json.dumps(refused.args["view"])
        assert "Only an IncidentFox admin of this org can set up teams" in said
        assert f"<@{ADMIN_USER}>" in said


async def test_an_expired_trigger_id_is_explained(tmp_path: Path) -> None:
    async with world(tmp_path, claim_workspace=False) as w:
        w.slack.fail_next("views.open", status=200, error="expired_trigger_id")
        await w.command("setup", user=BOB, channel=NEW_CHANNEL)
        answer = await w.slack.wait_for("response_url", lambda c: "setup form" in json.dumps(c.args))
        assert answer.args["text"] == OPEN_FAILED.format(error="expired_trigger_id")


async def test_setup_over_socket_mode(tmp_path: Path) -> None:
    async with world(tmp_path, socket_mode=True, claim_workspace=False) as w:
        await w.slack.wait_for_connections()
        w.slack.add_user(ADMIN_USER, is_admin=True)
        fields = w.slack.make_slash_command("setup", channel=NEW_CHANNEL, user=ADMIN_USER)
        await w.slack.send_envelope("slash_commands", fields)
        update = await w.slack.wait_for("views.update", lambda c: "setup_name" in json.dumps(c.args))
        payload = w.slack.make_view_submission(update.args["view_id"], form_values(w), user=ADMIN_USER)
        ack = await w.slack.wait_for_ack(await w.slack.send_envelope("interactive", payload))
        assert ack.payload is not None and ack.payload["response_action"] == "update"
        assert w.fox.runtime is not None
        target = await w.fox.runtime.config.routing.lookup_one("slack_channel", NEW_CHANNEL)
        assert target is not None and (target.org_id, target.team_node_id) == (ORG, "payments")
