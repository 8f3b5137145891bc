"""Ephemeral answers to ``/incidentfox``: help, and the status of a team's runs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from incidentfox.blocks.components import Block, context, header, packed_sections, section
from incidentfox.blocks.limits import fit_message, mrkdwn, one_line

SRE_AGENT_OFF = (
    "The SRE agent is off in this IncidentFox installation: it needs an Anthropic API key. Ask whoever "
    "runs IncidentFox to set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL for a gateway) and restart it. "
    "Until then, `/incidentfox investigate <question>` works without it."
)
"""What ``debug`` answers, and what a ``debug`` run taken by a worker without the key ends with."""

SUBCOMMANDS: tuple[tuple[str, str, str], ...] = (
    (
        "investigate <question>",
        "Start an investigation in a new thread here",
        "investigate why is checkout 502ing?",
    ),
    (
        "debug <task>",
        "Start an SRE agent session in a new thread: it runs commands in a sandbox",
        "debug why does the build fail on main?",
    ),
    ("setup", "Set up a team for this channel, or join it to one (admins)", "setup"),
    ("status", "Runs of this channel's team: in progress and the last 5 finished", "status"),
    ("config", "This channel's team config: sources, secrets redacted, integration health", "config"),
    ("help", "This list", "help"),
)


def help_blocks(command: str = "/incidentfox", *, unknown: str | None = None) -> list[Block]:
    """Every subcommand with one example; ``unknown`` says what was not understood."""
    blocks: list[Block] = []
    if unknown:
        blocks.append(section(f"I don't know `{mrkdwn(one_line(unknown), 80)}`. Here is what I can do:"))
    else:
        blocks.append(header("IncidentFox commands"))
    lines = [
        f"• `{command} {usage}`: {what}\n    e.g. `{command} {example}`"
        for usage, what, example in SUBCOMMANDS
    ]
    blocks.append(section("\n".join(lines)))
    blocks.append(context("You can also mention @IncidentFox with a question in a channel it answers in."))
    return blocks


def help_text(command: str = "/incidentfox") -> str:
    return "IncidentFox commands: " + "; ".join(f"{command} {usage}" for usage, _, _ in SUBCOMMANDS)


@dataclass(frozen=True, slots=True)
class RunLine:
    """One run in a status list."""

    question: str
    status: str
    created_at: datetime
    duration_s: float | None
    permalink: str | None


_STATUS_ICON = {
    "queued": "⏳",
    "running": "🔄",
    "succeeded": "✅",
    "failed": "❌",
    "interrupted": "⏸️",
}


def run_line(run: RunLine) -> str:
    icon = _STATUS_ICON.get(run.status, "•")
    question = mrkdwn(one_line(run.question) or "(no question)", 120)
    asked = f"<{run.permalink}|{question}>" if run.permalink else question
    took = f", {_duration(run.duration_s)}" if run.duration_s is not None else ""
    when = run.created_at.strftime("%Y-%m-%d %H:%M UTC")
    return f"{icon} {asked}  _{run.status}{took}, {when}_"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def status_blocks(team: str, active: Sequence[RunLine], finished: Sequence[RunLine]) -> list[Block]:
    """Runs of a team in progress and the last finished ones, each linking to its thread."""
    blocks: list[Block] = [header(f"Investigations of team {team}")]
    blocks.extend(
        packed_sections(["*In progress*", *(map(run_line, active) if active else ["Nothing running."])])
    )
    blocks.extend(
        packed_sections(
            [
                "*Last finished*",
                *(map(run_line, finished) if finished else ["No finished investigations yet."]),
            ]
        )
    )
    return fit_message(blocks)
