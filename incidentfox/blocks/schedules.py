"""Scheduled reports in Slack: the root message a report's thread opens with, and the App Home lines.

Pure: data in, Block Kit out. Every value comes from a team's config, so all of it is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from incidentfox.blocks.components import Block, context, header, packed_sections, section
from incidentfox.blocks.limits import escape_mrkdwn, mrkdwn, one_line

_RESULT_ICON = {
    "succeeded": "✅",
    "failed": "❌",
    "interrupted": "⏸️",
    "queued": "⏳",
    "running": "🔄",
    "misconfigured": "⚠️",
    "unrouted": "⚠️",
    "duplicate": "•",
    "claimed": "⏳",
}
PROMPT_SHOWN = 300


@dataclass(frozen=True, slots=True)
class ScheduleLine:
    """One schedule of a team as the App Home shows it.

    ``problem`` is set when the schedule cannot run (an incomplete entry); ``next_run`` is in the
    schedule's own time zone; ``last_status`` is the run's status, or why the last slot made no run."""

    schedule_id: str
    when: str = ""
    timezone: str = ""
    channel_id: str = ""
    enabled: bool = True
    next_run: datetime | None = None
    last_slot: datetime | None = None
    last_status: str | None = None
    last_detail: str | None = None
    permalink: str | None = None
    problem: str | None = None


def _last_result(line: ScheduleLine) -> str:
    if line.last_slot is None or line.last_status is None:
        return "not run yet"
    when = line.last_slot.strftime("%Y-%m-%d %H:%M %Z")
    icon = _RESULT_ICON.get(line.last_status, "•")
    status = mrkdwn(line.last_status, 40)
    text = f"<{line.permalink}|{status}>" if line.permalink else status
    if line.last_detail:
        text += f" ({mrkdwn(one_line(line.last_detail), 300)})"
    return f"{icon} {text}, {when}"


def schedule_line(line: ScheduleLine) -> str:
    name = f"*{mrkdwn(line.schedule_id, 63)}*"
    if line.problem is not None:
        return f"⚠️ {name}: cannot run: {mrkdwn(one_line(line.problem), 400)}"
    where = f" in <#{line.channel_id}>" if line.channel_id else ""
    head = f"📅 {name}: {mrkdwn(line.when, 120)} ({mrkdwn(line.timezone, 60)}){where}"
    if not line.enabled:
        return f"{head}\n    paused (`enabled: false`) · last: {_last_result(line)}"
    nxt = line.next_run.strftime("%Y-%m-%d %H:%M %Z") if line.next_run else "—"
    return f"{head}\n    next: {nxt} · last: {_last_result(line)}"


def schedule_blocks(lines: Sequence[ScheduleLine]) -> list[Block]:
    """The team's "Scheduled reports" part of the Home; nothing when it has none."""
    if not lines:
        return []
    return packed_sections(["*Scheduled reports*", *(schedule_line(line) for line in lines)])


def schedule_title(state: Mapping[str, Any]) -> str:
    return one_line(f"Scheduled report: {state.get('schedule_id') or 'report'}")


def render_schedule_root(state: Mapping[str, Any]) -> list[Block]:
    """Header, what it checks, and when (the slot in the schedule's time zone and its cadence)."""
    prompt = mrkdwn(one_line(str(state.get("prompt") or "")), PROMPT_SHOWN)
    slot = mrkdwn(str(state.get("slot") or ""), 60)
    when = mrkdwn(str(state.get("when") or ""), 120)
    zone = mrkdwn(str(state.get("timezone") or ""), 60)
    return [
        header(schedule_title(state)),
        section(f"*Asked:* {prompt}"),
        context(f"Slot {slot} · {when} ({zone}) · IncidentFox reports in this thread."),
    ]


def schedule_root_text(state: Mapping[str, Any]) -> str:
    return escape_mrkdwn(f"{schedule_title(state)} ({state.get('slot') or ''})")
