"""Liveness and readiness: ``/healthz`` says the process answers; ``/readyz`` that it can do its job."""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy import text

from incidentfox.bot.http_json import json_response
from incidentfox.bot.runtime import Runtime
from incidentfox.db.engine import READ_ONLY
from incidentfox.db.migrate import current_revision, head_revision

RUNTIME = web.AppKey("runtime", Runtime)
log = logging.getLogger(__name__)


async def healthz(_request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        reader = runtime.engine.execution_options(**{READ_ONLY: True})
        async with reader.connect() as connection:
            await connection.execute(text("SELECT 1"))
        current = await current_revision(reader)
    except Exception as exc:
        log.warning("readiness check failed: database unreachable (%s)", type(exc).__name__)
        return json_response({"status": "unavailable", "reason": "database is unreachable"}, status=503)
    head = head_revision()
    if current != head:
        reason = (
            f"database is at migration {current or 'none'}, code expects {head}; run `incidentfox migrate`"
        )
        return json_response({"status": "unavailable", "reason": reason}, status=503)
    return json_response({"status": "ready", "migration": current})
