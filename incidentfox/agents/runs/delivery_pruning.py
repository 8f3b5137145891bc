"""Pruning the ``deliveries`` table once no sender can retry a delivery any more.

A delivery row exists only so that a retry of the same delivery is recognised and makes no second
run. Once the sender's retry window has passed, the row can go; keeping it forever only grows the
table. Each window below is the sender's documented retry behaviour with a wide margin.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete, not_, or_

from incidentfox.agents.runs.models import Delivery
from incidentfox.db.base import utcnow
from incidentfox.db.engine import SessionFactory

log = logging.getLogger(__name__)

RETRY_WINDOWS: dict[str, timedelta] = {
    # Slack's Events API retries a failed event 3 times: at once, after 1 minute and after 5
    # minutes. Slash commands and interactive payloads are never retried.
    "slack:": timedelta(hours=1),
    # GitHub does not retry failed webhook deliveries by itself, but anyone with access may redeliver
    # one from the UI or the API for 3 days after it was sent.
    "github:": timedelta(days=4),
    # PagerDuty V3 webhooks retry a failed delivery with backoff for a limited time (minutes to
    # hours); a day covers that with room to spare.
    "pagerduty:": timedelta(days=1),
}
"""How long a delivery id is remembered, by the prefix the adapters give it."""
KEPT_FOREVER = ("slack:resume:",)
"""Ids that record a decision rather than a retryable delivery: a run is resumed at most once."""
OTHER_WINDOW = max(RETRY_WINDOWS.values())
"""Ids from any other sender are remembered as long as the longest window."""
PRUNE_EVERY = timedelta(minutes=10)


async def prune_deliveries(sessions: SessionFactory) -> int:
    """Delete deliveries past their sender's retry window; how many were deleted."""
    now = utcnow()
    known = or_(*(Delivery.delivery_id.startswith(prefix) for prefix in RETRY_WINDOWS))
    kept = or_(*(Delivery.delivery_id.startswith(prefix) for prefix in KEPT_FOREVER))
    expired = [
        Delivery.delivery_id.startswith(prefix) & (Delivery.received_at < now - window)
        for prefix, window in RETRY_WINDOWS.items()
    ]
    expired.append(not_(known) & (Delivery.received_at < now - OTHER_WINDOW))
    async with sessions.begin() as session:
        result = await session.execute(
            delete(Delivery).where(or_(*expired), not_(kept)).execution_options(synchronize_session=False)
        )
    deleted = int(getattr(result, "rowcount", 0) or 0)
    if deleted:
        log.info("pruned deliveries past their retry window count=%d", deleted)
    return deleted


async def prune_forever(sessions: SessionFactory, *, every: timedelta = PRUNE_EVERY) -> None:
    while True:
        try:
            await prune_deliveries(sessions)
        except Exception as exc:
            log.warning("pruning deliveries failed error=%s", type(exc).__name__)
        await asyncio.sleep(every.total_seconds())
