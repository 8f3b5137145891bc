"""The worker's two hooks for runs that an incident opened (PagerDuty, incident.io).

Before investigating, ``prepare`` posts the incident's root message in the team's channel, so the
progress message and the RCA land in its thread; the run and the incident row then both know the
thread. A process killed between Slack accepting the root message and that write would post a
second one on resume, so the root message carries metadata naming its run and is looked for first.

After the run ends, ``finished`` owes the incident tool a note with the RCA summary and the thread's
link (``IncidentNotifier`` delivers it), unless the team turned notes off
(``integrations.pagerduty.post_notes: false``) or gave no API key to write with.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.incidents.store import IncidentStore
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.live_message import SlackUnreachable
from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.service import RunStore
from incidentfox.agents.slack_updater import SendKind, classify_slack_error
from incidentfox.agents.toolsets.base import lookup_dotted
from incidentfox.blocks.incident import incident_root_text, render_incident_root
from incidentfox.config.service import ConfigService

log = logging.getLogger(__name__)
ROOT_EVENT_TYPE = "incidentfox_incident"
NOTE_SUMMARY_MAX = 2_000
WorkspaceOf = Callable[[], Awaitable[str | None]]


class RootNotPosted(Exception):
    """Slack refused the root message for good (channel gone, bot not in it): nowhere to answer."""


class IncidentThreads:
    def __init__(
        self,
        *,
        incidents: IncidentStore,
        runs: RunStore,
        config: ConfigService,
        poster: AsyncWebClient,
        workspace_of: WorkspaceOf,
        owed: Callable[[], None] = lambda: None,
    ) -> None:
        self._incidents = incidents
        self._runs = runs
        self._config = config
        self._poster = poster
        self._workspace_of = workspace_of
        self._owed = owed

    @staticmethod
    def opens_thread(run: Run) -> bool:
        return bool(run.origin and run.origin.get("incident_key")) and not run.thread_ts

    async def prepare(self, run: Run) -> Run:
        """``run`` living in its incident's thread (the root message posted or found again).

        Raises ``SlackUnreachable`` while Slack may take it later and ``RootNotPosted`` when it never will.
        """
        origin = run.origin or {}
        key, channel = str(origin["incident_key"]), str(origin["channel_id"])
        row = await self._incidents.get(key)
        state: Mapping[str, Any] = row.state if row is not None else {}
        try:
            ts = (row.root_ts if row is not None and row.run_id == run.run_id else None) or await self._find(
                run, channel
            )
            if ts is None:
                posted = await self._poster.chat_postMessage(
                    channel=channel,
                    blocks=render_incident_root(state),
                    text=incident_root_text(state),
                    metadata={"event_type": ROOT_EVENT_TYPE, "event_payload": {"run_id": run.run_id}},
                )
                ts = str(posted["ts"])
        except SlackApiError as exc:
            outcome = classify_slack_error(exc)
            if outcome.kind in (SendKind.RATE_LIMITED, SendKind.TRANSIENT):
                raise SlackUnreachable(outcome.error) from exc
            raise RootNotPosted(outcome.error) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SlackUnreachable(type(exc).__name__) from exc
        workspace = await self._workspace_of() or ""
        thread_key = f"slack:{workspace}:{channel}:{ts}"
        await self._runs.attach_thread(run.run_id, channel_id=channel, thread_ts=ts, thread_key=thread_key)
        await self._incidents.attach_thread(key, run_id=run.run_id, channel_id=channel, root_ts=ts)
        self._owed()
        run.channel_id, run.thread_ts, run.thread_key = channel, ts, thread_key
        return run

    async def _find(self, run: Run, channel: str) -> str | None:
        """The root message this run posted before a crash, if any (only asked on a resume)."""
        if run.attempts <= 1:
            return None
        oldest = (run.created_at - timedelta(minutes=1)).timestamp()
        page = await self._poster.conversations_history(
            channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200
        )
        for message in page.get("messages") or []:
            metadata = message.get("metadata") if isinstance(message, dict) else None
            if (
                isinstance(metadata, dict)
                and metadata.get("event_type") == ROOT_EVENT_TYPE
                and (metadata.get("event_payload") or {}).get("run_id") == run.run_id
            ):
                return str(message["ts"])
        return None

    async def finished(self, run: Run, outcome: InvestigationOutcome) -> None:
        """Owe the incident a note with the outcome, when the team writes notes back."""
        origin = run.origin or {}
        key = origin.get("incident_key")
        if not key or not str(key).startswith("pagerduty:"):
            return
        config = await self._config.effective_config_shared(run.org_id, run.team_node_id)
        if lookup_dotted(config, "integrations.pagerduty.post_notes") is False:
            return
        if not lookup_dotted(config, "integrations.pagerduty.api_key"):
            return
        await self._incidents.owe_note(str(key), note_text(outcome))
        self._owed()


def note_text(outcome: InvestigationOutcome) -> str:
    """The note's text without the link (added when it is sent): plain text, PagerDuty shows no markup."""
    if outcome.rca is None:
        return f"IncidentFox could not finish the investigation: {outcome.error or 'unknown error'}"
    rca = outcome.rca
    lines = [
        f"IncidentFox RCA: {rca.summary}",
        f"Root cause: {rca.root_cause}",
        f"Confidence: {rca.confidence.level} ({rca.confidence.why})",
    ]
    lines.extend(f"Do now: {action}" for action in rca.immediate_actions[:3])
    return "\n".join(lines)[:NOTE_SUMMARY_MAX]
