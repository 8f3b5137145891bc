"""incident.io webhooks end to end over HTTP: Standard Webhooks signatures (several values, five-minute
tolerance), a new incident opening an investigated thread, updates posting lines on it, dedupe on
``webhook-id``, and deliveries for an unknown team."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr
from sqlalchemy import select

from incidentfox.agents.runs.models import Run
from incidentfox.config.models import AuditEvent
from incidentfox.handlers.webhooks.signatures import standard_webhook_sign
from tests.slack_world import ADMIN, CHANNEL, World, world

SECRET = "whsec_" + base64.b64encode(b"incident-io-signing-secret-0123").decode()
INCIDENT = {
    "id": "01HINCIDENTCHECKOUT0000001",
    "name": "Checkout is crashlooping in prod",
    "reference": "INC-42",
    "summary": "Customers cannot pay; checkout pods restart.",
    "permalink": "https://app.incident.io/acme/incidents/42",
    "incident_status": {"name": "Investigating", "category": "active"},
    "severity": {"name": "Major"},
    "incident_role_assignments": [{"assignee": {"name": "Alice Ng"}, "role": {"name": "Incident Lead"}}],
}


@asynccontextmanager
async def io_world(tmp_path: Path) -> AsyncIterator[World]:
    async with world(tmp_path, team_config={}) as w:
        team = {
            "integrations": {
                "kubernetes": {"api_url": w.k8s.api_url, "token": w.k8s.token, "namespace": "prod"},
                "incidentio": {"webhook_secret": SECRET},
            },
            "routing": {"slack_channel_ids": [CHANNEL]},
        }
        assert w.fox.runtime is not None and w.fox.incident_notifier is not None
        await w.fox.runtime.config.write_config(ADMIN, "acme", "checkout", team, operation="put")
        w.fox.incident_notifier.poll_s = 0.1
        yield w


def payload(event_type: str, body: dict[str, Any]) -> bytes:
    return json.dumps({"event_type": event_type, event_type: body}).encode()


async def deliver(
    w: World,
    body: bytes,
    *,
    secret: str = SECRET,
    message_id: str | None = None,
    sent_at: int | None = None,
    extra: str = "",
    team: str = "checkout",
) -> tuple[int, str]:
    message_id = message_id or f"msg_{secrets.token_hex(8)}"
    sent_at = sent_at if sent_at is not None else int(time.time())
    signature = standard_webhook_sign(secret, message_id, sent_at, body)
    headers = {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(sent_at),
        "webhook-signature": f"{extra} {signature}".strip(),
    }
    url = f"http://127.0.0.1:{w.fox.port}/webhooks/incidentio/acme/{team}"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as answer:
        return answer.status, await answer.text()


async def runs(w: World) -> list[Run]:
    assert w.fox.runtime is not None
    async with w.fox.runtime.sessions() as session:
        return list((await session.scalars(select(Run))).all())


async def test_a_new_incident_opens_an_investigated_thread_and_updates_post_lines(tmp_path: Path) -> None:
    async with io_world(tmp_path) as w:
        status, text = await deliver(w, payload("public_incident.incident_created_v2", INCIDENT))
        assert status == 202, text
        root = await w.slack.wait_for(
            "chat.postMessage",
            lambda c: c.ok and c.args.get("channel") == CHANNEL and not c.args.get("thread_ts"),
            timeout=10,
        )
        blocks = json.dumps(root.args["blocks"], ensure_ascii=False)
        assert "incident.io #42: Checkout is crashlooping in prod" in blocks and "Alice Ng" in blocks
        thread = root.response["ts"]
        await w.final_update(thread, "CrashLoopBackOff", timeout=20)

        change = {
            "incident": {**INCIDENT, "incident_status": {"name": "Resolved", "category": "closed"}},
            "new_status": {"name": "Resolved", "category": "closed"},
            "previous_status": {"name": "Investigating", "category": "active"},
        }
        status, _ = await deliver(w, payload("public_incident.incident_status_updated_v2", change))
        assert status == 200

        async def line_and_root() -> bool:
            lines = [m.text for m in w.slack.messages(CHANNEL, thread)]
            [now] = [m for m in w.slack.messages(CHANNEL) if m.ts == thread]
            return "Status: Investigating → Resolved." in lines and "Resolved" in json.dumps(now.blocks)

        for _ in range(200):
            if await line_and_root():
                break
            await asyncio.sleep(0.05)
        assert await line_and_root()
        assert len(await runs(w)) == 1


async def test_signatures_any_of_several_forged_and_stale(tmp_path: Path) -> None:
    async with io_world(tmp_path) as w:
        body = payload("public_incident.incident_created_v2", INCIDENT)
        other = "whsec_" + base64.b64encode(b"another-secret-entirely-000000").decode()
        assert (await deliver(w, body, secret=other))[0] == 401
        assert (await deliver(w, body, sent_at=int(time.time()) - 600))[0] == 401
        assert await runs(w) == []
        forged = "v1," + base64.b64encode(b"\0" * 32).decode()
        status, _ = await deliver(w, body, extra=forged)
        assert status == 202


async def test_a_retried_delivery_makes_one_run_and_private_incidents_are_not_shown(tmp_path: Path) -> None:
    async with io_world(tmp_path) as w:
        body = payload("public_incident.incident_created_v2", INCIDENT)
        answers = await asyncio.gather(*(deliver(w, body, message_id="msg_same") for _ in range(4)))
        assert sorted(status for status, _ in answers) == [200, 200, 200, 202]
        private = payload("private_incident.incident_created_v2", {"id": "01HPRIVATE"})
        assert (await deliver(w, private))[0] == 204
        await asyncio.sleep(0.3)
        assert len(await runs(w)) == 1


async def test_an_unknown_team_gets_202_and_an_unrouted_audit_event(tmp_path: Path) -> None:
    async with io_world(tmp_path) as w:
        body = payload("public_incident.incident_created_v2", INCIDENT)
        assert (await deliver(w, body, team="nobody"))[0] == 401, "no secret can verify it"
        w.fox.settings = w.fox.settings.model_copy(update={"incidentio_webhook_secret": SecretStr(SECRET)})
        await w.restart()
        status, text = await deliver(w, body, team="nobody")
        assert (status, json.loads(text)) == (202, {"outcome": "unrouted"})
        assert w.fox.runtime is not None
        async with w.fox.runtime.sessions() as session:
            [audited] = (
                await session.scalars(select(AuditEvent).where(AuditEvent.action == "webhook.unrouted"))
            ).all()
        assert "acme/nobody" in audited.target
        assert await runs(w) == []


async def test_a_wrong_event_type_or_an_event_time_without_offset_is_a_400_not_a_500(tmp_path: Path) -> None:
    """Found by the webhook fuzzer: both used to answer 500 with a traceback."""
    async with io_world(tmp_path) as w:
        unhashable = json.dumps({"event_type": [], "public_incident.incident_created_v2": {}}).encode()
        assert (await deliver(w, unhashable))[0] == 400
        assert await runs(w) == []
