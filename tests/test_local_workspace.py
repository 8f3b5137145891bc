"""The embedded default end to end over HTTP: with no Slack credentials IncidentFox runs Slack in-process,
the page's API acts as a person in Slack, and what the bot does arrives live on the event stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from incidentfox.web.embedded import BOT_DM_CHANNEL
from incidentfox.web.workspace_api import _apply_selection
from tests.local_page import GENERAL, local_page
from tests.slack_world import world


def mentions(page_bot: str, text: str) -> dict[str, Any]:
    return {"text": f"<@{page_bot}> {text}"}


async def test_a_mention_typed_in_the_page_is_investigated_with_its_progress_edited_in_place(
    tmp_path: Path,
) -> None:
    async with local_page(tmp_path) as page:
        status, boot = await page.get("/ui/api/bootstrap")
        assert status == 200 and boot["mode"] == "workspace"
        assert boot["console"]["token"], "on loopback the console signs in by itself"
        bot = boot["bot"]["user_id"]
        async with page.events() as events:
            status, posted = await page.post(
                f"/ui/api/channels/{GENERAL}/messages", mentions(bot, "why is checkout failing?")
            )
            assert status == 200
            mine = await events.next("message", lambda m: m["ts"] == posted["ts"])
            assert mine["user"] == boot["me"]["id"] and not mine["is_bot"]
            first = await events.next(
                "message", lambda m: m["is_bot"] and m["thread_ts"] == posted["ts"] and not m["edited"]
            )
            final = await events.next(
                "message",
                lambda m: m["ts"] == first["ts"] and "Root cause" in json.dumps(m["blocks"]),
                timeout=30,
            )
        assert final["edits"] > 0, "the progress message is edited in place, not posted again"
        assert not final["edited"], "Slack shows no (edited) on an app's updates"
        assert "checkout" in json.dumps(final["blocks"])
        status, thread = await page.get(f"/ui/api/channels/{GENERAL}/threads/{posted['ts']}")
        assert status == 200
        bot_messages = [m for m in thread["messages"] if m["is_bot"]]
        assert [m["ts"] for m in bot_messages].count(first["ts"]) == 1
        status, history = await page.get(f"/ui/api/channels/{GENERAL}/messages")
        parent = next(m for m in history["messages"] if m["ts"] == posted["ts"])
        assert parent["reply_count"] >= 1


async def test_slash_help_answers_the_person_and_unknown_channels_are_refused(tmp_path: Path) -> None:
    async with local_page(tmp_path, team_in_general=False) as page:
        status, answer = await page.post("/ui/api/commands", {"channel": GENERAL, "text": "help"})
        assert status == 200 and answer["ok"]
        assert "/incidentfox investigate" in json.dumps(answer["response"])
        status, refused = await page.post("/ui/api/commands", {"channel": "C0NOWHERE", "text": "help"})
        assert status == 404 and "C0NOWHERE" in refused["message"]
        status, refused = await page.post(f"/ui/api/channels/{GENERAL}/messages", "{not json")
        assert status == 400 and "JSON" in refused["message"]
        status, refused = await page.post(f"/ui/api/channels/{GENERAL}/messages", {"text": "  "})
        assert status == 400 and "text" in refused["message"]


async def test_setup_modal_shows_field_errors_then_creates_the_team(tmp_path: Path) -> None:
    async with local_page(tmp_path, team_in_general=False) as page:
        async with page.events() as events:
            status, _ = await page.post("/ui/api/commands", {"channel": GENERAL, "text": "setup"})
            assert status == 200
            opened = await events.next("view", lambda v: v["action"] == "open")
            form = await events.next(
                "view",
                lambda v: (
                    v["action"] == "update"
                    and v["view"]["id"] == opened["view"]["id"]
                    and "setup_name" in json.dumps(v["view"])
                ),
            )
        view_id = form["view"]["id"]
        values: dict[str, Any] = {
            "setup_team": {"value": {"type": "static_select", "selected_option": {"value": "+new"}}},
            "setup_name": {"value": {"type": "plain_text_input", "value": ""}},
            "setup_parent": {"value": {"type": "static_select", "selected_option": {"value": "+org"}}},
            "routing_channels": {
                "value": {"type": "multi_conversations_select", "selected_conversations": [GENERAL]}
            },
        }
        status, answer = await page.post(f"/ui/api/views/{view_id}/submit", {"values": values})
        assert status == 200 and answer["response_action"] == "errors"
        assert "setup_name" in answer["errors"]
        assert answer["view"]["id"] == view_id, "the modal stays open with the person's input"
        values["setup_name"] = {"value": {"type": "plain_text_input", "value": "Payments"}}
        status, answer = await page.post(f"/ui/api/views/{view_id}/submit", {"values": values})
        assert status == 200 and answer["response_action"] == "update", answer
        assert answer["errors"] == {}
        assert page.fox.runtime is not None
        target = await page.fox.runtime.config.routing.lookup_one("slack_channel", GENERAL)
        assert target is not None and target.team_node_id == "payments"


async def test_opening_home_publishes_the_app_home_for_the_person(tmp_path: Path) -> None:
    async with local_page(tmp_path) as page, page.events() as events:
        status, _ = await page.post("/ui/api/home/open", {})
        assert status == 200
        published = await events.next("view", lambda v: v["action"] == "publish")
        assert published["view"]["type"] == "home"
        status, home = await page.get("/ui/api/home")
        assert status == 200 and home["view"]["id"] == published["view"]["id"]


async def test_a_direct_message_to_the_bot_reaches_it_as_a_dm(tmp_path: Path) -> None:
    async with local_page(tmp_path) as page, page.events() as events:
        status, posted = await page.post(f"/ui/api/channels/{BOT_DM_CHANNEL}/messages", {"text": "hello"})
        assert status == 200
        answer = await events.next("message", lambda m: m["is_bot"] and m["channel"] == BOT_DM_CHANNEL)
        assert answer["thread_ts"] == posted["ts"], "the bot answers in the DM's thread"


async def test_bound_beyond_loopback_the_page_needs_the_admin_token(tmp_path: Path) -> None:
    async with local_page(tmp_path, host="0.0.0.0", team_in_general=False, admin_token="a" * 40) as page:
        status, boot = await page.get("/ui/api/bootstrap")
        assert status == 200 and boot["console"] == {"token": None, "requires_token": True}
        assert "channels" not in boot
        status, _ = await page.get(f"/ui/api/channels/{GENERAL}/messages")
        assert status == 401
        page.token = "b" * 40
        status, _ = await page.get(f"/ui/api/channels/{GENERAL}/messages")
        assert status == 401
        page.token = "a" * 40
        status, boot = await page.get("/ui/api/bootstrap")
        assert status == 200 and boot["console"]["token"] is None and boot["channels"]
        status, _ = await page.get(f"/ui/api/channels/{GENERAL}/messages")
        assert status == 200
        status, html = await page.get("/")
        assert status == 200 and "<html" in html.lower()


def test_choices_made_in_the_page_reach_the_bot_in_slacks_shape() -> None:
    button: dict[str, Any] = {"action_id": "pick", "value": "", "type": "button"}
    _apply_selection(button, {"selected_option": {"value": "prod", "text": "Production"}})
    assert button["type"] == "static_select" and "value" not in button
    assert button["selected_option"] == {
        "value": "prod",
        "text": {"type": "plain_text", "text": "Production", "emoji": True},
    }
    users: dict[str, Any] = {"action_id": "who", "value": "U1", "type": "button"}
    _apply_selection(users, {"type": "users_select", "selected_user": "U1"})
    assert (users["type"], users["selected_user"]) == ("users_select", "U1")
    checks: dict[str, Any] = {"action_id": "opts", "value": "", "type": "button"}
    _apply_selection(checks, {"type": "checkboxes", "selected_options": [{"value": "a", "text": "A"}]})
    assert checks["selected_options"][0]["text"]["text"] == "A"
    plain: dict[str, Any] = {"action_id": "go", "value": "v", "type": "button"}
    _apply_selection(plain, {"value": "v"})
    assert plain == {"action_id": "go", "value": "v", "type": "button"}


async def test_with_a_real_slack_app_the_page_is_the_console_and_asks_for_the_token(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        base = f"http://127.0.0.1:{w.fox.port}"
        async with w.http.get(base + "/") as response:
            assert response.status == 200 and "<html" in (await response.text()).lower()
        async with w.http.get(base + "/ui/api/bootstrap") as response:
            boot = await response.json()
        assert boot == {"mode": "console", "console": {"token": None, "requires_token": True}}
        async with w.http.get(base + f"/ui/api/channels/{GENERAL}/messages") as response:
            assert response.status == 404, "no workspace behind the page when Slack is real"


async def test_the_workspace_keeps_its_messages_and_pins_across_a_restart(tmp_path: Path) -> None:
    async with local_page(tmp_path, team_in_general=False) as page:
        status, posted = await page.post(f"/ui/api/channels/{GENERAL}/messages", {"text": "before"})
        assert status == 200
        assert page.fox.local is not None
        page.fox.local.slack.pin(GENERAL, posted["ts"])
    async with local_page(tmp_path, team_in_general=False) as page:
        status, history = await page.get(f"/ui/api/channels/{GENERAL}/messages")
        assert status == 200
        [kept] = [m for m in history["messages"] if m["ts"] == posted["ts"]]
        assert kept["text"] == "before" and kept["pinned"]
    (tmp_path / "local-workspace.json").write_text("{not json")
    async with local_page(tmp_path, team_in_general=False) as page:
        status, history = await page.get(f"/ui/api/channels/{GENERAL}/messages")
        assert status == 200 and history["messages"] == [], "an unreadable file starts empty, not broken"
