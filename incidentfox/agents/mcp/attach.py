"""The MCP servers of one run: started when the run begins, offered to the agents that name them, shut
down when it ends.

``async with attached_mcp(context) as mcp:`` starts, concurrently, every server some agent names in
``agents.{name}.mcp_servers`` (and nothing else: a team's other servers cost nothing). A server that
is misconfigured, refused by the egress policy, fails to start or does not list its tools within its
``timeout_s`` is reported in the run's progress as a plain-words line, and the run goes on without
it; the planner is told too, so its caveats can say so. Leaving the block, on success, failure,
cancellation or interrupt alike, stops every server that started.

The servers are not handed to ``Agent(mcp_servers=...)``: the SDK would call their tools directly,
skipping the adapter that scrubs secrets and budgets output (``mcp.tools``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from agents import FunctionTool, Tool
from agents.mcp import MCPServer

from incidentfox.agents.context import InvestigationContext
from incidentfox.agents.events import Thought
from incidentfox.agents.mcp.connection import McpStartFailed, StartedServer, start_server, stop_server
from incidentfox.agents.mcp.servers import McpServerSpec, declared_servers
from incidentfox.agents.mcp.tools import function_tools, server_toolset
from incidentfox.agents.planner import PLANNER_NAME, SubagentSpec
from incidentfox.agents.redaction import scrub_text, secret_values
from incidentfox.agents.toolsets.base import Toolset
from incidentfox.agents.toolsets.outputs import offers_output_tools, output_function_tools

_SUBAGENT_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}$")
_TOOLS_NAMED = 8


@dataclass(slots=True)
class AttachedMcp:
    """The run's started servers and, per agent, the function tools of the servers it names."""

    started: dict[str, StartedServer] = field(default_factory=dict)
    toolsets: dict[str, Toolset] = field(default_factory=dict)
    attached: dict[str, tuple[str, ...]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """Plain-words lines, one per server that could not be used (already shown in the progress)."""

    def tools_for(self, agent: str) -> list[FunctionTool]:
        """The MCP tools of every started server ``agent`` names, in the order it names them."""
        return [
            tool
            for server_id in self.attached.get(agent, ())
            if server_id in self.started
            for tool in function_tools(self.started[server_id], self.toolsets[server_id], agent=agent)
        ]

    def agents(self) -> list[str]:
        return list(self.attached)

    def planner_note(self) -> str:
        """What the planner is told about servers that could not be used (empty when all started)."""
        if not self.problems:
            return ""
        return "Unavailable for this run (mention in the caveats if it matters):\n" + "\n".join(
            f"- {line}" for line in self.problems
        )

    def subagents(self, specs: Sequence[SubagentSpec]) -> list[SubagentSpec]:
        """``specs`` with each sub-agent's MCP tools added, plus a sub-agent for every name that has MCP
        tools but no toolset of the team (``agents.grafana.mcp_servers`` alone makes a ``grafana``)."""
        result = []
        for spec in specs:
            extra = self.tools_for(spec.name)
            result.append(dataclasses.replace(spec, tools=[*spec.tools, *extra]) if extra else spec)
        present = {spec.name for spec in specs}
        for agent in self.agents():
            if agent == PLANNER_NAME or agent in present or not _SUBAGENT_NAME.match(agent):
                continue
            tools = self.tools_for(agent)
            if tools:
                result.append(self._mcp_only_subagent(agent, tools))
        return result

    def planner_tools(self, subagents: Sequence[SubagentSpec]) -> list[Tool]:
        """The planner's own MCP tools, with the output tools unless a sub-agent's already bring them."""
        tools: list[Tool] = list(self.tools_for(PLANNER_NAME))
        if tools and not any(offers_output_tools(spec.tools) for spec in subagents):
            tools.extend(output_function_tools())
        return tools

    def _mcp_only_subagent(self, agent: str, tools: Sequence[FunctionTool]) -> SubagentSpec:
        servers = [self.started[i].spec for i in self.attached[agent] if i in self.started]
        names = ", ".join(tool.name for tool in tools[:_TOOLS_NAMED])
        more = f" and {len(tools) - _TOOLS_NAMED} more" if len(tools) > _TOOLS_NAMED else ""
        about = " ".join(spec.description for spec in servers if spec.description)
        ids = ", ".join(spec.server_id for spec in servers)
        return SubagentSpec(
            name=agent,
            description=(
                f"The {agent} specialist, working through the team's MCP server(s) {ids}. {about} "
                f"Its tools: {names}{more}. Give it a specific task."
            ).replace("  ", " "),
            instructions=(
                f"You are the {agent} specialist. Your tools come from the team's MCP server(s) {ids}; "
                "call them to answer the task."
            ),
            tools=[*tools, *output_function_tools()],
        )


@asynccontextmanager
async def attached_mcp(context: InvestigationContext) -> AsyncIterator[AttachedMcp]:
    """Start the servers the team's agents name; stop them all when the block is left."""
    declared = declared_servers(context.config)
    attached = AttachedMcp(attached=dict(declared.attached))
    secrets = secret_values(context.config)

    def report(line: str) -> None:
        line = scrub_text(line, secrets)
        attached.problems.append(line)
        context.emit(Thought(text=line))

    for agent, ids in declared.unknown.items():
        for server_id in ids:
            report(
                f"MCP server {server_id} is named in `agents.{agent}.mcp_servers` but `mcp_servers` does "
                "not declare it; skipped."
            )
    needed = declared.needed()
    for server_id in needed:
        problem = declared.problems.get(server_id)
        if problem is not None:
            report(f"MCP server {server_id} skipped: {problem.message}")
    specs = [declared.servers[i] for i in needed if i in declared.servers]
    running: list[MCPServer] = []

    async def start(spec: McpServerSpec) -> StartedServer | str:
        try:
            started = await start_server(spec)
        except McpStartFailed as exc:
            return str(exc)
        running.append(started.server)
        return started

    try:
        outcomes = await asyncio.gather(*(start(spec) for spec in specs), return_exceptions=True)
        for spec, outcome in zip(specs, outcomes, strict=True):
            if isinstance(outcome, StartedServer):
                attached.started[spec.server_id] = outcome
                attached.toolsets[spec.server_id] = server_toolset(outcome)
            elif isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
                raise outcome
            else:
                reason = str(outcome).rstrip(". ")
                report(f"MCP server {spec.server_id} could not start: {reason}. Carrying on without it.")
        yield attached
    finally:
        await _stop_all(running)


async def _stop_all(servers: Sequence[MCPServer]) -> None:
    """Stop every server; when the run is being cancelled the stop still completes in the background."""
    if not servers:
        return
    stopping = asyncio.gather(*(stop_server(s) for s in servers))
    await asyncio.shield(stopping)
