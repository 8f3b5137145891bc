"""Which tool calls of a run may be answered again from the run's memory, and how a repeat is marked.

A model that asks for the same thing twice (the same tool with the same arguments, in canonical JSON)
within one run gets the earlier result again, marked ``repeat_of`` with the earlier call's number,
without the tool running again. Never remembered: write tools (their effect is the point; a write
also makes every remembered read stale, so it empties the memory), calls with invalid arguments, and
errors that look transient (timeouts, 5xx answers, rate limits, unreachable endpoints), which may
well succeed when tried again.
"""

from __future__ import annotations

import json
import re

from pydantic import BaseModel

from incidentfox.agents.toolsets.base import Tool, ToolResult, Toolset

_TRANSIENT = re.compile(
    r"(?i)time[sd]?[ -]?out|deadline|rate[ -]?limit|too many requests|throttl|\b429\b|\b5\d\d\b"
    r"|unavailable|unreachable|temporar|try again|overloaded|bad gateway|connection (?:reset|refused|"
    r"error|aborted|closed)"
)


def call_key(toolset: Toolset, tool: Tool, params: BaseModel) -> str:
    """``kubernetes/pod_logs {"name":…}``: the tool and its validated arguments in canonical JSON."""
    arguments = json.dumps(params.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return f"{toolset.name}/{tool.name} {arguments}"


def looks_transient(error: str) -> bool:
    return _TRANSIENT.search(error) is not None


def worth_remembering(result: ToolResult) -> bool:
    """Whether a read tool's result may answer a repeat: anything but an error that looks transient."""
    if result.status == "approval_required":
        return False
    return result.status != "error" or not looks_transient(result.error or "")


def repeat_marker(call: int, tool: str) -> dict[str, int | str]:
    """The fields that lead a repeated call's answer."""
    return {
        "repeat_of": call,
        "repeat_note": (
            f"Same {tool} call, with the same arguments, as call {call} of this investigation: this is "
            "that call's result again, not a new one. You (or another specialist) already have it; do "
            "not ask again. Change the arguments (a since window, a namespace) for fresh data."
        ),
    }
