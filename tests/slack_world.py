"""A realistic world for end-to-end tests: IncidentFox served on loopback, talking to the Slack,
Kubernetes and (optionally) OpenAI emulators, with one team that claims a channel."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from bench.scratch_stores import forget_namespace
from incidentfox.bot.assembly import IncidentFox, Role
from incidentfox.config.permissions import Principal
from incidentfox.emulators.anthropic_api import AnthropicEmulator
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.emulators.openai_api import OpenAIEmulator
from incidentfox.emulators.slack import SlackEmulator
from incidentfox.emulators.slack.store import RecordedCall
from tests.conftest import make_settings

__all__ = ["forget_namespace"]

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"
CHANNEL = "C0CHECKOUT"
USER = "U0ALICE"
ADMIN = Principal(kind="admin")


def signed_headers(
    body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": str(SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)),
    }


@dataclass
class World:
    fox: IncidentFox
    slack: SlackEmulator
    k8s: KubernetesEmulator
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.fox.port}/slack/events"

    async def post_event(self, body: dict[str, Any], **headers: str) -> aiohttp.ClientResponse:
        raw = json.dumps(body)
        async with self.http.post(self.url, data=raw, headers={**signed_headers(raw), **headers}) as response:
            await response.read()
            return response

    async def post_interactive(self, payload: dict[str, Any]) -> tuple[int, str]:
        raw = urlencode({"payload": json.dumps(payload)})
        headers = {**signed_headers(raw), "Content-Type": "application/x-www-form-urlencoded"}
        async with self.http.post(self.url, data=raw, headers=headers) as response:
            return response.status, await response.text()

    async def post_command(self, fields: dict[str, Any]) -> tuple[int, str]:
        """POST a slash command (form-encoded and signed, as Slack sends it)."""
        raw = urlencode(fields)
        headers = {**signed_headers(raw), "Content-Type": "application/x-www-form-urlencoded"}
        async with self.http.post(self.url, data=raw, headers=headers) as response:
            return response.status, await response.text()

    async def command(self, text: str, *, user: str = USER, channel: str = CHANNEL) -> tuple[int, str]:
        """``/incidentfox <text>`` typed by ``user`` in ``channel``, over HTTP."""
        return await self.post_command(self.slack.make_slash_command(text, channel=channel, user=user))

    async def restart(self, role: Role = "all") -> None:
        """Stop this IncidentFox process and start a new one on the same database and emulators."""
        settings, resilience = self.fox.settings, self.fox.resilience
        await self.fox.stop()
        self.fox = IncidentFox(settings, role=role, update_interval=0.2)
        self.fox.resilience = resilience
        await self.fox.start()

    def mention(
        self, text: str, *, ts: str | None = None, thread_ts: str | None = None, channel: str = CHANNEL
    ) -> dict[str, Any]:
        return self.slack.make_app_mention(channel, USER, text, ts=ts, thread_ts=thread_ts)

    async def final_update(self, ts_of_thread: str, needle: str, timeout: float = 15.0) -> RecordedCall:
        posted = await self.progress_post(ts_of_thread)
        return await self.slack.wait_for(
            "chat.update",
            lambda c: c.ok and c.args.get("ts") == posted.response["ts"] and needle in json.dumps(c.args),
            timeout=timeout,
        )

    async def progress_post(self, ts_of_thread: str, timeout: float = 10.0) -> RecordedCall:
        return await self.slack.wait_for(
            "chat.postMessage",
            lambda c: (
                c.ok
                and c.args.get("thread_ts") == ts_of_thread
                and "Investigating" in str(c.args.get("text"))
            ),
            timeout=timeout,
        )

    async def wait_runs_finished(self, count: int, timeout: float = 15.0) -> list[Any]:
        import asyncio

        assert self.fox.runtime is not None
        deadline = time.monotonic() + timeout
        while True:
            async with self.fox.runtime.sessions() as session:
                from sqlalchemy import select

                from incidentfox.agents.runs.models import Run

                runs = list((await session.scalars(select(Run).order_by(Run.created_at))).all())
            if len([r for r in runs if r.status in ("succeeded", "failed")]) >= count:
                return runs
            if time.monotonic() > deadline:
                raise AssertionError(f"runs did not finish: {[(r.run_id, r.status) for r in runs]}")
            await asyncio.sleep(0.05)


@asynccontextmanager
async def world(
    tmp_path: Path,
    *,
    scenario: str = "crashloop",
    database_url: str | None = None,
    openai: OpenAIEmulator | None = None,
    anthropic: AnthropicEmulator | None = None,
    socket_mode: bool = False,
    team_config: dict[str, Any] | None = None,
    role: Role = "all",
    claim_workspace: bool = True,
    redis_url: str | None = None,
    settings: dict[str, Any] | None = None,
) -> AsyncIterator[World]:
    """``claim_workspace``: acme owns the emulator's Slack workspace, as an org must before it can
    claim channels there. Without it, the default team claims no channel. ``anthropic``: the SRE
    agent is on, its model proxy forwarding to that emulator."""
    async with SlackEmulator() as slack, KubernetesEmulator(scenario) as k8s:
        overrides: dict[str, Any] = {
            "slack_bot_token": slack.bot_token,
            "slack_signing_secret": SIGNING_SECRET,
            "slack_api_url": slack.api_url,
            "port": 0,
        }
        if socket_mode:
            overrides["slack_app_token"] = slack.app_token
        if openai is not None:
            overrides.update(
                openai_api_key=openai.api_key,
                openai_base_url=openai.base_url,
                incidentfox_model="emulator-model",
            )
        if anthropic is not None:
            overrides.update(anthropic_api_key=anthropic.api_key, anthropic_base_url=anthropic.base_url)
        if redis_url is not None:
            overrides.update(redis_url=redis_url, redis_namespace=f"ifx-test-{time.monotonic_ns()}")
        overrides.update(settings or {})
        fox = IncidentFox(
            make_settings(database_url or f"sqlite+aiosqlite:///{tmp_path}/fox.db", tmp_path, **overrides),
            role=role,
            update_interval=0.2,
        )
        await fox.start()
        the_world: World | None = None
        try:
            assert fox.runtime is not None
            config = fox.runtime.config
            async with config.sessions.begin() as session:
                await config.create_org(session, org_id="acme", name="Acme", actor="test")
            await config.create_node(
                ADMIN, "acme", {"node_id": "checkout", "parent_id": "acme", "kind": "team"}
            )
            if claim_workspace:
                ownership = {"slack": {"workspace_ids": [slack.team_id]}}
                await config.write_config(ADMIN, "acme", "acme", ownership, operation="put")
            document: dict[str, Any] = (
                team_config
                if team_config is not None
                else {
                    "integrations": {
                        "kubernetes": {"api_url": k8s.api_url, "token": k8s.token, "namespace": "prod"}
                    },
                }
            )
            if team_config is None and claim_workspace:
                document["routing"] = {"slack_channel_ids": [CHANNEL]}
            await config.write_config(ADMIN, "acme", "checkout", document, operation="put")
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
                the_world = World(fox=fox, slack=slack, k8s=k8s, http=http)
                yield the_world
        finally:
            await (the_world.fox if the_world else fox).stop()
            if redis_url is not None:
                await forget_namespace(redis_url, fox.settings.redis_namespace)
