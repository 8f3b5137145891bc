"""``share_file``'s way to Slack: a copy of a workdir file uploaded into the session's thread."""

from __future__ import annotations

import logging
from pathlib import Path

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.sandboxes.store import SessionPlace
from incidentfox.sandboxes.team_tools import ShareFile, ShareRefused

log = logging.getLogger(__name__)

SLACK_REFUSED = (
    "Slack did not take {name} ({error}); tell the engineer, and paste the important part instead."
)


def thread_share(client: AsyncWebClient, place: SessionPlace) -> ShareFile:
    """Upload with ``files_upload_v2`` into ``place``'s thread, the comment as its message."""

    async def share(path: Path, filename: str, comment: str) -> str:
        try:
            await client.files_upload_v2(
                channel=place.channel_id,
                thread_ts=place.thread_ts,
                file=str(path),
                filename=filename,
                title=filename,
                initial_comment=comment or None,
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "an error")
            log.warning("share_file: Slack refused the upload error=%s", error)
            raise ShareRefused(SLACK_REFUSED.format(name=filename, error=error)) from exc
        return f"Attached {filename} to the Slack thread."

    return share
