"""An MCP server added in team config, end to end: IncidentFox on loopback with the Slack, Kubernetes and
OpenAI emulators. The App Home shows the server healthy with its tools; a mention starts an
investigation whose model calls an MCP tool, and the RCA and the session timeline show it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from incidentfox.agents.events import Thought, ToolStart, event_from_dict
from incidentfox.blocks.session import session_blocks
from incidentfox.emulators.openai_api import OpenAIEmulator, RoutedScript, ScriptStep
from tests.mcp_servers.running import SILENT, stdio_entry
from tests.slack_world import ADMIN, CHANNEL, USER, World, world
from tests.test_slack_home import connect_org, open_home, texts

DEPLOY_LINE = "2026-12-04T20:58:12Z checkout v2.31.0 deployed by alice: enable new-pricing flag"
RCA = {
    "summary": "checkout started failing right after v2.31.0 enabled the new-pricing flag.",
    "root_cause": "The v2.31.0 deploy of checkout turned on new-pricing, and the pods crash since.",
    "evidence": [{"quote": DEPLOY_LINE, "source": "MCP server deploys, recent_deploys", "url": None}],
    "confidence": {"level": "medium", "why": "the deploy precedes the failures; no log ties them yet"},
    "immediate_actions": ["Roll checkout back to v2.30.4 or turn off new-pricing."],
    "follow_up_actions": ["Gate new-pricing behind a canary."],
    "caveats": [],
}


def _script() -> RoutedScript:
    planner = [
        ScriptStep.tool_calls(
            [("ask_metrics", {"input": "What was deployed to checkout in the last hours?"})],
            text="Checking what changed in checkout.",
        ),
        ScriptStep.json(RCA),
    ]
    metrics = [
        ScriptStep.tool_calls([("mcp_deploys_recent_deploys", {"service": "checkout"})]),
        ScriptStep.text(f"Latest deploy: {DEPLOY_LINE}"),
    ]
    return (
        RoutedScript()
        .when_tool_offered("ask_metrics", planner)
        .when_tool_offered("mcp_deploys_recent_deploys", metrics)
    )


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        emulator.responder = _script()
        yield emulator


def _team_config(w_k8s_url: str, token: str) -> dict[str, Any]:
    return {
        "integrations": {"kubernetes": {"api_url": w_k8s_url, "token": token, "namespace": "prod"}},
        "routing": {"slack_channel_ids": [CHANNEL]},
        "mcp_servers": {
            "deploys": stdio_entry(description="The deploy tracker."),
            "stuck": stdio_entry(SILENT, timeout_s=1),
        },
        "agents": {"metrics": {"mcp_servers": ["deploys", "stuck"]}},
    }


async def _add_servers(w: World) -> None:
    assert w.fox.runtime is not None
    config = _team_config(w.k8s.api_url, w.k8s.token)
    await w.fox.runtime.config.write_config(ADMIN, "acme", "checkout", config, operation="put")


async def test_a_server_added_in_team_config_is_healthy_on_the_home_and_its_tools_are_used(
    tmp_path: Path, model: OpenAIEmulator
) -> None:
    async with world(tmp_path, openai=model) as w:
        await _add_servers(w)
        await connect_org(w)

        view, _ = await open_home(w, USER)
        shown = texts(view)
        assert "✅ *mcp: deploys*: ok, 5 tools" in shown
        assert "*mcp: stuck*: it did not start and list its tools within 1 s and was cut off" in shown

        mention = w.mention("why is checkout failing since this evening?")
        await w.post_event(w.slack.make_event_callback(mention, event_id="EvMcp1"))
        final = await w.final_update(mention["ts"], "new-pricing", timeout=30)
        assert "v2.31.0 deployed by alice" in json.dumps(final.args["blocks"])
        [run] = await w.wait_runs_finished(1, timeout=30)
        assert run.status == "succeeded"

    events = [event_from_dict(e) for e in run.events]
    tool_starts = [(e.tool, e.agent) for e in events if isinstance(e, ToolStart)]
    assert tool_starts == [("mcp_deploys_recent_deploys", "metrics")]
    thoughts = [e.text for e in events if isinstance(e, Thought)]
    assert any(t.startswith("MCP server stuck could not start") for t in thoughts), thoughts
    timeline = json.dumps(session_blocks(events, run_id=run.run_id, title="checkout"))
    assert "mcp_deploys_recent_deploys" in timeline
    assert "MCP server stuck could not start" in timeline
    planner_request = next(r for r in model.requests if "ask_metrics" in r.tool_names)
    assert "The deploy tracker." in json.dumps(planner_request.body), "the planner is told what it is for"
    assert "MCP server stuck" in planner_request.system_prompt, "and which server is missing"
