"""The knowledge base in a real planner run (OpenAI emulator over HTTP): the closest past incidents are
shown as a linked "Similar: …" line and given to the model, the planner searches the runbooks with
``knowledge_search``, and the RCA can cite the runbook it found."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import set_tracing_disabled

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import ProgressEvent, SimilarIncidents, ToolEnd
from incidentfox.agents.investigation import PlannerInvestigator
from incidentfox.agents.model_provider import TeamModelProvider
from incidentfox.agents.toolsets.function_tools import close_clients
from incidentfox.blocks.progress import render_progress
from incidentfox.db.engine import SessionFactory
from incidentfox.emulators.openai_api import OpenAIEmulator, RecordedRequest, ScriptStep
from incidentfox.knowledge.store import KnowledgeBase
from tests.knowledge_world import EMBEDDER, RUNBOOKS, TEAM, finished_run, migrated, rca, store_runs

MODEL_KEY = "sk-emulator-knowledge-0001"
QUESTION = "checkout returns 500s and postgres says too many clients"


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[SessionFactory]:
    async with migrated(database_url) as factory:
        yield factory


def _answer_from_the_runbook(request: RecordedRequest) -> ScriptStep:
    outputs = [str(m.get("content")) for m in request.messages if m.get("role") == "tool"]
    if not outputs:
        return ScriptStep.tool_calls(
            [("knowledge_search", {"query": "postgres too many connections", "kind": "runbook"})]
        )
    found = json.loads(outputs[-1])
    top = found["data"]["results"][0]
    return ScriptStep.json(
        {
            "summary": "Postgres ran out of connection slots.",
            "root_cause": "A leaking worker pool holds every Postgres connection.",
            "evidence": [
                {"quote": "FATAL: sorry, too many clients already", "source": top["cite"], "url": None}
            ],
            "confidence": {"level": "medium", "why": "The runbook's symptoms match."},
            "immediate_actions": ["Restart the leaking deployment to release its sessions."],
            "follow_up_actions": [],
            "caveats": [],
        }
    )


async def test_a_run_starts_with_similar_incidents_and_cites_the_runbook_it_searched(
    sessions: SessionFactory,
) -> None:
    set_tracing_disabled(True)
    knowledge = KnowledgeBase(sessions, EMBEDDER)
    assert await knowledge.embedder.load()
    report = await knowledge.add_runbooks(TEAM, list(RUNBOOKS.items()))
    assert report.added and not report.skipped
    past = rca(
        "Checkout could not reach Postgres: connection slots exhausted.",
        "A leaking worker pool held every Postgres connection.",
        "FATAL: sorry, too many clients already",
        "pod payments/checkout-1 (logs)",
    )
    await store_runs(sessions, finished_run("run-past", "checkout 500s, postgres too many clients", past))
    events: list[ProgressEvent] = []
    async with OpenAIEmulator(api_key=MODEL_KEY) as model:
        model.responder = _answer_from_the_runbook
        config: dict[str, Any] = {"model": {"base_url": model.base_url, "api_key": MODEL_KEY, "name": "m"}}
        context = InvestigationContext(
            run_id="run-now",
            org_id=TEAM.org_id,
            team_node_id=TEAM.team_node_id,
            config=config,
            emit=events.append,
        )
        provider = TeamModelProvider(openai_api_key=None, openai_base_url=None, default_model=None)
        try:
            outcome = await PlannerInvestigator(provider, knowledge=knowledge).investigate(
                context, QUESTION, []
            )
        finally:
            await close_clients(context)
            await provider.aclose()

    assert outcome.rca is not None, outcome.error
    [similar] = [e for e in events if isinstance(e, SimilarIncidents)]
    assert similar.text.startswith("Similar: <https://slack.com/archives/")
    shown = json.dumps(render_progress(events, run_id="run-now", title=QUESTION, state="running"))
    assert "Similar: <https://slack.com/archives/" in shown, "linked in the live message"
    first = model.requests[0]
    assert "knowledge_search" in first.tool_names
    assert "Similar past incidents of this team" in first.system_prompt
    assert "A leaking worker pool held every Postgres connection." in first.system_prompt
    assert [e.tool for e in events if isinstance(e, ToolEnd)] == ["knowledge_search"]
    [evidence] = outcome.rca.evidence
    assert evidence.source.startswith("runbook runbooks/postgres-connections.md § ")
