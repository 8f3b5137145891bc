"""The worker's two hooks for runs that a webhook opened (a PagerDuty or incident.io incident, a
failed GitHub CI run, a question asked on GitHub), whatever the source.

Before investigating, ``prepare`` posts the thread's root message in the team's channel (rendered
by the source: ``blocks/thread_root``), so the progress message and the RCA land in its thread; the
run and the ``incident_threads`` row then both know the thread. A process killed between Slack
accepting the root message and that write would post a second one on resume, so the root message
carries metadata naming its run and is looked for first. When another run of the same row posted
its root meanwhile (two workflows of one push failing together), the run joins that thread instead.

After the run ends, ``finished`` owes the source its write-backs (``agents/incidents/sources``: the
note on the incident, the comment on the pull request), which ``IncidentNotifier`` delivers.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.incidents.models import IncidentThread
from incidentfox.agents.incidents.sources import WRITE_BACK_SOURCES
from incidentfox.agents.incidents.store import IncidentStore
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.live_message import SlackUnreachable
from incidentfox.agents.progress_marker import marked_by, run_metadata
from incidentfox.agents.runs.models import Run
from incidentfox.agents.runs.service import RunStore
from incidentfox.agents.slack_updater import SendKind, classify_slack_error
from incidentfox.blocks.thread_root import render_thread_root, thread_root_text
from incidentfox.config.service import ConfigService

log = logging.getLogger(__name__)
ROOT_EVENT_TYPE = "incidentfox_incident"
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
        self._opening: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        """One lock per row while runs of it open their thread (gone once no run holds it)."""

    @staticmethod
    def opens_thread(run: Run) -> bool:
        return bool(run.origin and run.origin.get("incident_key")) and not run.thread_ts

    async def prepare(self, run: Run) -> Run:
        """``run`` living in its row's thread (the root message posted, found again, or joined).

        Raises ``SlackUnreachable`` while Slack may take it later and ``RootNotPosted`` when it never will.
        """
        origin = run.origin or {}
        key, channel = str(origin["incident_key"]), str(origin["channel_id"])
        lock = self._opening.setdefault(key, asyncio.Lock())
        async with lock:
            row = await self._incidents.get(key)
            joined = _thread_of_another_run(row, run)
            channel, ts = joined or (channel, await self._post_root(run, row, channel))
            thread_key = f"slack:{await self._workspace_of() or ''}:{channel}:{ts}"
            await self._runs.attach_thread(
                run.run_id, channel_id=channel, thread_ts=ts, thread_key=thread_key
            )
            if joined is None:
                await self._incidents.attach_thread(key, run_id=run.run_id, channel_id=channel, root_ts=ts)
        self._owed()
        run.channel_id, run.thread_ts, run.thread_key = channel, ts, thread_key
        return run

    async def _post_root(self, run: Run, row: IncidentThread | None, channel: str) -> str:
        """The root message's ``ts``: the one this run posted before a crash, or a new one."""
        state: Mapping[str, Any] = row.state if row is not None else {}
        try:
            ts = (row.root_ts if row is not None and row.run_id == run.run_id else None) or await self._find(
                run, channel
            )
            if ts is None:
                posted = await self._poster.chat_postMessage(
                    channel=channel,
                    blocks=render_thread_root(state),
                    text=thread_root_text(state),
                    metadata=run_metadata(run.run_id, ROOT_EVENT_TYPE),
                )
                ts = str(posted["ts"])
        except SlackApiError as exc:
            outcome = classify_slack_error(exc)
            if outcome.kind in (SendKind.RATE_LIMITED, SendKind.TRANSIENT):
                raise SlackUnreachable(outcome.error) from exc
            raise RootNotPosted(outcome.error) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SlackUnreachable(type(exc).__name__) from exc
        return ts

    async def _find(self, run: Run, channel: str) -> str | None:
        """The root message this run posted before a crash, if any (only asked on a resume)."""
        if run.attempts <= 1:
            return None
        oldest = (run.created_at - timedelta(minutes=1)).timestamp()
        page = await self._poster.conversations_history(
            channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200
        )
        marked = (m for m in page.get("messages") or [] if marked_by(m, run.run_id, ROOT_EVENT_TYPE))
        return next((str(m["ts"]) for m in marked if m.get("ts")), None)

    async def finished(self, run: Run, outcome: InvestigationOutcome) -> None:
        """Owe the source what it is to get back for this outcome (nothing when the team turned it off)."""
        origin = run.origin or {}
        key = origin.get("incident_key")
        if not key:
            return
        config = await self._config.effective_config_shared(run.org_id, run.team_node_id)
        writes = [w for source in WRITE_BACK_SOURCES.values() for w in source.owed(origin, outcome, config)]
        if writes:
            await self._incidents.owe(str(key), writes)
            self._owed()


def _thread_of_another_run(row: IncidentThread | None, run: Run) -> tuple[str, str] | None:
    """The channel and root ``ts`` of the row's thread when another run opened it already."""
    if row is None or not row.root_ts or not row.channel_id or row.run_id in (None, run.run_id):
        return None
    return row.channel_id, row.root_ts
