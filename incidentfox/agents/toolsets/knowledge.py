"""The knowledge toolset: search the team's runbooks and past incidents (``incidentfox.knowledge``).

Its one tool, ``knowledge_search``, ranks the team's runbook sections and the RCAs of its earlier
investigations by BM25 and embeddings together; past incidents whose RCA got 👍 rank higher, 👎 lower.
Every result carries ``cite``: the runbook's path and section, or the past incident's Slack thread, so
the RCA can say which it used. The knowledge lives in IncidentFox's own database, not behind a team's
integration, so the toolset is made for one team's run with ``knowledge_toolset(knowledge, team)``
rather than connected from config. Its health check says when search falls back to BM25 alone
because the embedding model could not load.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field
from sqlalchemy.exc import SQLAlchemyError

from incidentfox.agents.toolsets.base import ToolResult, Toolset, ToolsetHealth
from incidentfox.agents.toolsets.query_tools import StrictParams, checked_query, typed_tool
from incidentfox.knowledge.store import KnowledgeBase, TeamKey
from incidentfox.knowledge.views import hit_json

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 5
MAX_LIMIT = 10


def _check_limit(value: int | None) -> int | None:
    if value is not None and not 1 <= value <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
    return value


class SearchParams(StrictParams):
    query: Annotated[str, AfterValidator(checked_query)] = Field(
        description="What you are looking for, in plain words: the symptom, service or error, e.g. "
        "'checkout pods OOMKilled after deploy' or 'postgres too many connections'."
    )
    kind: Literal["runbook", "incident"] | None = Field(
        default=None, description="runbook or incident (past investigations) only; null for both."
    )
    limit: Annotated[int | None, AfterValidator(_check_limit)] = Field(
        default=None, description=f"Most results, 1 to {MAX_LIMIT}; null for {DEFAULT_LIMIT}."
    )


@dataclass(frozen=True, slots=True)
class KnowledgeClient:
    """The run's view of one team's knowledge base."""

    knowledge: KnowledgeBase
    team: TeamKey

    async def close(self) -> None:
        """Nothing to release: the knowledge base's sessions belong to the process."""


async def search(client: KnowledgeClient, params: SearchParams) -> ToolResult:
    limit = params.limit or DEFAULT_LIMIT
    what = f"{params.kind}s" if params.kind else "runbooks and past incidents"
    invocation = f"search the team's {what} for {params.query!r} (limit {limit})"
    try:
        found = await client.knowledge.search(
            client.team, params.query, kinds=(params.kind,) if params.kind else None, limit=limit
        )
    except (SQLAlchemyError, OSError) as exc:
        log.warning("knowledge_search_failed team=%s error=%s", client.team.team_node_id, type(exc).__name__)
        return ToolResult.failed(
            "The knowledge base could not be read: IncidentFox's database did not answer. Go on without "
            "runbooks and past incidents, and say so.",
            invocation=invocation,
        )
    invocation += f" by {'BM25 and embeddings' if found.mode == 'hybrid' else 'BM25 keywords only'}"
    if found.searched == 0:
        return ToolResult.no_data(
            "This team's knowledge base is empty: no runbooks were uploaded and no investigation has "
            "finished with an RCA yet.",
            invocation=invocation,
        )
    if not found.hits:
        return ToolResult.no_data(
            f"None of the team's {found.searched} runbook sections and past incidents matches "
            f"{params.query!r}: try other words (the service, the error message, the symptom).",
            invocation=invocation,
        )
    data: dict[str, Any] = {
        "searched": found.searched,
        "results": [hit_json(hit) for hit in found.hits],
    }
    if found.mode != "hybrid":
        data["note"] = "Ranked by keywords only: the embedding model is not available."
    return ToolResult.ok(data, invocation=invocation, url=found.hits[0].url)


INSTRUCTIONS = """You can search the team's knowledge base with knowledge_search: its runbooks
(uploaded markdown, one result per section) and the RCAs of its earlier investigations (past
incidents, with their Slack thread and the team's 👍/👎 feedback). Search early with the symptom and
service in plain words, and again when you know the root cause, for the runbook that says what to do.
A runbook's steps come from the team: prefer them to generic advice. A past incident is a lead, not
proof: check that today's evidence matches before relying on it, and trust one with 👎 feedback less.
In the RCA, name every runbook and past incident you used by its `cite` (and its url when there is
one)."""


def knowledge_toolset(knowledge: KnowledgeBase, team: TeamKey) -> Toolset:
    """The ``knowledge`` toolset for one team's run."""

    async def connect(_config: Mapping[str, Any]) -> KnowledgeClient:
        return KnowledgeClient(knowledge, team)

    async def health(_config: Mapping[str, Any]) -> ToolsetHealth:
        await knowledge.embedder.load()
        state = knowledge.embeddings
        if state.ready:
            return ToolsetHealth.ok()
        return ToolsetHealth(configured=True, healthy=True, reason=state.reason)

    return Toolset(
        name="knowledge",
        description="The team's runbooks and past incidents (earlier investigations' RCAs with their "
        "threads and feedback), searched by keywords and meaning.",
        instructions=INSTRUCTIONS,
        connect=connect,
        health_check=health,
        tools=(
            typed_tool(
                "knowledge_search",
                "Search the team's runbooks and past incidents. Each result cites its source (runbook path "
                "and section, or the past incident's Slack thread), with its text and, for a past "
                "incident, its 👍/👎 feedback.",
                SearchParams,
                search,
            ),
        ),
    )
