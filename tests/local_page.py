"""IncidentFox on its embedded default (no Slack credentials), and a client that uses its page's API
(``/ui/api``) and event stream as the browser does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from incidentfox.bot.assembly import IncidentFox
from incidentfox.config.permissions import Principal
from incidentfox.emulators.kubernetes import KubernetesEmulator
from incidentfox.web.embedded import GENERAL_CHANNEL
from tests.conftest import make_settings

ADMIN = Principal(kind="admin")
GENERAL = GENERAL_CHANNEL[0]


@dataclass
class EventStream:
    """The page's Server-Sent Events, read as they arrive."""

    response: aiohttp.ClientResponse
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def next(
        self, name: str, predicate: Callable[[dict[str, Any]], bool] = lambda _: True, timeout: float = 20.0
    ) -> dict[str, Any]:
        """The first event ``name`` (already seen or arriving within ``timeout``) matching ``predicate``."""
        for seen_name, data in self.seen:
            if seen_name == name and predicate(data):
                return data
        async with asyncio.timeout(timeout):
            while True:
                seen_name, data = await self._read_one()
                if seen_name == name and predicate(data):
                    return data

    async def _read_one(self) -> tuple[str, dict[str, Any]]:
        name, data = "", ""
        while True:
            line = (await self.response.content.readline()).decode()
            if not line:
                raise ConnectionError("the event stream ended")
            line = line.rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
            elif line == "" and name:
                event = (name, json.loads(data))
                self.seen.append(event)
                return event


@dataclass
class LocalPage:
    fox: IncidentFox
    http: aiohttp.ClientSession
    token: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.fox.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.http.get(self.base + path, headers=self.headers) as response:
            return response.status, await _body(response)

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        raw = body if isinstance(body, str) else json.dumps(body)
        async with self.http.post(self.base + path, data=raw, headers=self.headers) as response:
            return response.status, await _body(response)

    @asynccontextmanager
    async def events(self) -> AsyncIterator[EventStream]:
        async with self.http.get(self.base + "/ui/api/events", headers=self.headers) as response:
            assert response.status == 200, await response.text()
            yield EventStream(response)


async def _body(response: aiohttp.ClientResponse) -> Any:
    text = await response.text()
    try:
        return json.loads(text)
    except ValueError:
        return text


@asynccontextmanager
async def local_page(
    tmp_path: Path, *, host: str = "127.0.0.1", team_in_general: bool = True, **overrides: Any
) -> AsyncIterator[LocalPage]:
    """IncidentFox with no Slack credentials and the demo off; optionally a team (on a crash-looping
    cluster) that claims ``#general`` of the local workspace."""
    async with KubernetesEmulator("crashloop") as k8s:
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path}/fox.db",
            tmp_path,
            **{
                "local_workspace": True,
                "incidentfox_demo": False,
                "admin_token": None,
                "host": host,
                "port": 0,
                **overrides,
            },
        )
        fox = IncidentFox(settings, update_interval=0.2)
        await fox.start()
        try:
            if team_in_general:
                await _team_claiming_general(fox, k8s)
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
                yield LocalPage(fox=fox, http=http)
        finally:
            await fox.stop()


async def _team_claiming_general(fox: IncidentFox, k8s: KubernetesEmulator) -> None:
    assert fox.runtime is not None and fox.local is not None
    config = fox.runtime.config
    async with config.sessions.begin() as session:
        await config.create_org(session, org_id="acme", name="Acme", actor="test")
    ownership = {"slack": {"workspace_ids": [fox.local.slack.team_id]}}
    await config.write_config(ADMIN, "acme", "acme", ownership, operation="put")
    await config.create_node(ADMIN, "acme", {"node_id": "checkout", "parent_id": "acme", "kind": "team"})
    document = {
        "routing": {"slack_channel_ids": [GENERAL]},
        "integrations": {"kubernetes": {"api_url": k8s.api_url, "token": k8s.token, "namespace": "prod"}},
    }
    await config.write_config(ADMIN, "acme", "checkout", document, operation="put")
