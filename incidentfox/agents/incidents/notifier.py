"""Delivers what incident threads are owed: root-message edits, one line per update, the RCA note.

Everything owed lives in ``incident_threads``, so a restart picks up where the last process stopped.
Each due row is tried once per pass, in order: the root message (newest state), the lines (oldest
first), the note. Slack 429/5xx and PagerDuty failures are retried with exponential backoff
(``Retry-After`` as a floor); a thread that is gone drops what it was owed. A note PagerDuty keeps
refusing is given up after ``note_attempts`` tries, and the thread is told why in plain words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.incidents.store import IncidentStore, OwedWork
from incidentfox.agents.slack_updater import GONE_ERRORS, SendKind, SendOutcome, classify_slack_error
from incidentfox.agents.toolsets.pagerduty import add_incident_note
from incidentfox.agents.toolsets.pagerduty_api import RateLimited, connect, describe_failure
from incidentfox.blocks.incident import incident_root_text, render_incident_root
from incidentfox.config.service import ConfigService
from incidentfox.db.base import utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NotifierSchedule:
    base_s: float = 2.0
    cap_s: float = 60.0
    note_attempts: int = 6

    def delay(self, attempts: int, retry_after: float) -> float:
        return max(retry_after, min(self.cap_s, self.base_s * 2 ** max(0, attempts)))


class _SlackFailed(Exception):
    def __init__(self, outcome: SendOutcome) -> None:
        super().__init__(outcome.error or outcome.kind.value)
        self.outcome = outcome


class IncidentNotifier:
    def __init__(
        self,
        incidents: IncidentStore,
        client: AsyncWebClient,
        config: ConfigService,
        *,
        schedule: NotifierSchedule | None = None,
        poll_s: float = 2.0,
    ) -> None:
        self._incidents = incidents
        self._client = client
        self._config = config
        self.schedule = schedule or NotifierSchedule()
        self.poll_s = poll_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Something new is owed: look now instead of at the next poll."""
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.deliver_due()
            except Exception:
                log.exception("delivering incident updates failed; trying again shortly")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def deliver_due(self) -> None:
        for work in await self._incidents.due(utcnow()):
            await self._deliver(work)

    async def _deliver(self, work: OwedWork) -> None:
        lines_sent, root_done, note_done = 0, not work.root_stale, work.note is None
        try:
            if work.root_stale:
                await self._slack(
                    "chat_update",
                    channel=work.channel_id,
                    ts=work.root_ts,
                    blocks=render_incident_root(work.state),
                    text=incident_root_text(work.state),
                )
                root_done = True
            for line in work.lines:
                await self._slack(
                    "chat_postMessage", channel=work.channel_id, thread_ts=work.root_ts, text=line
                )
                lines_sent += 1
            if work.note is not None:
                note_done = await self._note(work)
        except _SlackFailed as failed:
            outcome = failed.outcome
            if outcome.error in GONE_ERRORS or outcome.kind is SendKind.BAD_CONTENT:
                log.warning(
                    "incident thread gone, dropping its updates key=%s error=%s",
                    work.incident_key,
                    outcome.error,
                )
                await self._incidents.settle(
                    work, lines_sent=len(work.lines), root_done=True, note_done=True, retry_at=None
                )
                return
            await self._retry(work, lines_sent, root_done, note_done, outcome.retry_after, outcome.error)
            return
        except _NoteFailed as failed:
            await self._retry(work, lines_sent, root_done, False, failed.retry_after, failed.reason)
            return
        await self._incidents.settle(
            work, lines_sent=lines_sent, root_done=root_done, note_done=note_done, retry_at=None
        )

    async def _retry(
        self,
        work: OwedWork,
        lines_sent: int,
        root_done: bool,
        note_done: bool,
        retry_after: float,
        error: str | None,
    ) -> None:
        delay = self.schedule.delay(work.attempts, retry_after)
        log.warning(
            "incident update not delivered key=%s attempts=%d retry_in_s=%.1f error=%s",
            work.incident_key,
            work.attempts + 1,
            delay,
            error,
        )
        await self._incidents.settle(
            work,
            lines_sent=lines_sent,
            root_done=root_done,
            note_done=note_done,
            retry_at=utcnow() + timedelta(seconds=delay),
            error=error,
        )

    async def _slack(self, method: str, **kwargs: object) -> None:
        try:
            await getattr(self._client, method)(**kwargs)
        except SlackApiError as exc:
            raise _SlackFailed(classify_slack_error(exc)) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _SlackFailed(SendOutcome(SendKind.TRANSIENT, error=type(exc).__name__)) from exc

    async def _note(self, work: OwedWork) -> bool:
        """Add the RCA note; ``True`` once added or given up (the thread then says why)."""
        assert work.note is not None
        incident_id = work.incident_key.split(":", 1)[1]
        doing = f"add the RCA as a note on PagerDuty incident {incident_id}"
        config = await self._config.effective_config(work.org_id, work.team_node_id)
        try:
            permalink = await self._client.chat_getPermalink(channel=work.channel_id, message_ts=work.root_ts)
            content = f"{work.note['content']}\nSlack thread: {permalink['permalink']}"
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError):
            content = str(work.note["content"])
        try:
            client = await connect(config)
        except Exception as exc:
            return await self._give_up(work, f"Could not {doing}: {exc}")
        try:
            await add_incident_note(client, incident_id, content)
        except Exception as exc:
            reason = describe_failure(exc, client.api_url, doing)
            if work.attempts + 1 >= self.schedule.note_attempts:
                return await self._give_up(work, reason)
            retry_after = exc.retry_after if isinstance(exc, RateLimited) and exc.retry_after else 0.0
            raise _NoteFailed(reason, retry_after) from exc
        finally:
            client.close()
        log.info("incident note added key=%s", work.incident_key)
        return True

    async def _give_up(self, work: OwedWork, reason: str) -> bool:
        log.error("incident note given up key=%s reason=%s", work.incident_key, reason)
        await self._slack(
            "chat_postMessage", channel=work.channel_id, thread_ts=work.root_ts, text=f"⚠️ {reason}"
        )
        return True


class _NoteFailed(Exception):
    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
