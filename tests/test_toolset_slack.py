"""The slack toolset against the Slack emulator holding a team's two channels: a checkout outage
discussed by people, IncidentFox's earlier investigations (posted by the real renderers, as the bot
posts them) and another team's channel that must stay out of every answer. Search with a user token,
the history fallback without one, threads, channel history, and how each Slack refusal reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from agents.tool_context import ToolContext
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Started
from incidentfox.agents.incidents.threads import ROOT_EVENT_TYPE
from incidentfox.agents.progress_marker import run_metadata
from incidentfox.agents.rca import Confidence, RootCauseAnalysis
from incidentfox.agents.toolsets import slack as sl
from incidentfox.agents.toolsets import slack_views
from incidentfox.agents.toolsets.base import ToolResult, ToolsetHealth
from incidentfox.agents.toolsets.function_tools import close_clients, toolset_function_tools
from incidentfox.agents.toolsets.slack_api import SlackNotConfigured, connect, slack_configured
from incidentfox.blocks.incident import incident_root_text, render_incident_root
from incidentfox.blocks.progress import progress_text, render_progress
from incidentfox.blocks.rca import error_text, rca_text, render_error, render_rca
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.emulators.slack.search import issue_user_token
from tests.toolset_calls import run_once

OPS = "C0OPS"
INCIDENTS = "C0INCIDENTS"
OTHER = "C0OTHERTEAM"
ALICE = "U0ALICE"
BOB = "U0BOB"
NOW = datetime.now(UTC).timestamp()


def _ago(seconds: float) -> str:
    return f"{NOW - seconds:.6f}"


async def _seed(slack: SlackEmulator) -> dict[str, str]:
    """People in #ops discussing checkout 502s (a thread), a deploy note, older chatter; IncidentFox's
    investigations in #incidents (a PagerDuty incident with its RCA, a question whose run failed, a
    thread of people only); another team's RCA in its own channel. Returns notable timestamps."""
    slack.add_channel(OPS, "ops")
    slack.add_channel(INCIDENTS, "incidents")
    slack.add_channel(OTHER, "payments-private")
    slack.add_user(ALICE, name="alice")
    slack.add_user(BOB, name="bob")
    talk = slack.add_message(OPS, ALICE, "checkout is throwing 502s since the 4.2 deploy", ts=_ago(3000))
    slack.add_message(OPS, BOB, "rolling back checkout to 4.1", ts=_ago(2900), thread_ts=talk.ts)
    slack.add_message(OPS, ALICE, "checkout recovered after the rollback", ts=_ago(2800), thread_ts=talk.ts)
    slack.add_message(OPS, BOB, "deploying checkout 4.2 to prod", ts=_ago(3600))
    slack.add_message(OPS, BOB, "checkout lunch order is in", ts=_ago(20 * 86400))
    slack.add_message(OTHER, ALICE, "checkout keys rotated for payments", ts=_ago(1000))

    bot = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    state = {
        "source": "pagerduty",
        "number": 4711,
        "title": "checkout-api 5xx error rate above 5%",
        "status": "resolved",
        "service": "checkout-api",
        "url": "https://acme.pagerduty.com/incidents/Q3",
    }
    root = await bot.chat_postMessage(
        channel=INCIDENTS,
        text=incident_root_text(state),
        blocks=render_incident_root(state),
        metadata={"event_type": ROOT_EVENT_TYPE, "event_payload": {"incident_key": "pd:Q3"}},
    )
    rca = RootCauseAnalysis(
        summary="checkout 4.2 exhausted its database connection pool",
        root_cause="The 4.2 deploy lowered the pool size to 5; requests queued and timed out with 502s.",
        confidence=Confidence("high", "the pool metric hit its limit at the deploy"),
    )
    final = await bot.chat_postMessage(
        channel=INCIDENTS,
        thread_ts=root["ts"],
        text=rca_text(rca),
        blocks=render_rca(rca, run_id="run-1"),
        metadata=run_metadata("run-1"),
    )
    question = slack.add_message(INCIDENTS, ALICE, "<@U0BOTFOX> why is search slow?")
    await bot.chat_postMessage(
        channel=INCIDENTS,
        thread_ts=question.ts,
        text=error_text("the model provider timed out"),
        blocks=render_error("the model provider timed out", run_id="run-2"),
        metadata=run_metadata("run-2"),
    )
    people = slack.add_message(INCIDENTS, BOB, "who owns the search cluster?")
    slack.add_message(INCIDENTS, ALICE, "the data team", thread_ts=people.ts)
    other = slack.add_message(OTHER, ALICE, "payments down")
    await bot.chat_postMessage(
        channel=OTHER,
        thread_ts=other.ts,
        text=rca_text(rca),
        blocks=render_rca(rca, run_id="run-9"),
        metadata=run_metadata("run-9"),
    )
    return {"talk": talk.ts, "root": str(root["ts"]), "final": str(final["ts"]), "question": question.ts}


def _config(
    slack: SlackEmulator, *, channels: tuple[str, ...] = (INCIDENTS,), **settings: Any
) -> dict[str, Any]:
    """The team claims #ops and reads #incidents too; ``settings`` override its integrations.slack."""
    section = {"api_url": slack.api_url, "bot_token": slack.bot_token, "channels": list(channels), **settings}
    return {"routing": {"slack_channel_ids": [OPS]}, "integrations": {"slack": section}}


@pytest.fixture
async def seeded(slack: SlackEmulator) -> dict[str, str]:
    return await _seed(slack)


@pytest.fixture
async def user_config(slack: SlackEmulator, seeded: dict[str, str]) -> dict[str, Any]:
    return _config(slack, user_token=issue_user_token(slack.workspace, ALICE))


async def _once(config: dict[str, Any], name: str, /, **args: Any) -> ToolResult:
    return await run_once(sl.SLACK, connect, config, name, **args)


async def test_search_with_a_user_token_uses_slack_search_in_the_team_channels_only(
    slack: SlackEmulator, seeded: dict[str, str], user_config: dict[str, Any]
) -> None:
    result = await _once(user_config, "slack_search_messages", query="checkout", start="-2h")
    assert result.status == "ok", result
    assert result.data["method"] == "search.messages"
    texts = [m["text"] for m in result.data["messages"]]
    assert texts[0].startswith("🔎 Root cause (high confidence): checkout 4.2 exhausted")
    assert texts[1].startswith("PagerDuty #4711: checkout-api 5xx error rate above 5%")
    assert texts[2:] == [
        "checkout recovered after the rollback",
        "rolling back checkout to 4.1",
        "checkout is throwing 502s since the 4.2 deploy",
        "deploying checkout 4.2 to prod",
    ], "newest first, replies included, the other team's channel and older chatter left out"
    assert result.data["outside_team_channels"] == 2
    reply = result.data["messages"][2]
    assert reply["channel"] == "#ops" and reply["channel_id"] == OPS and reply["user"] == ALICE
    assert reply["thread_ts"] == seeded["talk"] and reply["time"].endswith("Z")
    assert reply["permalink"].startswith("https://incidentfox-test.slack.com/archives/C0OPS/p")
    search = slack.calls("search.messages")[0]
    assert search.token == user_config["integrations"]["slack"]["user_token"]
    assert "after:" in search.args["query"] and "before:" in search.args["query"]
    assert "search.messages" in result.invocation and "#ops" in result.invocation

    scoped = await _once(user_config, "slack_search_messages", query="checkout in:#ops from:@bob")
    assert [m["text"] for m in scoped.data["messages"]] == [
        "rolling back checkout to 4.1",
        "deploying checkout 4.2 to prod",
    ]
    refused = await _once(user_config, "slack_search_messages", query="checkout in:#payments-private")
    assert refused.status == "error" and refused.error is not None
    assert refused.error.startswith(
        "#payments-private is not one of this team's Slack channels (#ops, #incidents)"
    )
    none = await _once(user_config, "slack_search_messages", query="kafka rebalance")
    assert none.status == "no_data" and "found nothing for 'kafka rebalance'" in none.data


async def test_without_a_user_token_search_reads_channel_history_and_says_so(
    slack: SlackEmulator, seeded: dict[str, str]
) -> None:
    result = await _once(_config(slack), "slack_search_messages", query='checkout "4.2"', start="-2h")
    assert result.status == "ok", result
    assert result.data["method"].startswith("channel history (no user token")
    assert [m["text"] for m in result.data["messages"]] == [
        "checkout is throwing 502s since the 4.2 deploy",
        "deploying checkout 4.2 to prod",
    ], "top-level messages only: replies are not in conversations.history"
    assert result.data["messages"][0]["replies"] == 2
    assert not slack.calls("search.messages"), "a bot token cannot search"
    history = slack.calls("conversations.history")
    assert {c.args["channel"] for c in history} == {OPS, INCIDENTS}
    assert all(c.token == slack.bot_token for c in history)
    by_bob = await _once(
        _config(slack), "slack_search_messages", query=f"checkout from:<@{BOB}>", start="-2h"
    )
    assert [m["text"] for m in by_bob.data["messages"]] == ["deploying checkout 4.2 to prod"]
    by_name = await _once(_config(slack), "slack_search_messages", query="checkout from:@bob", start="-2h")
    assert by_name.data["messages"] == by_bob.data["messages"]
    none = await _once(_config(slack), "slack_search_messages", query="kafka")
    assert none.status == "no_data" and "no user token" in none.data


async def test_a_thread_is_read_from_its_permalink(slack: SlackEmulator, seeded: dict[str, str]) -> None:
    link = f"https://incidentfox-test.slack.com/archives/{OPS}/p{seeded['talk'].replace('.', '')}"
    result = await _once(
        _config(slack), "slack_thread", permalink=link + "?thread_ts=1700000000.000100&cid=x"
    )
    assert result.status == "error", "a reply's link names its thread, and that one does not exist"
    result = await _once(_config(slack), "slack_thread", permalink=link)
    assert result.status == "ok", result
    assert result.data["channel"] == "#ops" and result.data["replies"] == 2
    assert [m["user"] for m in result.data["messages"]] == [ALICE, BOB, ALICE]
    assert result.data["messages"][1]["permalink"].endswith(f"thread_ts={seeded['talk']}&cid={OPS}")
    assert result.url == link
    same = await _once(_config(slack), "slack_thread", channel="#ops", ts=seeded["talk"])
    assert same.data == result.data
    missing = await _once(_config(slack), "slack_thread", channel=OPS, ts="1700000000.000100")
    assert missing.status == "error" and missing.error is not None
    assert "Slack found no such message in channel C0OPS (thread_not_found)" in missing.error
    foreign = await _once(_config(slack), "slack_thread", channel=OTHER, ts=seeded["talk"])
    assert foreign.error is not None and "is not one of this team's Slack channels" in foreign.error
    assert await _once(_config(slack), "slack_thread", channel=OPS) == ToolResult.failed(
        "Give the thread's permalink, or both channel and ts."
    )


async def test_channel_history_is_newest_first_within_the_window(
    slack: SlackEmulator, seeded: dict[str, str]
) -> None:
    result = await _once(_config(slack), "slack_channel_history", channel="#ops", limit=1)
    assert result.status == "ok", result
    assert [m["text"] for m in result.data["messages"]] == ["checkout is throwing 502s since the 4.2 deploy"]
    assert "older messages" in result.data["note"]
    whole = await _once(_config(slack), "slack_channel_history", channel=f"<#{OPS}|ops>", start="-30d")
    assert whole.data["count"] == 3 and whole.data["messages"][-1]["text"] == "checkout lunch order is in"
    quiet = await _once(_config(slack), "slack_channel_history", channel=OPS, start="-10m")
    assert quiet.status == "no_data" and quiet.data.startswith("Nobody wrote in #ops from ")
    bad = await _once(_config(slack), "slack_channel_history", channel=OPS, start="tomorrow")
    assert bad.error is not None and bad.error.startswith("Cannot read the time 'tomorrow'")


async def test_past_incidents_are_the_bot_threads_with_their_rca(
    slack: SlackEmulator, seeded: dict[str, str]
) -> None:
    result = await _once(_config(slack), "slack_past_incidents")
    assert result.status == "ok", result
    incidents = result.data["incidents"]
    assert [i["state"] for i in incidents] == ["failed", "rca"], (
        "newest first; the people-only thread is not one"
    )
    failed, pagerduty = incidents
    assert failed["title"] == "<@U0BOTFOX> why is search slow?" and failed["channel"] == "#incidents"
    assert "the model provider timed out" in failed["text"]
    assert pagerduty["title"].startswith("PagerDuty #4711: checkout-api 5xx error rate above 5%")
    assert pagerduty["summary"] == "checkout 4.2 exhausted its database connection pool"
    assert pagerduty["root_cause"].startswith("The 4.2 deploy lowered the pool size to 5")
    assert pagerduty["confidence"].startswith("🟢 High")
    assert pagerduty["permalink"].endswith(
        f"p{seeded['final'].replace('.', '')}?thread_ts={seeded['root']}&cid={INCIDENTS}"
    )
    assert result.data["threads_read"] == 2, "a thread the bot never answered in is not opened"
    opened = {c.args["ts"] for c in slack.calls("conversations.replies")}
    assert opened == {seeded["root"], seeded["question"]}
    pool = await _once(_config(slack), "slack_past_incidents", query="connection pool")
    assert [i["thread_ts"] for i in pool.data["incidents"]] == [seeded["root"]]
    none = await _once(_config(slack), "slack_past_incidents", query="kafka")
    assert none.status == "no_data" and "No earlier IncidentFox investigation matching 'kafka'" in none.data


async def test_a_running_investigation_is_recognised_by_its_metadata(slack: SlackEmulator) -> None:
    slack.add_channel(OPS, "ops")
    question = slack.add_message(OPS, ALICE, "is checkout down?")
    bot = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    started = [Started(summary="is checkout down?")]
    await bot.chat_postMessage(
        channel=OPS,
        thread_ts=question.ts,
        text=progress_text(started, title="is checkout down?", state="running"),
        blocks=render_progress(started, run_id="run-3", title="is checkout down?", state="running"),
        metadata=run_metadata("run-3"),
    )
    config = _config(slack, channels=())
    result = await _once(config, "slack_past_incidents", start="-1h")
    assert [i["state"] for i in result.data["incidents"]] == ["investigating"]
    assert "summary" not in result.data["incidents"][0]


async def test_slack_refusals_read_as_one_sentence(slack: SlackEmulator, seeded: dict[str, str]) -> None:
    revoked = await _once(_config(slack, bot_token="xoxb-revoked"), "slack_channel_history", channel=OPS)
    assert revoked.error == (
        "Slack rejected the bot token (invalid_auth) when asked to read the history of C0OPS: replace "
        "integrations.slack.bot_token."
    )
    slack.fail_next("conversations.history", 429, retry_after=12)
    limited = await _once(_config(slack), "slack_channel_history", channel=OPS)
    assert limited.error == (
        "Slack rate-limited the request to read the history of #ops (429 ratelimited); try again in 12 s."
    )
    narrow = issue_user_token(slack.workspace, ALICE, scopes=("channels:history",))
    scoped = await _once(_config(slack, user_token=narrow), "slack_search_messages", query="checkout")
    assert scoped.error is not None and scoped.error.startswith(
        "The Slack user token lacks the search:read scope needed to search messages (missing_scope)"
    )
    slack.workspace.channels[OPS]["is_member"] = False
    outside = await _once(_config(slack), "slack_channel_history", channel=OPS)
    assert outside.error is not None and outside.error.startswith(
        "The IncidentFox app is not a member of channel C0OPS (not_in_channel)"
    )
    slack.fail_next("conversations.history", 200, error="channel_not_found")
    slack.workspace.channels[OPS]["is_member"] = True
    gone = await _once(_config(slack), "slack_channel_history", channel=OPS)
    assert gone.error is not None and "(channel_not_found)" in gone.error
    slack.fail_next("conversations.history", 503)
    down = await _once(_config(slack), "slack_channel_history", channel=OPS)
    assert down.error is not None and down.error.startswith(
        "Slack answered 503 when asked to read the history"
    )
    for result in (revoked, limited, scoped, outside, gone, down):
        assert result.status == "error" and slack.bot_token not in str(result.error)


async def test_an_unreachable_slack_and_bad_settings_fail_in_plain_words(slack: SlackEmulator) -> None:
    closed = {
        "routing": {"slack_channel_ids": [OPS]},
        "integrations": {"slack": {"api_url": "http://127.0.0.1:9/api/", "bot_token": "xoxb-1"}},
    }
    result = await _once(closed, "slack_channel_history", channel=OPS)
    assert result.error is not None and result.error.startswith("Slack is unreachable (connection refused)")
    with pytest.raises(SlackNotConfigured, match="must be a Slack user token"):
        await connect(_config(slack, user_token=slack.bot_token))
    with pytest.raises(SlackNotConfigured, match="no Slack channels to read"):
        await connect({"integrations": {"slack": {"bot_token": "xoxb-1"}}})
    with pytest.raises(SlackNotConfigured, match=r"set integrations\.slack\.user_token"):
        await connect({"routing": {"slack_channel_ids": [OPS]}, "integrations": {"slack": {}}})
    assert not slack_configured({"integrations": {"slack": {"bot_token": "xoxb-1", "enabled": False}}})
    assert slack_configured({"integrations": {"slack": {"user_token": "xoxp-1"}}})


async def test_health_checks_the_tokens_and_the_search_scope(slack: SlackEmulator) -> None:
    assert await sl.health(_config(slack)) == ToolsetHealth.ok()
    user = _config(slack, user_token=issue_user_token(slack.workspace, ALICE))
    assert await sl.health(user) == ToolsetHealth.ok()
    narrow = _config(slack, user_token=issue_user_token(slack.workspace, ALICE, scopes=("channels:history",)))
    failing = await sl.health(narrow)
    assert not failing.healthy and "lacks the search:read scope" in failing.reason
    revoked = await sl.health(_config(slack, bot_token="xoxb-revoked"))
    assert not revoked.healthy and "replace integrations.slack.bot_token" in revoked.reason
    assert await sl.health({}) == ToolsetHealth(configured=False, reason="no Slack token is set")


def test_incident_roots_are_recognised_by_the_metadata_the_bot_writes() -> None:
    assert slack_views.ROOT_EVENT_TYPE == ROOT_EVENT_TYPE


def test_tool_names_are_prefixed_and_the_toolset_needs_a_slack_section() -> None:
    tools = toolset_function_tools(sl.SLACK, agent="incident-history")
    assert [t.name for t in tools] == [
        "slack_past_incidents",
        "slack_search_messages",
        "slack_thread",
        "slack_channel_history",
    ]
    assert all(t.strict_json_schema for t in tools)
    assert sl.SLACK.missing_prerequisites({}) == ["integrations.slack"]


async def test_through_the_adapter_the_model_never_sees_a_token(
    slack: SlackEmulator, seeded: dict[str, str]
) -> None:
    user_token = issue_user_token(slack.workspace, ALICE)
    config = _config(slack, user_token=user_token)
    ctx = InvestigationContext(run_id="r", org_id="o", team_node_id="t", config=config, emit=lambda _: None)
    tools = {t.name: t for t in toolset_function_tools(sl.SLACK, agent="incident-history")}
    args = {"query": "checkout rollback", "start": "-2h", "end": None, "limit": None}
    raw = json.dumps(args)
    context = ToolContext(ctx, tool_name="slack_search_messages", tool_call_id="c1", tool_arguments=raw)
    out = await tools["slack_search_messages"].on_invoke_tool(context, raw)
    assert user_token not in out and slack.bot_token not in out
    answer = json.loads(out)
    assert (
        answer["status"] == "ok"
        and answer["data"]["messages"][0]["text"] == "checkout recovered after the rollback"
    )
    client = ctx.clients["slack"]
    await close_clients(ctx)
    assert client.session.closed
