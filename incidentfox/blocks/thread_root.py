"""The root message of a thread that a webhook opened, whatever its source: one entry point for the
worker (which posts it) and the notifier (which edits it as the source reports changes)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from incidentfox.blocks.components import Block
from incidentfox.blocks.github_thread import github_root_text, render_github_root
from incidentfox.blocks.incident import incident_root_text, render_incident_root
from incidentfox.blocks.schedules import render_schedule_root, schedule_root_text


def render_thread_root(state: Mapping[str, Any]) -> list[Block]:
    """A GitHub thread's root (failed CI run, conversation), a scheduled report's, or an incident's
    (PagerDuty, incident.io)."""
    if state.get("source") == "github":
        return render_github_root(state)
    if state.get("source") == "schedule":
        return render_schedule_root(state)
    return render_incident_root(state)


def thread_root_text(state: Mapping[str, Any]) -> str:
    if state.get("source") == "github":
        return github_root_text(state)
    if state.get("source") == "schedule":
        return schedule_root_text(state)
    return incident_root_text(state)
