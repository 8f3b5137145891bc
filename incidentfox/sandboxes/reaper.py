"""The reaper: destroys sandboxes whose files outlived their TTL, whichever process created them.

The inventory is in the database, so a restart loses nothing: the first pass after a start destroys
what expired while IncidentFox was down. A sandbox that cannot be destroyed now stays ``active`` and
is tried again on the next pass, with the reason in the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from incidentfox.db.base import utcnow
from incidentfox.sandboxes.models import SandboxSession
from incidentfox.sandboxes.store import SandboxStore

log = logging.getLogger(__name__)

Destroy = Callable[[SandboxSession], Awaitable[None]]
"""Remove the session's sandbox (its backend, ref and details say which); gone already counts as done."""


class SandboxReaper:
    def __init__(self, store: SandboxStore, destroy: Destroy, *, poll_s: float = 60.0) -> None:
        self.store = store
        self.destroy = destroy
        self.poll_s = poll_s

    async def reap_once(self, now: datetime | None = None) -> int:
        """Destroy every expired sandbox; returns how many are gone now."""
        reaped = 0
        for row in await self.store.due_for_reaping(now or utcnow()):
            if row.sandbox_ref:
                try:
                    await self.destroy(row)
                except Exception as exc:
                    log.warning(
                        "sandbox reaper: could not destroy session=%s backend=%s error=%s",
                        row.session_id,
                        row.backend,
                        type(exc).__name__,
                    )
                    continue
            await self.store.mark_expired(row.session_id)
            log.info("sandbox reaper: files of session=%s expired and were removed", row.session_id)
            reaped += 1
        return reaped

    async def run_forever(self) -> None:
        while True:
            try:
                await self.reap_once()
            except Exception:
                log.exception("sandbox reaper pass failed; trying again in %ss", self.poll_s)
            await asyncio.sleep(self.poll_s)
