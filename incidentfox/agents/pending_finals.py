"""Final messages Slack has not accepted yet, delivered from the database with backoff across restarts.

The worker tries the final edit itself for a bounded time (``SlackProgressUpdater.finish``). When a
429/5xx storm or an unreachable Slack outlasts that, the run is finished in the database with its
final message *pending*; ``PendingFinals`` keeps trying it, with exponential backoff and Slack's
``Retry-After`` as a floor, until Slack accepts it or the thread is gone (``GONE_ERRORS``). Because
the message lives in the run's row, a restart picks up where the previous process stopped.

A run that never got its "Investigating…" message (Slack unreachable at the first post) has no
message to edit: its final message is posted as a new reply in the thread instead.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.runs.service import PendingFinal, RunStore
from incidentfox.agents.slack_updater import (
    GONE_ERRORS,
    SendKind,
    SendOutcome,
    classify_slack_error,
    plain_text_fallback,
)
from incidentfox.db.base import utcnow

log = logging.getLogger(__name__)
TRY_HOLD_S = 60.0
"""A final taken for a try is not due again (for another process) until this long after."""


def final_message(blocks: list[dict[str, Any]], text: str) -> dict[str, Any]:
    """The stored form of a pending final message."""
    return {"blocks": blocks, "text": text}


@dataclass(frozen=True, slots=True)
class FinalRetrySchedule:
    """How long to wait before the next try: ``base_s`` × 2ⁿ up to ``cap_s``, never before Retry-After.

    ``cap_s`` is short so that a final held back by a long 429 storm shows within a minute of the
    storm's end. ``give_up_after`` bounds errors that are neither temporary nor a gone thread (a
    revoked token, a missing scope): those are retried every ``failed_s`` for that long, then dropped.
    """

    base_s: float = 2.0
    cap_s: float = 60.0
    failed_s: float = 300.0
    give_up_after: timedelta = timedelta(days=1)

    def delay(self, attempts: int, retry_after: float) -> float:
        return max(retry_after, min(self.cap_s, self.base_s * 2 ** max(0, attempts - 1)))


async def send_final(
    client: AsyncWebClient, pending: PendingFinal, message: dict[str, Any]
) -> tuple[SendOutcome, str | None]:
    """One try: edit the run's message, or reply in the thread when it has none. The outcome and the
    ts of the message now showing the final state."""
    blocks, text = message.get("blocks") or [], str(message.get("text") or "")
    try:
        if pending.message_ts:
            await client.chat_update(
                channel=pending.channel_id, ts=pending.message_ts, blocks=blocks, text=text
            )
            return SendOutcome(SendKind.SENT), pending.message_ts
        kwargs: dict[str, Any] = {"channel": pending.channel_id, "blocks": blocks, "text": text}
        if pending.thread_ts:
            kwargs["thread_ts"] = pending.thread_ts
        posted = await client.chat_postMessage(**kwargs)
        return SendOutcome(SendKind.SENT), str(posted.get("ts") or "")
    except SlackApiError as exc:
        return classify_slack_error(exc), None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return SendOutcome(SendKind.TRANSIENT, error=type(exc).__name__), None


class PendingFinals:
    """Delivers the pending final messages that are due, every ``poll_s`` seconds."""

    def __init__(
        self,
        runs: RunStore,
        client: AsyncWebClient,
        *,
        schedule: FinalRetrySchedule | None = None,
        poll_s: float = 1.0,
    ) -> None:
        self._runs = runs
        self._client = client
        self.schedule = schedule or FinalRetrySchedule()
        self.poll_s = poll_s

    async def run_forever(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:
                log.exception("delivering pending final messages failed; trying again shortly")
            await asyncio.sleep(self.poll_s)

    async def deliver_due(self) -> int:
        """Try every due message once; how many Slack accepted."""
        delivered = 0
        now = utcnow()
        for pending in await self._runs.due_finals(now):
            hold_until = utcnow() + timedelta(seconds=TRY_HOLD_S)
            if await self._runs.take_final(pending.run_id, now=now, hold_until=hold_until):
                delivered += await self._try(pending)
        return delivered

    async def _try(self, pending: PendingFinal) -> int:
        message = pending.message
        outcome, ts = await send_final(self._client, pending, message)
        if outcome.kind is SendKind.BAD_CONTENT and message.get("blocks"):
            message = plain_text_fallback(message)
            outcome, ts = await send_final(self._client, pending, message)
        context = f"run_id={pending.run_id} channel={pending.channel_id} attempts={pending.attempts + 1}"
        if outcome.kind is SendKind.SENT:
            await self._runs.final_settled(pending.run_id, message_ts=ts or None)
            log.info("pending final message delivered %s", context)
            return 1
        if outcome.error in GONE_ERRORS or outcome.kind is SendKind.BAD_CONTENT:
            await self._runs.final_settled(pending.run_id)
            log.warning(
                "pending final message dropped: the thread is gone %s error=%s", context, outcome.error
            )
            return 0
        waited = utcnow() - (pending.finished_at or utcnow())
        if outcome.kind is SendKind.FAILED and waited > self.schedule.give_up_after:
            await self._runs.final_settled(pending.run_id)
            log.error("pending final message given up %s error=%s", context, outcome.error)
            return 0
        attempts = pending.attempts + 1
        delay = self.schedule.delay(attempts, outcome.retry_after)
        if outcome.kind is SendKind.FAILED:
            delay = max(delay, self.schedule.failed_s)
        await self._runs.final_retry(
            pending.run_id,
            attempts=attempts,
            at=utcnow() + timedelta(seconds=delay),
            message=message if message is not pending.message else None,
        )
        log.warning(
            "pending final message not accepted yet %s error=%s retry_in_s=%.1f",
            context,
            outcome.error,
            delay,
        )
        return 0
