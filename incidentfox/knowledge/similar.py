"""Similar past incidents at the start of a run: found within a deadline, shown in the live message
as "Similar: …" and given to the model as grounding.

``similar_incidents`` never raises and never holds a run up: a database that does not answer, or a
search slower than ``timeout_s`` (the first one loads the embedding model, which takes seconds unless
the process warmed it with ``KnowledgeBase.embedder.load()``), gives no similar incidents, logged.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError

from incidentfox.blocks.limits import escape_mrkdwn
from incidentfox.knowledge.store import KnowledgeBase, KnowledgeHit, TeamKey

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 1.5
SIMILAR = 3
LINE_TITLE_CHARS = 60


async def similar_incidents(
    knowledge: KnowledgeBase,
    team: TeamKey,
    question: str,
    *,
    limit: int = SIMILAR,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[KnowledgeHit]:
    """The (at most three) past incidents of ``team`` closest to ``question``, best first; ``[]`` when
    there are none, or they could not be found in time."""
    try:
        async with asyncio.timeout(timeout_s):
            return await knowledge.similar_incidents(team, question, limit=limit)
    except TimeoutError:
        log.warning("similar_incidents_timed_out team=%s timeout_s=%s", team.team_node_id, timeout_s)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("similar_incidents_failed team=%s error=%s", team.team_node_id, type(exc).__name__)
    return []


def similar_line(hits: list[KnowledgeHit]) -> str:
    """Slack mrkdwn for the live message: ``Similar: <link|title> (👍 2), …``; ``""`` when none."""
    if not hits:
        return ""
    shown = []
    for hit in hits:
        short = hit.title if len(hit.title) <= LINE_TITLE_CHARS else hit.title[: LINE_TITLE_CHARS - 1] + "…"
        title = escape_mrkdwn(short).replace("|", "¦")
        text = f"<{hit.url}|{title}>" if hit.url else title
        if hit.votes_up or hit.votes_down:
            text += f" (👍 {hit.votes_up} 👎 {hit.votes_down})"
        shown.append(text)
    return "Similar: " + ", ".join(shown)


def grounding(hits: list[KnowledgeHit]) -> str:
    """The similar incidents as the model reads them before it starts, each with its citation."""
    if not hits:
        return ""
    parts = ["Similar past incidents of this team (leads to check, not proof):"]
    for number, hit in enumerate(hits, start=1):
        rated = hit.votes_up or hit.votes_down
        feedback = f"; the team rated that RCA 👍 {hit.votes_up} 👎 {hit.votes_down}" if rated else ""
        parts.append(f"{number}. {hit.citation}{feedback}\n{hit.text}")
    return "\n".join(parts)
