"""The knowledge toolset through the function-tool adapter, as the planner's model calls it: results
that cite their runbook or past incident thread, no_data for an empty or unrelated knowledge base, a
plain error when the database is down, and the health check."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents.tool_context import ToolContext

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.toolsets.function_tools import close_clients, toolset_function_tools
from incidentfox.agents.toolsets.knowledge import knowledge_toolset
from incidentfox.db.engine import SessionFactory, create_engine, create_session_factory
from incidentfox.knowledge.store import KnowledgeBase
from tests.knowledge_world import EMBEDDER, RUNBOOKS, TEAM, finished_run, migrated, rca, store_runs, vote

Call = Any


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    async with migrated(database_url) as factory:
        yield factory


async def _caller(knowledge: KnowledgeBase) -> tuple[InvestigationContext, Any]:
    events: list[Any] = []
    ctx = InvestigationContext(
        run_id="r-1", org_id=TEAM.org_id, team_node_id=TEAM.team_node_id, config={}, emit=events.append
    )
    tools = {t.name: t for t in toolset_function_tools(knowledge_toolset(knowledge, TEAM), agent="planner")}

    async def call(name: str, args: dict[str, Any]) -> dict[str, Any]:
        raw = json.dumps(args)
        context = ToolContext(ctx, tool_name=name, tool_call_id=f"{name}-{len(events)}", tool_arguments=raw)
        loaded: dict[str, Any] = json.loads(await tools[name].on_invoke_tool(context, raw))
        return loaded

    return ctx, call


async def test_the_model_gets_the_runbook_and_past_incident_with_their_sources(
    sessions: SessionFactory,
) -> None:
    knowledge = KnowledgeBase(sessions, EMBEDDER)
    await knowledge.add_runbooks(TEAM, list(RUNBOOKS.items()))
    answer = rca(
        "Checkout pods were OOMKilled after the 2.14 release.",
        "The release doubled the product cache, so the JVM heap outgrew the 1 GiB limit.",
        "Last State: Terminated Reason: OOMKilled Exit Code: 137",
        "pod payments/checkout-7d9f8 (describe)",
    )
    await store_runs(sessions, finished_run("run-oom", "checkout pods keep restarting", answer))
    await vote(sessions, "run-oom", "up")
    ctx, call = await _caller(knowledge)
    try:
        result = await call(
            "knowledge_search",
            {"query": "checkout containers killed for exceeding their memory", "kind": None, "limit": 4},
        )
        assert result["status"] == "ok"
        assert "BM25 and embeddings" in result["invocation"]
        cites = [r["cite"] for r in result["data"]["results"]]
        assert any(c.startswith("runbook runbooks/oom-killed.md § ") for c in cites), cites
        incident = next(r for r in result["data"]["results"] if r["kind"] == "incident")
        assert incident["run_id"] == "run-oom" and incident["feedback"] == {"up": 1, "down": 0}
        assert incident["cite"] == f"past incident {incident['url']}"
        assert incident["url"].startswith("https://slack.com/archives/C0PAYMENTS/p")
        assert incident["finished_at"].endswith("Z")

        only = await call("knowledge_search", {"query": "undo a bad release", "kind": "runbook", "limit": 1})
        assert [r["path"] for r in only["data"]["results"]] == ["runbooks/deploy-rollback.md"]
        assert "url" not in only

        wrong = await call("knowledge_search", {"query": "x", "kind": "wiki", "limit": 99})
        assert wrong["status"] == "error" and "Invalid arguments for knowledge_search" in wrong["error"]
    finally:
        await close_clients(ctx)


async def test_an_empty_or_unrelated_knowledge_base_is_no_data(sessions: SessionFactory) -> None:
    knowledge = KnowledgeBase(sessions, EMBEDDER)
    ctx, call = await _caller(knowledge)
    empty = await call(
        "knowledge_search", {"query": "postgres too many clients", "kind": None, "limit": None}
    )
    assert empty["status"] == "no_data" and "knowledge base is empty" in empty["data"]
    await knowledge.add_runbooks(TEAM, list(RUNBOOKS.items()))
    unrelated = await call(
        "knowledge_search", {"query": "quarterly marketing budget spreadsheet", "kind": None, "limit": None}
    )
    assert unrelated["status"] == "no_data"
    assert "None of the team's 17 runbook sections and past incidents matches" in unrelated["data"]
    await close_clients(ctx)


async def test_a_database_that_does_not_answer_is_a_plain_error() -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/incidentfox")
    try:
        knowledge = KnowledgeBase(create_session_factory(engine), EMBEDDER)
        _ctx, call = await _caller(knowledge)
        result = await call("knowledge_search", {"query": "redis latency", "kind": None, "limit": None})
    finally:
        await engine.dispose()
    assert result["status"] == "error"
    assert result["error"].startswith("The knowledge base could not be read: IncidentFox's database did not")
    assert "Traceback" not in result["error"] and "asyncpg" not in result["error"]


async def test_tool_names_carry_the_prefix_and_health_reports_the_model(sessions: SessionFactory) -> None:
    toolset = knowledge_toolset(KnowledgeBase(sessions, EMBEDDER), TEAM)
    tools = toolset_function_tools(toolset, agent="planner")
    assert [t.name for t in tools] == ["knowledge_search"] and all(t.strict_json_schema for t in tools)
    assert toolset.name == "knowledge" and toolset.missing_prerequisites({}) == []
    assert toolset.health_check is not None
    health = await toolset.health_check({})
    assert health.configured and health.healthy and health.reason == ""
