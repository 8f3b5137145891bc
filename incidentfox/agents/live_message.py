"""One run's Slack message: posted as "Investigating…", edited live, and ended with the RCA or error."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.events import FirstFinding, ProgressEvent, Started
from incidentfox.agents.investigator import InvestigationOutcome
from incidentfox.agents.pending_finals import final_message
from incidentfox.agents.progress_marker import LookupUnavailable, find_progress_message, run_metadata
from incidentfox.agents.runs.models import Run
from incidentfox.agents.slack_updater import (
    CONTENT_ERRORS,
    GONE_ERRORS,
    SendKind,
    SlackProgressUpdater,
    classify_slack_error,
)
from incidentfox.blocks.progress import progress_text, render_progress
from incidentfox.blocks.rca import answer_text, error_text, rca_text, render_answer, render_error, render_rca
from incidentfox.blocks.timeline import RunState
from incidentfox.sandboxes.investigator import DEBUG_KIND

log = logging.getLogger(__name__)
FIRST_EDIT_HOLD_S = 1.5
"""How long a run's first edit waits for its first finding (see ``LiveMessage._hold_first_edit``): long
enough for the checks of a real cluster and the alert reads (``alert_checks.CHECK_TIMEOUT_S``), short
enough that a run without a finding still shows its steps soon after "Investigating…"."""
INTERNAL_ERROR = "Something went wrong inside IncidentFox while investigating; the details are in its logs."


class SlackUnreachable(Exception):
    """Slack did not take the first post for a temporary reason (429/5xx, network): try again later."""


@dataclass(frozen=True, slots=True)
class FinalDelivery:
    """How a message ended: ``pending`` holds the final message Slack has not accepted yet, if any."""

    pending: dict[str, Any] | None = None


DELIVERED = FinalDelivery()


class LiveMessage:
    """Renders a run's events into its message, never more often than the updater allows.

    ``emit`` only appends and marks the message dirty; a pump task renders the newest state when the
    updater can send. Every ending (``finish``, ``finish_interrupted``, ``abandon``) stops the pump
    and closes the updater exactly once.
    """

    def __init__(
        self, updater: SlackProgressUpdater, run_id: str, title: str, *, ts: str, hold_first_edit: bool = True
    ) -> None:
        """``hold_first_edit`` is for runs that may show a first finding (not the SRE agent's sessions,
        whose first steps should show at once)."""
        self.events: list[ProgressEvent] = []
        self._holds = hold_first_edit
        self.ts = ts
        self.finished = False
        self._updater = updater
        self._run_id = run_id
        self._title = title
        self._dirty = asyncio.Event()
        self._pump = asyncio.create_task(self._render_loop())

    def emit(self, event: ProgressEvent) -> None:
        self.events.append(event)
        self._dirty.set()

    async def _render_loop(self) -> None:
        if self._holds:
            await self._hold_first_edit()
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            await self._send("running", final=False)

    async def _hold_first_edit(self) -> None:
        """Keep the first edit for instant triage's first finding, for at most ``FIRST_EDIT_HOLD_S``.

        At most one edit a second goes out: spent on "checking pods…" a few milliseconds before the
        finding arrives, it would keep the finding off the screen for that second."""
        deadline = asyncio.get_running_loop().time() + FIRST_EDIT_HOLD_S
        while not any(isinstance(e, FirstFinding) for e in self.events):
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):  # unlike wait_for, never swallows a cancel
                    await self._dirty.wait()
            self._dirty.clear()
        if any(not isinstance(e, Started) for e in self.events):
            self._dirty.set()

    async def _send(self, state: RunState, *, final: bool) -> None:
        blocks = render_progress(self.events, run_id=self._run_id, title=self._title, state=state)
        text = progress_text(self.events, title=self._title, state=state)
        if final:
            await self._updater.finish(blocks, text)
        else:
            await self._updater.update(blocks, text)

    async def _end(self) -> bool:
        """Stop the pump; ``False`` if the message already ended."""
        if self.finished:
            return False
        self.finished = True
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump
        return True

    def final_for(self, outcome: InvestigationOutcome) -> dict[str, Any]:
        """The final message (``blocks``, ``text``) ``finish`` will show for ``outcome``."""
        if outcome.rca is not None:
            blocks = render_rca(outcome.rca, run_id=self._run_id, dig_deeper=outcome.dig_deeper)
            return final_message(blocks, rca_text(outcome.rca))
        if outcome.answer is not None:
            return final_message(
                render_answer(outcome.answer, run_id=self._run_id), answer_text(outcome.answer)
            )
        message = outcome.error or INTERNAL_ERROR
        return final_message(render_error(message, run_id=self._run_id), error_text(message))

    async def finish(self, outcome: InvestigationOutcome) -> FinalDelivery:
        """Replace the progress with the RCA (or the agent's answer), or with the error in plain words."""
        if not await self._end():
            return DELIVERED
        final = self.final_for(outcome)
        await self._updater.finish(final["blocks"], final["text"])
        return await self._closed_delivery()

    async def finish_interrupted(self) -> FinalDelivery:
        """Leave the message showing where the run stopped, with a Resume button."""
        if not await self._end():
            return DELIVERED
        await self._send("interrupted", final=True)
        return await self._closed_delivery()

    async def _closed_delivery(self) -> FinalDelivery:
        await self._updater.close()
        updater = self._updater
        if updater.final_delivered or updater.final_error in GONE_ERRORS | CONTENT_ERRORS:
            return DELIVERED
        return FinalDelivery(pending=final_message(updater.final_blocks, updater.final_text))

    async def abandon(self) -> None:
        """Stop editing without a final state (shutdown): the next start picks the run up again."""
        if await self._end():
            await self._updater.close()


async def open_live_message(
    run: Run,
    title: str,
    *,
    poster: AsyncWebClient,
    editor: AsyncWebClient,
    interval: float,
    final_wait: float = 60.0,
) -> LiveMessage | None:
    """Post "Investigating…" in the thread, or take over the message of a run resumed after a restart
    (its saved ``ts``, or the marked message found in the thread when the crash came before the save).

        ``poster`` retries 429/5xx itself; ``editor`` has no retry handlers, because the updater paces
        its edits. ``None`` when Slack refuses the post for good; ``SlackUnreachable`` when it may take
        it later.
    """
    if not run.channel_id:
        return None
    blocks = render_progress([Started(summary=title)], run_id=run.run_id, title=title, state="running")
    text = progress_text([Started(summary=title)], title=title, state="running")
    try:
        earlier = run.message_ts or await find_progress_message(poster, run)
        if earlier:
            await poster.chat_update(channel=run.channel_id, ts=earlier, blocks=blocks, text=text)
            channel, ts = run.channel_id, earlier
        else:
            kwargs: dict[str, Any] = {
                "channel": run.channel_id,
                "blocks": blocks,
                "text": text,
                "metadata": run_metadata(run.run_id),
            }
            if run.thread_ts:
                kwargs["thread_ts"] = run.thread_ts
            posted = await poster.chat_postMessage(**kwargs)
            channel, ts = str(posted["channel"]), str(posted["ts"])
    except SlackApiError as exc:
        outcome = classify_slack_error(exc)
        if outcome.kind in (SendKind.RATE_LIMITED, SendKind.TRANSIENT):
            raise SlackUnreachable(outcome.error) from exc
        log.error(
            "cannot post the progress message run_id=%s channel=%s error=%s",
            run.run_id,
            run.channel_id,
            outcome.error,
        )
        return None
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise SlackUnreachable(type(exc).__name__) from exc
    except LookupUnavailable as exc:
        raise SlackUnreachable(str(exc)) from exc
    updater = SlackProgressUpdater(
        editor,
        channel,
        ts,
        min_interval=interval,
        max_final_wait=final_wait,
        log_context={"run_id": run.run_id, "team": run.team_node_id},
    )
    return LiveMessage(updater, run.run_id, title, ts=ts, hold_first_edit=run.kind != DEBUG_KIND)
