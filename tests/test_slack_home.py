"""The App Home and its Edit modals, end to end: IncidentFox on loopback, the Slack emulator, real
slack_sdk and Bolt, over HTTP and Socket Mode."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from incidentfox.agents.runs.models import Run
from incidentfox.agents.toolsets.health import UNCHECKED_NO_TOOLSET, IntegrationHealth
from incidentfox.agents.toolsets.kubernetes import KUBERNETES
from incidentfox.blocks.config_forms import SECTIONS
from incidentfox.blocks.home import render_home
from incidentfox.config.change_bus import ConfigChange
from incidentfox.config.models import NodeConfig
from incidentfox.config.service import ConfigService
from incidentfox.db.base import utcnow
from incidentfox.emulators.slack.store import RecordedCall, StoredView
from incidentfox.emulators.slack.validation import validate_message
from incidentfox.handlers.slack.access import SlackAccess, SlackUser
from incidentfox.handlers.slack.home import register_home
from incidentfox.handlers.slack.home_flows import HomeFlows
from incidentfox.handlers.slack.overview import TeamOverviews
from tests.slack_world import ADMIN, CHANNEL, USER, World, world

ORG_ADMIN = "U0ADMIN"
BOB = "U0BOB"
GITHUB_TOKEN = "ghp_" + "s3cr3t" * 6 + "beef"


# -- the world ------------------------------------------------------------------------------------------


def home_flows(w: World) -> HomeFlows:
    """The app's Home listeners: the ones the app wires itself, or registered here on its Bolt app."""
    surface, runtime = w.fox.slack, w.fox.runtime
    assert surface is not None and runtime is not None
    wired = getattr(surface, "home", None)
    if isinstance(wired, HomeFlows):
        return wired
    flows: HomeFlows | None = getattr(w, "_home_flows", None)
    if flows is None:
        overview = TeamOverviews(
            config=runtime.config,
            runs=runtime.runs,
            health=IntegrationHealth((KUBERNETES,)),
            client=surface.client,
        )
        flows = register_home(
            surface.app,
            access=SlackAccess(runtime.config, surface.client),
            config=runtime.config,
            overview=overview,
            notices=surface.notices,
        )
        w._home_flows = flows  # type: ignore[attr-defined]
    return flows


def config_of(w: World) -> ConfigService:
    assert w.fox.runtime is not None
    return w.fox.runtime.config


async def connect_org(
    w: World, *, members: tuple[str, ...] = (USER,), org: dict[str, Any] | None = None
) -> None:
    """acme claims the emulator's workspace; ORG_ADMIN is its admin; checkout lists ``members``."""
    home_flows(w)
    org_config = {
        "slack": {"workspace_ids": [w.slack.team_id], "admin_user_ids": [ORG_ADMIN]},
        "model": {"name": "gpt-4.1"},
        "integrations": {"newrelic": {"api_key": GITHUB_TOKEN}},
        **(org or {}),
    }
    await config_of(w).write_config(ADMIN, "acme", "acme", org_config, operation="patch")
    team = {"slack": {"member_user_ids": list(members)}}
    await config_of(w).write_config(ADMIN, "acme", "checkout", team, operation="patch")


async def add_team(w: World, team_id: str, config: dict[str, Any] | None = None) -> None:
    await config_of(w).create_node(ADMIN, "acme", {"node_id": team_id, "parent_id": "acme", "kind": "team"})
    if config:
        await config_of(w).write_config(ADMIN, "acme", team_id, config, operation="put")


async def next_publish(w: World, user: str, seen: set[int]) -> RecordedCall:
    call = await w.slack.wait_for(
        "views.publish", lambda c: c.args.get("user_id") == user and id(c) not in seen, timeout=10
    )
    seen.add(id(call))
    assert call.ok, call.response
    return call


async def open_home(w: World, user: str) -> tuple[dict[str, Any], StoredView]:
    """Open the Home tab over HTTP; the published view and the emulator's stored copy."""
    seen = {id(c) for c in w.slack.calls("views.publish")}
    response = await w.post_event(w.slack.make_event_callback(w.slack.make_app_home_opened(user)))
    assert response.status == 200
    call = await next_publish(w, user, seen)
    stored = w.slack.home_view(user)
    assert stored is not None
    return call.args["view"], stored


def texts(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


async def press_edit(w: World, home: StoredView, user: str, section: str, team: str = "acme/checkout") -> Any:
    seen = {id(c) for c in w.slack.calls("views.open")}
    payload = w.slack.make_view_block_action(
        home.id, f"team_edit_{section}", team, user=user, block_id=f"team_edit:{team}"
    )
    status, _ = await w.post_interactive(payload)
    assert status == 200
    opened = await w.slack.wait_for("views.open", lambda c: id(c) not in seen)
    assert opened.ok, opened.response
    return opened


async def submit(w: World, view_id: str, values: dict[str, Any], user: str) -> dict[str, Any]:
    status, body = await w.post_interactive(w.slack.make_view_submission(view_id, values, user=user))
    assert status == 200
    return json.loads(body) if body.strip() else {}


def text_input(value: str) -> dict[str, Any]:
    return {"value": {"type": "plain_text_input", "value": value}}


def routing_values(repos: str, channels: tuple[str, ...] = (CHANNEL,)) -> dict[str, Any]:
    return {
        "routing_channels": {
            "value": {"type": "multi_conversations_select", "selected_conversations": list(channels)}
        },
        "routing_repos": text_input(repos),
        "routing_services": text_input(""),
    }


def model_values(name: str) -> dict[str, Any]:
    return {"model_name": text_input(name), "model_base_url": text_input(""), "model_api_key": text_input("")}


# -- the Home tab ---------------------------------------------------------------------------------------


async def test_home_shows_a_members_team_with_sources_redacted_secrets_health_and_runs(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        mention = w.mention("why is checkout crashlooping?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvHome1"))
        [run] = await w.wait_runs_finished(1)

        view, _ = await open_home(w, USER)
        shown = texts(view)
        assert len(view["blocks"]) <= 100
        assert "Team checkout" in shown
        assert f"<#{CHANNEL}>" in shown
        assert "`model.name`: `gpt-4.1`  _from org acme_" in shown
        assert "`integrations.kubernetes.namespace`: `prod`\\n" in shown, "the team's own value"
        assert GITHUB_TOKEN not in shown and "••••beef" in shown, "secrets are redacted"
        assert "✅ *kubernetes*: ok" in shown
        assert f"⚪ *newrelic*: {UNCHECKED_NO_TOOLSET}" in shown
        assert f"https://incidentfox-test.slack.com/archives/{CHANNEL}/p" in shown
        assert run.question in shown
        assert "team_edit_" not in shown, "members may not edit in an org that does not allow it"
        assert "Only an IncidentFox admin of this org" in shown and "can change team *checkout*" in shown


async def test_home_over_socket_mode_and_an_edit_saved_through_it(tmp_path: Path) -> None:
    async with world(tmp_path, socket_mode=True) as w:
        await connect_org(w)
        seen: set[int] = set()
        envelope = await w.slack.send_event(w.slack.make_app_home_opened(ORG_ADMIN))
        assert (await w.slack.wait_for_ack(envelope)).latency < 3
        published = await next_publish(w, ORG_ADMIN, seen)
        assert "Edit Model" in texts(published.args["view"])
        home = w.slack.home_view(ORG_ADMIN)
        assert home is not None

        press = w.slack.make_view_block_action(
            home.id, "team_edit_model", "acme/checkout", user=ORG_ADMIN, block_id="team_edit:acme/checkout"
        )
        await w.slack.wait_for_ack(await w.slack.send_envelope("interactive", press))
        opened = await w.slack.wait_for("views.open")
        assert opened.ok, opened.response
        modal_id = opened.response["view"]["id"]

        submission = w.slack.make_view_submission(modal_id, model_values("gpt-4.1-mini"), user=ORG_ADMIN)
        ack = await w.slack.wait_for_ack(await w.slack.send_envelope("interactive", submission))
        assert not (ack.payload or {}).get("response_action"), ack.payload
        effective = await config_of(w).effective_config_view(ADMIN, "acme", "checkout")
        assert effective["config"]["model"]["name"] == "gpt-4.1-mini"
        [latest, *_] = await config_of(w).history(ADMIN, "acme", "checkout")
        assert latest["actor"] == f"slack:{w.slack.team_id}:{ORG_ADMIN}"
        republished = await next_publish(w, ORG_ADMIN, seen)
        assert "`model.name`: `gpt-4.1-mini`" in texts(republished.args["view"])


async def test_someone_on_no_team_sees_how_to_get_one_and_who_the_org_admins_are(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        view, _ = await open_home(w, BOB)
        shown = texts(view)
        assert "You're not on any IncidentFox team of *Acme* yet" in shown
        assert "`/incidentfox setup`" in shown
        assert f"Org admins: <@{ORG_ADMIN}>" in shown
        assert "checkout" not in shown


async def test_an_unclaimed_workspace_shows_how_to_claim_it(tmp_path: Path) -> None:
    async with world(tmp_path, claim_workspace=False) as w:
        home_flows(w)
        w.slack.add_user("U0OWNER", is_admin=True)
        view, _ = await open_home(w, USER)
        assert "isn't connected to an IncidentFox org yet" in texts(view)
        assert "Only a Slack workspace admin or owner can connect it" in texts(view)
        view, _ = await open_home(w, "U0OWNER")
        assert "As a workspace admin you can connect it: run `/incidentfox setup`" in texts(view)


async def test_an_org_admin_pages_through_thirty_teams(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w, members=(ORG_ADMIN,))
        for index in range(29):
            await add_team(w, f"team-{index:02d}")
        view, home = await open_home(w, ORG_ADMIN)
        shown = texts(view)
        assert len(view["blocks"]) <= 100
        assert "*Your teams*" in shown and "Team checkout" in shown
        assert "Page 1 of 6 · 30 teams" in shown
        assert "Team team-03" in shown and "Team team-04" not in shown
        assert "home_page_previous" not in shown

        seen = {id(c) for c in w.slack.calls("views.publish")}
        payload = w.slack.make_view_block_action(
            home.id, "home_page_next", "1", user=ORG_ADMIN, block_id="home_pages"
        )
        assert (await w.post_interactive(payload))[0] == 200
        second = (await next_publish(w, ORG_ADMIN, seen)).args["view"]
        shown = texts(second)
        assert len(second["blocks"]) <= 100
        assert "Page 2 of 6" in shown
        assert "Team team-04" in shown and "Team checkout" not in shown
        assert "*Other teams of Acme*" in shown
        assert "home_page_previous" in shown and "home_page_next" in shown
        assert json.loads(second["private_metadata"]) == {"page": 1}


async def test_a_team_whose_config_is_broken_does_not_break_the_home(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w, members=(ORG_ADMIN,))
        await add_team(w, "ledger")
        assert w.fox.runtime is not None
        async with w.fox.runtime.sessions.begin() as session:
            await session.execute(
                update(NodeConfig)
                .where(NodeConfig.org_id == "acme", NodeConfig.node_id == "ledger")
                .values(document={"integrations": {"github": {"token": "enc:v1:not-a-fernet-token"}}})
            )
        config_of(w).apply_change(ConfigChange("acme", None))
        view, _ = await open_home(w, ORG_ADMIN)
        shown = texts(view)
        assert "Team ledger" in shown
        assert "Its config could not be loaded" in shown
        assert "enc:v1" not in shown
        assert "✅ *kubernetes*: ok" in shown, "the healthy team is still shown in full"


async def test_an_unhealthy_cluster_shows_the_reason_on_the_home(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        wrong = "wrong-token-" + "z" * 30
        await config_of(w).write_config(
            ADMIN, "acme", "checkout", {"integrations": {"kubernetes": {"token": wrong}}}, operation="patch"
        )
        await connect_org(w)
        view, _ = await open_home(w, USER)
        shown = texts(view)
        assert "❌ *kubernetes*: Kubernetes API at" in shown
        assert "rejected the credentials (401 Unauthorized)" in shown
        assert wrong not in shown


async def test_a_home_with_a_thousand_past_runs_renders_quickly(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        assert w.fox.runtime is not None
        start = utcnow() - timedelta(days=30)
        rows = []
        for index in range(1000):
            ts = f"1717430{index:03d}.000100"
            rows.append(
                Run(
                    run_id=f"run_past{index:04d}",
                    org_id="acme",
                    team_node_id="checkout",
                    source="slack",
                    kind="mention",
                    delivery_id=f"past-{index}",
                    channel_id=CHANNEL,
                    thread_ts=ts,
                    message_ts=ts,
                    question=f"past question {index}",
                    status="succeeded" if index % 7 else "failed",
                    created_at=start + timedelta(minutes=index),
                    started_at=start + timedelta(minutes=index),
                    finished_at=start + timedelta(minutes=index, seconds=42),
                )
            )
            if index >= 995:
                w.slack.add_message(CHANNEL, w.slack.bot_user_id, "Investigating…", ts=ts)
        async with w.fox.runtime.sessions.begin() as session:
            session.add_all(rows)

        flows = home_flows(w)
        user = SlackUser(w.slack.team_id, USER)
        began = time.perf_counter()
        page = await flows.home_page(user)
        view = render_home(page)
        elapsed = time.perf_counter() - began
        print(f"\nApp Home with 1,000 past runs built and rendered in {elapsed * 1000:.1f} ms")

        began = time.perf_counter()
        published, _ = await open_home(w, USER)
        print(f"app_home_opened → views.publish over HTTP in {(time.perf_counter() - began) * 1000:.1f} ms")

        [team] = page.teams
        assert [run.question for run in team.recent_runs] == [
            f"past question {i}" for i in range(999, 989, -1)
        ]
        linked = [run.permalink is not None for run in team.recent_runs]
        assert linked == [True] * 5 + [False] * 5, "a failed permalink only omits the link"
        assert len(view["blocks"]) <= 100
        assert "past question 999" in texts(published)


async def test_recent_and_in_progress_runs_of_a_team(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert w.fox.runtime is not None
        now = utcnow()
        async with w.fox.runtime.sessions.begin() as session:
            for index, (team, status) in enumerate(
                [
                    ("checkout", "succeeded"),
                    ("checkout", "running"),
                    ("other", "queued"),
                    ("checkout", "queued"),
                ]
            ):
                session.add(
                    Run(
                        run_id=f"run_{index}",
                        org_id="acme",
                        team_node_id=team,
                        source="slack",
                        kind="mention",
                        delivery_id=f"d{index}",
                        status=status,
                        created_at=now + timedelta(seconds=index),
                    )
                )
        runs = w.fox.runtime.runs
        assert [r.run_id for r in await runs.recent_for_team("acme", "checkout", limit=2)] == [
            "run_3",
            "run_1",
        ]
        assert [r.run_id for r in await runs.in_progress_for_team("acme", "checkout")] == ["run_3", "run_1"]


# -- the Edit modals ------------------------------------------------------------------------------------


async def test_each_edit_button_opens_its_modal(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        _, home = await open_home(w, ORG_ADMIN)
        for section in SECTIONS:
            opened = await press_edit(w, home, ORG_ADMIN, section)
            view = opened.args["view"]
            assert view["callback_id"] == "team_config_edit"
            assert json.loads(view["private_metadata"]) == {
                "org": "acme",
                "team": "checkout",
                "section": section,
                "page": 0,
            }
            inputs = [b for b in view["blocks"] if b["type"] == "input"]
            assert inputs, section
            assert "enc:v1" not in json.dumps(view) and w.k8s.token not in json.dumps(view)
        kubernetes = json.dumps(w.slack.calls("views.open")[-len(SECTIONS)].args["view"])
        assert "Set. Leave empty to keep it." in kubernetes, "a stored secret is never prefilled"


async def test_saving_routing_writes_the_team_config_as_the_slack_user_and_refreshes_the_home(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        _, home = await open_home(w, ORG_ADMIN)
        seen = {id(c) for c in w.slack.calls("views.publish")}
        opened = await press_edit(w, home, ORG_ADMIN, "routing")
        answer = await submit(w, opened.response["view"]["id"], routing_values("acme/checkout"), ORG_ADMIN)
        assert answer == {}
        own = await config_of(w).get_config(ADMIN, "acme", "checkout")
        assert own["config"]["routing"] == {"slack_channel_ids": [CHANNEL], "github_repos": ["acme/checkout"]}
        [latest, *_] = await config_of(w).history(ADMIN, "acme", "checkout")
        assert latest["actor"] == f"slack:{w.slack.team_id}:{ORG_ADMIN}"
        assert latest["operation"] == "patch"
        refreshed = await next_publish(w, ORG_ADMIN, seen)
        assert "GitHub repos: `acme/checkout`" in texts(refreshed.args["view"])


async def test_a_field_error_comes_back_inside_the_modal(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        _, home = await open_home(w, ORG_ADMIN)
        opened = await press_edit(w, home, ORG_ADMIN, "routing")
        version = (await config_of(w).get_config(ADMIN, "acme", "checkout"))["version"]
        answer = await submit(w, opened.response["view"]["id"], routing_values("not a repo"), ORG_ADMIN)
        assert answer["response_action"] == "errors"
        assert "routing_repos" in answer["errors"]
        assert (await config_of(w).get_config(ADMIN, "acme", "checkout"))["version"] == version


async def test_a_claim_held_by_another_team_is_refused_without_naming_that_team(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        await add_team(w, "billing-squad", {"routing": {"github_repos": ["acme/ledger"]}})
        _, home = await open_home(w, ORG_ADMIN)
        opened = await press_edit(w, home, ORG_ADMIN, "routing")
        answer = await submit(w, opened.response["view"]["id"], routing_values("acme/ledger"), ORG_ADMIN)
        assert answer["response_action"] == "errors"
        message = answer["errors"]["routing_repos"]
        assert "acme/ledger" in message and "another team" in message
        assert "billing" not in json.dumps(answer)
        own = await config_of(w).get_config(ADMIN, "acme", "checkout")
        assert "github_repos" not in own["config"]["routing"]


async def test_a_non_member_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        _, home = await open_home(w, ORG_ADMIN)
        opened = await press_edit(w, home, ORG_ADMIN, "model")
        version = (await config_of(w).get_config(ADMIN, "acme", "checkout"))["version"]
        answer = await submit(w, opened.response["view"]["id"], model_values("evil-model"), BOB)
        assert answer["response_action"] == "errors"
        [(block, message)] = answer["errors"].items()
        assert block == "model_name"
        assert "Only an IncidentFox admin of this org" in message and "team *checkout*" in message
        assert f"<@{ORG_ADMIN}>" in message
        assert (await config_of(w).get_config(ADMIN, "acme", "checkout"))["version"] == version


async def test_a_forged_button_for_another_orgs_team_is_refused(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        config = config_of(w)
        async with config.sessions.begin() as session:
            await config.create_org(session, org_id="globex", name="Globex", actor="test")
        await config.create_node(ADMIN, "globex", {"node_id": "web", "parent_id": "globex", "kind": "team"})
        _, home = await open_home(w, ORG_ADMIN)
        opened = await press_edit(w, home, ORG_ADMIN, "model", team="globex/web")
        view = json.dumps(opened.args["view"])
        assert "another IncidentFox org" in view
        assert '"submit"' not in view, "a refusal has nothing to submit"
        forged = await press_edit(w, home, ORG_ADMIN, "model")
        forged_view = dict(w.slack.workspace.views[forged.response["view"]["id"]].view)
        forged_view["private_metadata"] = json.dumps({"org": "globex", "team": "web", "section": "model"})
        w.slack.workspace.views[forged.response["view"]["id"]].view = forged_view
        answer = await submit(w, forged.response["view"]["id"], model_values("evil-model"), ORG_ADMIN)
        assert "another IncidentFox org" in answer["errors"]["model_name"]
        assert (await config.get_config(ADMIN, "globex", "web"))["version"] == 0


async def test_members_edit_only_where_the_org_allows_it(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w, org={"access": {"team_members_can_edit": True}})
        view, home = await open_home(w, USER)
        assert "Edit Members" in texts(view)
        opened = await press_edit(w, home, USER, "members")
        values = {
            "member_users": {"value": {"type": "multi_users_select", "selected_users": [USER, BOB]}},
            "member_usergroup": text_input(""),
            "approver_users": {"value": {"type": "multi_users_select", "selected_users": [BOB]}},
            "approver_usergroup": text_input(""),
            "approval_timeout": {"value": {"type": "number_input", "value": "20"}},
            "self_approval": {"value": {"type": "checkboxes", "selected_options": []}},
        }
        assert await submit(w, opened.response["view"]["id"], values, USER) == {}
        own = (await config_of(w).get_config(ADMIN, "acme", "checkout"))["config"]
        assert own["slack"]["member_user_ids"] == [USER, BOB]
        assert own["approvals"] == {"approver_user_ids": [BOB], "timeout_s": 1200}
        [latest, *_] = await config_of(w).history(ADMIN, "acme", "checkout")
        assert latest["actor"] == f"slack:{w.slack.team_id}:{USER}"
        await home_flows(w).drain()


async def test_an_editor_slack_refused_to_open_is_apologised_for_on_the_home(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        _, home = await open_home(w, ORG_ADMIN)
        seen = {id(c) for c in w.slack.calls("views.publish")}
        w.slack.fail_next("views.open", 200, error="expired_trigger_id")
        payload = w.slack.make_view_block_action(
            home.id, "team_edit_model", "acme/checkout", user=ORG_ADMIN, block_id="team_edit:acme/checkout"
        )
        assert (await w.post_interactive(payload))[0] == 200
        notice = await next_publish(w, ORG_ADMIN, seen)
        shown = texts(notice.args["view"])
        assert "Slack didn't let me open the editor (expired_trigger_id)" in shown
        assert "Press the Edit button again" in shown
        assert "Team checkout" in shown


@pytest.mark.parametrize("value", ["acme", "acme/", "../etc/passwd", "acme/Checkout"])
async def test_a_malformed_button_value_opens_a_stale_button_notice(tmp_path: Path, value: str) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        _, home = await open_home(w, ORG_ADMIN)
        opened = await press_edit(w, home, ORG_ADMIN, "model", team=value)
        shown = json.dumps(opened.args["view"])
        assert "out of date" in shown or "no longer exists" in shown
        assert '"submit"' not in shown


async def test_the_config_summary_for_the_slash_command_fits_an_ephemeral_message(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        await connect_org(w)
        assert w.fox.runtime is not None and w.fox.slack is not None
        overview = TeamOverviews(
            config=config_of(w),
            runs=w.fox.runtime.runs,
            health=IntegrationHealth((KUBERNETES,)),
            client=w.fox.slack.client,
        )
        blocks, text = await overview.config_summary("acme", "checkout")
        assert validate_message(text, blocks) is None
        shown = json.dumps(blocks, ensure_ascii=False)
        assert "`model.name`: `gpt-4.1`  _from org acme_" in shown
        assert GITHUB_TOKEN not in shown and GITHUB_TOKEN not in text
        assert text == "Config of team checkout: 8 settings, no failing integrations"
        response = await w.fox.slack.client.chat_postEphemeral(
            channel=CHANNEL, user=USER, blocks=blocks, text=text
        )
        assert response["ok"]
