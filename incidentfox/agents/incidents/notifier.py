"""Delivers what webhook threads are owed: root-message edits, one line per update, the write-backs
(the RCA note on a PagerDuty incident, the comment on a GitHub pull request).

Everything owed lives in ``incident_threads``, so a restart picks up where the last process stopped.
Each due row is tried once per pass, in order: the root message (newest state), the lines (oldest
first), the write-backs (each through its source's ``deliver``). Slack 429/5xx and the sources'
failures are retried with exponential backoff (the wait the source asked for as a floor:
``Retry-After``, a rate limit's reset); a thread that is gone drops what it was owed. A write-back
that cannot succeed, or that is still refused after ``note_attempts`` tries, is given up and the
thread is told why in plain words.
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

from incidentfox.agents.incidents.sources import WRITE_BACK_SOURCES
from incidentfox.agents.incidents.store import IncidentStore, OwedWork
from incidentfox.agents.incidents.writeback import DeliveryContext, WriteBackFailed
from incidentfox.agents.slack_updater import GONE_ERRORS, SendKind, SendOutcome, classify_slack_error
from incidentfox.blocks.limits import escape_mrkdwn
from incidentfox.blocks.thread_root import render_thread_root, thread_root_text
from incidentfox.config.service import ConfigService
from incidentfox.db.base import utcnow

log = logging.getLogger(__name__)
GAVE_UP = "IncidentFox stopped trying; the analysis stays in this thread."


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
            # ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` can swallow a
            # cancellation that arrives as its timeout fires, and this loop would never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()

    async def deliver_due(self) -> None:
        for work in await self._incidents.due(utcnow()):
            await self._deliver(work)

    async def _deliver(self, work: OwedWork) -> None:
        lines_sent, root_done = 0, not work.root_stale
        written: list[str] = []
        try:
            if work.root_stale:
                await self._slack(
                    "chat_update",
                    channel=work.channel_id,
                    ts=work.root_ts,
                    blocks=render_thread_root(work.state),
                    text=thread_root_text(work.state),
                )
                root_done = True
            for line in work.lines:
                await self._slack(
                    "chat_postMessage", channel=work.channel_id, thread_ts=work.root_ts, text=line
                )
                lines_sent += 1
            failed = await self._write_backs(work, written)
        except _SlackFailed as failed_post:
            outcome = failed_post.outcome
            if outcome.error in GONE_ERRORS or outcome.kind is SendKind.BAD_CONTENT:
                log.warning(
                    "incident thread gone, dropping its updates key=%s error=%s",
                    work.incident_key,
                    outcome.error,
                )
                every = [w.key for w in work.writes]
                await self._incidents.settle(
                    work, lines_sent=len(work.lines), root_done=True, writes_done=every, retry_at=None
                )
                return
            await self._retry(work, lines_sent, root_done, written, outcome.retry_after, outcome.error)
            return
        if failed is not None:
            await self._retry(work, lines_sent, root_done, written, failed.retry_after, failed.reason)
            return
        await self._incidents.settle(
            work, lines_sent=lines_sent, root_done=root_done, writes_done=written, retry_at=None
        )

    async def _retry(
        self,
        work: OwedWork,
        lines_sent: int,
        root_done: bool,
        written: list[str],
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
            writes_done=written,
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

    async def _write_backs(self, work: OwedWork, written: list[str]) -> WriteBackFailed | None:
        """Make every write owed, adding the key of each one made or given up to ``written``; the
        failure to retry, if any (the longest wait asked for)."""
        if not work.writes:
            return None
        config = await self._config.effective_config(work.org_id, work.team_node_id)
        context = DeliveryContext(config=config, permalink=lambda: self._permalink(work))
        retry: WriteBackFailed | None = None
        for write in work.writes:
            source = WRITE_BACK_SOURCES.get(write.kind)
            if source is None:
                log.error("unknown write-back dropped key=%s kind=%s", work.incident_key, write.kind)
                written.append(write.key)
                continue
            try:
                await source.deliver(write, context)
            except WriteBackFailed as failed:
                if failed.final or work.attempts + 1 >= self.schedule.note_attempts:
                    await self._give_up(work, failed.reason)
                    written.append(write.key)
                elif retry is None or failed.retry_after > retry.retry_after:
                    retry = failed
                continue
            written.append(write.key)
        return retry

    async def _permalink(self, work: OwedWork) -> str | None:
        try:
            answer = await self._client.chat_getPermalink(channel=work.channel_id, message_ts=work.root_ts)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, OSError):
            return None
        return str(answer["permalink"])

    async def _give_up(self, work: OwedWork, reason: str) -> None:
        log.error("write-back given up key=%s reason=%s", work.incident_key, reason)
        await self._slack(
            "chat_postMessage",
            channel=work.channel_id,
            thread_ts=work.root_ts,
            text=f"⚠️ {escape_mrkdwn(reason)} {GAVE_UP}",
        )
