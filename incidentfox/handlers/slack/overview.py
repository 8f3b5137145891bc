"""A team at a glance, gathered for the App Home and ``/incidentfox config``.

For one team: its effective config (secrets redacted) with the node each value comes from, the
identifiers it claims, the health of its integrations and its last runs with links to their threads.
The parts are read concurrently. A team whose config cannot be loaded (a secret that no longer
decrypts, a node gone mid-read) becomes an overview with ``problem`` set, so one broken team never
takes a whole Home tab down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from incidentfox.agents.mcp.health import McpHealth
from incidentfox.agents.runs.service import RunStore, RunSummary
from incidentfox.agents.toolsets.health import HealthLine, IntegrationHealth
from incidentfox.blocks.command_replies import RunLine
from incidentfox.blocks.components import Block
from incidentfox.blocks.config_summary import (
    ConfigLine,
    NodeKind,
    TeamClaims,
    TeamOverview,
    config_summary_text,
    render_config_summary,
)
from incidentfox.blocks.schedules import ScheduleLine
from incidentfox.config.merge import effective_config, value_sources
from incidentfox.config.permissions import Principal
from incidentfox.config.service import ConfigService
from incidentfox.errors import UserFacingError
from incidentfox.schedules.board import ScheduleBoard
from incidentfox.schedules.service import SlotStore

log = logging.getLogger(__name__)
_ADMIN = Principal(kind="admin")
RECENT_RUNS = 10
_PERMALINKS_CACHED = 10_000


def broken_config_text(org_id: str, team_id: str, detail: str = "") -> str:
    """What a team whose config cannot be loaded shows instead of its overview."""
    why = f" ({detail})" if detail else ""
    return (
        f"Its config could not be loaded{why}, so it isn't shown here; investigations for this team may "
        "fail too. An org admin can read it with the config API "
        f"(`GET /api/v1/orgs/{org_id}/nodes/{team_id}/effective-config`)."
    )


def config_lines(
    chain: Sequence[tuple[str, NodeKind, Mapping[str, Any]]], effective: Mapping[str, Any]
) -> tuple[ConfigLine, ...]:
    """Every leaf of ``effective`` with its source, sorted by path; empty objects (left behind when a
    team deletes every inherited key of one) say nothing and are skipped. ``chain`` is ``(node_id,
    kind, own document)`` root first; documents are redacted, so the leaves are too."""
    kinds = {node_id: kind for node_id, kind, _ in chain}
    sources = value_sources((node_id, dict(document)) for node_id, _, document in chain)
    lines = []
    for path, source in sorted(sources.items()):
        value: Any = effective
        for part in path:
            value = value[part]
        if value == {}:
            continue
        lines.append(ConfigLine(path=path, value=value, source=source, source_kind=kinds[source]))
    return tuple(lines)


def claims_of(own: Mapping[str, Any]) -> TeamClaims:
    """The identifiers a team's own config claims (claims are never inherited)."""
    routing = own.get("routing")
    routing = routing if isinstance(routing, Mapping) else {}

    def ids(key: str) -> tuple[str, ...]:
        values = routing.get(key)
        return tuple(str(v) for v in values if isinstance(v, str)) if isinstance(values, list) else ()

    return TeamClaims(
        slack_channel_ids=ids("slack_channel_ids"),
        github_repos=ids("github_repos"),
        pagerduty_service_ids=ids("pagerduty_service_ids"),
    )


def _kind(node: Mapping[str, Any] | None) -> NodeKind:
    kind = (node or {}).get("kind")
    return kind if kind in ("org", "unit", "team") else "unit"


class TeamOverviews:
    """Gathers ``TeamOverview`` values. ``client`` asks Slack for run permalinks (cached: they never
    change)."""

    def __init__(
        self,
        *,
        config: ConfigService,
        runs: RunStore,
        health: IntegrationHealth,
        client: AsyncWebClient,
        recent_runs: int = RECENT_RUNS,
        mcp_health: McpHealth | None = None,
        schedules: ScheduleBoard | None = None,
    ) -> None:
        self._config = config
        self._schedules = schedules or ScheduleBoard(config, SlotStore(config.sessions))
        self._runs = runs
        self._health = health
        self._mcp_health = mcp_health or McpHealth()
        self._client = client
        self._recent_runs = recent_runs
        self._permalinks: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def nodes(self, org_id: str) -> dict[str, dict[str, Any]]:
        """The org's nodes by id (``kind``, ``name``, ``path``)."""
        return {node["node_id"]: node for node in await self._config.list_nodes(_ADMIN, org_id)}

    async def overview(
        self, org_id: str, team_id: str, *, nodes: Mapping[str, Mapping[str, Any]] | None = None
    ) -> TeamOverview:
        """One team's overview; pass ``nodes`` (from ``nodes``) when gathering several teams."""
        tree = nodes if nodes is not None else await self.nodes(org_id)
        node = tree.get(team_id)
        if node is None or node.get("kind") != "team":
            return TeamOverview(org_id, team_id, team_id, problem=f"Team {team_id} no longer exists.")
        name, path = str(node.get("name") or team_id), tuple(node.get("path") or (org_id, team_id))
        config_part, runs_part, schedules = await asyncio.gather(
            self._config_part(org_id, team_id, path, tree),
            self._runs_part(org_id, team_id),
            self._schedules_part(org_id, team_id),
        )
        if isinstance(config_part, str):
            return TeamOverview(org_id, team_id, name, path=path, problem=config_part)
        claims, lines, health = config_part
        recent, in_progress = runs_part
        return TeamOverview(
            org_id=org_id,
            team_id=team_id,
            name=name,
            path=path,
            claims=claims,
            config=lines,
            health=tuple(health),
            recent_runs=recent,
            in_progress=in_progress,
            schedules=schedules,
        )

    async def config_summary(self, org_id: str, team_id: str) -> tuple[list[Block], str]:
        """The ``/incidentfox config`` answer: blocks and fallback text (``commands.ConfigSummary``)."""
        overview = await self.overview(org_id, team_id)
        return render_config_summary(overview), config_summary_text(overview)

    # -- parts ---------------------------------------------------------------------------------------

    async def _config_part(
        self, org_id: str, team_id: str, path: tuple[str, ...], tree: Mapping[str, Mapping[str, Any]]
    ) -> tuple[TeamClaims, tuple[ConfigLine, ...], list[HealthLine]] | str:
        """Claims, config lines and health, or the reason they cannot be shown."""
        try:
            documents = await asyncio.gather(
                *(self._config.get_config(_ADMIN, org_id, node_id) for node_id in path)
            )
            opened = await self._config.effective_config_shared(org_id, team_id)
            integrations, servers = await asyncio.gather(
                self._health.check(org_id, team_id, opened), self._mcp_health.check(org_id, team_id, opened)
            )
            health = [*integrations, *servers]
        except Exception as exc:
            log.warning(
                "team config could not be loaded org=%s team=%s error=%s", org_id, team_id, type(exc).__name__
            )
            return broken_config_text(
                org_id, team_id, exc.message if isinstance(exc, UserFacingError) else ""
            )
        chain = [
            (node_id, _kind(tree.get(node_id)), document["config"])
            for node_id, document in zip(path, documents, strict=True)
        ]
        effective = effective_config(document for _, _, document in chain)
        return claims_of(chain[-1][2]), config_lines(chain, effective), health

    async def _runs_part(self, org_id: str, team_id: str) -> tuple[tuple[RunLine, ...], int]:
        recent, running = await asyncio.gather(
            self._runs.recent_for_team(org_id, team_id, limit=self._recent_runs),
            self._runs.in_progress_for_team(org_id, team_id),
        )
        links = await asyncio.gather(*(self._permalink(run) for run in recent))
        lines = tuple(
            RunLine(
                question=run.question,
                status=run.status,
                created_at=run.created_at,
                duration_s=run.duration_s,
                permalink=link,
            )
            for run, link in zip(recent, links, strict=True)
        )
        return lines, len(running)

    async def _schedules_part(self, org_id: str, team_id: str) -> tuple[ScheduleLine, ...]:
        """The team's schedules with links to their last reports; none when they cannot be read."""
        try:
            entries = await self._schedules.for_team(org_id, team_id)
        except Exception as exc:
            log.warning("schedules not shown org=%s team=%s error=%s", org_id, team_id, type(exc).__name__)
            return ()
        links = await asyncio.gather(
            *(self._permalink(e.last_run) if e.last_run else _no_link() for e in entries)
        )
        return tuple(
            dataclasses.replace(entry.line, permalink=link)
            for entry, link in zip(entries, links, strict=True)
        )

    async def _permalink(self, run: RunSummary) -> str | None:
        """A link to the run's message (or its thread); ``None`` when Slack cannot give one."""
        ts = run.message_ts or run.thread_ts
        if not run.channel_id or not ts:
            return None
        key = (run.channel_id, ts)
        cached = self._permalinks.get(key)
        if cached is not None:
            self._permalinks.move_to_end(key)
            return cached
        try:
            response = await self._client.chat_getPermalink(channel=run.channel_id, message_ts=ts)
        except SlackApiError as exc:
            log.info(
                "permalink unavailable run_id=%s channel=%s error=%s",
                run.run_id,
                run.channel_id,
                exc.response.get("error"),
            )
            return None
        except Exception as exc:
            log.warning("permalink request failed run_id=%s error=%s", run.run_id, type(exc).__name__)
            return None
        link = response.get("permalink")
        if not isinstance(link, str) or not link.startswith("https://"):
            return None
        self._permalinks[key] = link
        if len(self._permalinks) > _PERMALINKS_CACHED:
            self._permalinks.popitem(last=False)
        return link


async def _no_link() -> str | None:
    return None
