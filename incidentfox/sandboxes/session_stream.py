"""How one SRE-agent turn's SDK messages become IncidentFox's typed progress events and transcript lines.

Pure bookkeeping, no I/O: ``TurnReader.read(message)`` returns what to emit and what to record, and
keeps what the turn has said so far (the last text, the CLI's session id, the result). The session
engine (``session.py``) does the emitting, recording and touching.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from claude_agent_sdk import (
    AssistantMessage,
    Message,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)

from incidentfox.agents.events import ProgressEvent, Thought, ToolEnd, ToolStart
from incidentfox.agents.redaction import scrub_text

AGENT = "sre"
TEAM_TOOL_PREFIX = "mcp__incidentfox__"


def shown_tool_name(name: str) -> str:
    """A team tool as people know it (``list_pods``), not as the CLI names it (``mcp__incidentfox__…``)."""
    return name.removeprefix(TEAM_TOOL_PREFIX)


ARG_CHARS = 200
SUMMARY_CHARS = 200
TOOL_LINE_CHARS = 300


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def short_args(tool_input: dict[str, Any], known_values: tuple[str, ...] = ()) -> dict[str, Any]:
    """The tool's input as a renderer shows it: each value on one short, scrubbed line."""
    shown: dict[str, Any] = {}
    for name, value in tool_input.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        shown[name] = _clip(scrub_text(" ".join(text.split()), known_values), ARG_CHARS)
    return shown


def first_line(content: str | list[dict[str, Any]] | None, known_values: tuple[str, ...] = ()) -> str:
    """The first non-empty line of a tool result, scrubbed of secrets."""
    if isinstance(content, list):
        content = "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    for line in (content or "").splitlines():
        if line.strip():
            return _clip(scrub_text(line, known_values), SUMMARY_CHARS)
    return ""


def tool_line(tool: str, args: dict[str, Any]) -> str:
    """The transcript's record of one tool use: ``Bash: ls -la`` (the first argument is the gist)."""
    gist = next(iter(args.values()), "") if args else ""
    return _clip(f"{tool}: {gist}" if gist else tool, TOOL_LINE_CHARS)


@dataclass(slots=True)
class TurnRead:
    """What one SDK message asks of the engine."""

    events: list[ProgressEvent] = field(default_factory=list)
    tool_lines: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TurnReader:
    """Reads one turn's messages in order. ``known_values`` are scrubbed from everything shown."""

    known_values: tuple[str, ...] = ()
    last_text: str = ""
    agent_session_id: str | None = None
    result: ResultMessage | None = None
    tools_by_id: dict[str, str] = field(default_factory=dict)

    def read(self, message: Message) -> TurnRead:
        read = TurnRead()
        if isinstance(message, AssistantMessage):
            self._note_session(message.session_id)
            for block in message.content:
                if isinstance(block, TextBlock) and block.text.strip():
                    self.last_text = block.text
                    read.events.append(Thought(scrub_text(block.text, self.known_values), agent=AGENT))
                elif isinstance(block, ToolUseBlock):
                    args = short_args(block.input, self.known_values)
                    name = shown_tool_name(block.name)
                    self.tools_by_id[block.id] = name
                    read.events.append(ToolStart(block.id, name, args, agent=AGENT))
                    read.tool_lines.append(tool_line(name, args))
        elif isinstance(message, UserMessage) and isinstance(message.content, list):
            for block in message.content:
                if isinstance(block, ToolResultBlock):
                    status = "error" if block.is_error else "ok"
                    summary = first_line(block.content, self.known_values)
                    tool = self.tools_by_id.get(block.tool_use_id, "tool")
                    read.events.append(ToolEnd(block.tool_use_id, tool, status, summary, agent=AGENT))
        elif isinstance(message, SystemMessage) and message.subtype == "init":
            session_id = message.data.get("session_id")
            self._note_session(session_id if isinstance(session_id, str) else None)
        elif isinstance(message, ResultMessage):
            self._note_session(message.session_id)
            self.result = message
        return read

    def _note_session(self, session_id: str | None) -> None:
        if session_id:
            self.agent_session_id = session_id

    @property
    def final_text(self) -> str:
        """The assistant's answer: the result's text when the CLI gave one, else its last words."""
        if self.result is not None and not self.result.is_error and self.result.result:
            return scrub_text(self.result.result, self.known_values)
        return scrub_text(self.last_text, self.known_values)
