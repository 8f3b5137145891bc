"""Finding a run's "Investigating…" message again after a crash.

The progress message is posted before the run's row records its ``ts``. A process killed between
Slack accepting the post and that write leaves a message the database does not know about, and the
resumed run would post a second one. So every progress message carries Slack message metadata
naming its run, and a resumed run without a saved ``ts`` first looks for that message in its thread
(``conversations.replies`` with ``include_all_metadata``) and takes it over.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.runs.models import Run
from incidentfox.agents.slack_updater import SendKind, classify_slack_error

log = logging.getLogger(__name__)
RUN_EVENT_TYPE = "incidentfox_run"
MAX_PAGES = 5
CLOCK_MARGIN = timedelta(minutes=1)
"""Slack's clock and ours differ a little; look from slightly before the run was created."""


class LookupUnavailable(Exception):
    """Slack could not be asked right now (429/5xx, network): try again later."""


def run_metadata(run_id: str, event_type: str = RUN_EVENT_TYPE) -> dict[str, Any]:
    """The message metadata that marks a message a run posted (its progress message by default)."""
    return {"event_type": event_type, "event_payload": {"run_id": run_id}}


def marked_by(message: Any, run_id: str, event_type: str = RUN_EVENT_TYPE) -> bool:
    """Whether ``message`` (as the history methods return it) carries ``run_metadata(run_id, event_type)``."""
    metadata = message.get("metadata") if isinstance(message, dict) else None
    if not isinstance(metadata, dict) or metadata.get("event_type") != event_type:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("run_id") == run_id


async def find_progress_message(client: AsyncWebClient, run: Run) -> str | None:
    """The ``ts`` of ``run``'s progress message already in its thread, or ``None``.

    Only runs that were handed out before (``attempts > 1``) and live in a thread are looked up, so a
    fresh run costs no extra call. A refusal (no history scope, channel gone) counts as not found.
    """
    if run.attempts <= 1 or not run.thread_ts or not run.channel_id:
        return None
    oldest = (run.created_at - CLOCK_MARGIN).timestamp()
    cursor: str | None = None
    try:
        for _ in range(MAX_PAGES):
            page = await client.conversations_replies(
                channel=run.channel_id,
                ts=run.thread_ts,
                oldest=f"{oldest:.6f}",
                include_all_metadata=True,
                limit=200,
                cursor=cursor,
            )
            for message in page.get("messages") or []:
                if marked_by(message, run.run_id) and message.get("ts"):
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
    except SlackApiError as exc:
        outcome = classify_slack_error(exc)
        if outcome.kind in (SendKind.RATE_LIMITED, SendKind.TRANSIENT):
            raise LookupUnavailable(outcome.error) from exc
        log.warning("cannot look for the progress message run_id=%s error=%s", run.run_id, outcome.error)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise LookupUnavailable(type(exc).__name__) from exc
    return None
