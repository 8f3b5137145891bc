"""What the knowledge base gives a run when it starts: the planner's ``knowledge_search`` tool and its
instructions, the three closest past incidents as grounding, and the "Similar: …" line for the live
message (a ``SimilarIncidents`` event).

The planner gets the tool directly rather than through a sub-agent: runbooks and past incidents are
what the lead investigator reasons with, and a search is one cheap call. Finding the similar incidents
never holds the run up (``similar_incidents`` gives up after 1.5 s).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agents import Tool

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import SimilarIncidents
from incidentfox.agents.toolsets.function_tools import toolset_function_tools
from incidentfox.agents.toolsets.knowledge import INSTRUCTIONS, knowledge_toolset
from incidentfox.knowledge.similar import grounding, similar_incidents, similar_line
from incidentfox.knowledge.store import KnowledgeBase, TeamKey


@dataclass(frozen=True, slots=True)
class RunKnowledge:
    tools: list[Tool] = field(default_factory=list)
    instructions: str = ""


async def run_knowledge(
    knowledge: KnowledgeBase | None, context: InvestigationContext, question: str
) -> RunKnowledge:
    """The planner's knowledge tool and instructions for this run; emits the similar incidents."""
    if knowledge is None:
        return RunKnowledge()
    team = TeamKey(context.org_id, context.team_node_id)
    hits = await similar_incidents(knowledge, team, question)
    line = similar_line(hits)
    if line:
        context.emit(SimilarIncidents(text=line))
    tools: list[Tool] = list(toolset_function_tools(knowledge_toolset(knowledge, team), agent="planner"))
    found = grounding(hits)
    return RunKnowledge(tools=tools, instructions=INSTRUCTIONS + "\n" + (found + "\n" if found else ""))
