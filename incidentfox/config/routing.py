"""Routing claims: which team owns a Slack channel, a GitHub repo or a PagerDuty service.

Claims are declared in a team's own config under ``routing`` and kept in the indexed
``routing_claims`` table, written in the same transaction as the config. ``RoutingIndex`` answers
lookups from an in-process cache over that table; the HTTP lookup endpoint and the trigger pipeline
share it.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.config.models import RoutingClaim
from incidentfox.errors import BadRequest

SLACK_CHANNEL = "slack_channel"
GITHUB_REPO = "github_repo"
PAGERDUTY_SERVICE = "pagerduty_service"
SLACK_WORKSPACE = "slack_workspace"
"""An org's claim on a Slack workspace (``slack.workspace_ids`` in the org's own config)."""

CONFIG_KEYS: dict[str, str] = {
    "pagerduty_service_ids": PAGERDUTY_SERVICE,
    "slack_channel_ids": SLACK_CHANNEL,
    "github_repos": GITHUB_REPO,
}
LOOKUP_ORDER = (PAGERDUTY_SERVICE, SLACK_CHANNEL, GITHUB_REPO)

_PATTERNS = {
    SLACK_CHANNEL: re.compile(r"[CDG][A-Z0-9]{2,30}"),
    GITHUB_REPO: re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38})/[a-z0-9._-]{1,100}"),
    PAGERDUTY_SERVICE: re.compile(r"[A-Z0-9]{2,32}"),
    SLACK_WORKSPACE: re.compile(r"[TE][A-Z0-9]{2,30}"),
}

Claim = tuple[str, str]


@dataclass(frozen=True, slots=True)
class RouteTarget:
    org_id: str
    team_node_id: str


def normalize_identifier(kind: str, raw: object) -> str:
    """Canonical form: Slack channel and PD service ids upper-case, GitHub ``owner/repo`` lower-case."""
    if not isinstance(raw, str):
        raise BadRequest(f"routing identifiers must be strings; got {raw!r}"[:200], code="invalid_routing")
    value = raw.strip()
    value = value.lower() if kind == GITHUB_REPO else value.upper()
    if _PATTERNS[kind].fullmatch(value) is None:
        examples = {SLACK_CHANNEL: "C0123ABCD", GITHUB_REPO: "acme/checkout", PAGERDUTY_SERVICE: "PABC123"}
        raise BadRequest(
            f"{raw!r} is not a valid {kind.replace('_', ' ')} id (example: {examples[kind]})"[:200],
            code="invalid_routing",
        )
    return value


def claims_in(document: dict[str, Any]) -> set[Claim]:
    """The claims a node's own config declares, validated and normalised: a team's routing claims and
    an org's Slack workspace claims."""
    return _routing_claims(document) | _workspace_claims(document)


def _workspace_claims(document: dict[str, Any]) -> set[Claim]:
    slack = document.get("slack")
    if slack is None:
        return set()
    if not isinstance(slack, dict):
        raise BadRequest("slack must be an object", code="invalid_slack")
    values = slack.get("workspace_ids")
    if values is None:
        return set()
    if not isinstance(values, list):
        raise BadRequest("slack.workspace_ids must be a list of strings", code="invalid_slack")
    return {(SLACK_WORKSPACE, normalize_identifier(SLACK_WORKSPACE, value)) for value in values}


def _routing_claims(document: dict[str, Any]) -> set[Claim]:
    routing = document.get("routing")
    if routing is None:
        return set()
    if not isinstance(routing, dict):
        raise BadRequest("routing must be an object", code="invalid_routing")
    claims: set[Claim] = set()
    for key, kind in CONFIG_KEYS.items():
        values = routing.get(key)
        if values is None:
            continue
        if not isinstance(values, list):
            raise BadRequest(f"routing.{key} must be a list of strings", code="invalid_routing")
        claims.update((kind, normalize_identifier(kind, value)) for value in values)
    return claims


class RoutingIndex:
    """Cached lookups over ``routing_claims``; misses are cached too and invalidated on any claim change."""

    def __init__(
        self, session_factory: async_sessionmaker[AsyncSession], *, max_entries: int = 200_000
    ) -> None:
        self._session_factory = session_factory
        self._cache: OrderedDict[Claim, RouteTarget | None] = OrderedDict()
        self._max_entries = max_entries
        self._generation = 0

    def invalidate(self, claims: Iterable[Claim]) -> None:
        self._generation += 1
        for claim in claims:
            self._cache.pop(claim, None)

    def invalidate_all(self) -> None:
        self._generation += 1
        self._cache.clear()

    async def lookup(
        self,
        *,
        pagerduty_service_id: str | None = None,
        slack_channel_id: str | None = None,
        github_repo: str | None = None,
    ) -> RouteTarget | None:
        """The team owning the first given identifier in the order PD service, Slack channel, GitHub repo."""
        given = {
            PAGERDUTY_SERVICE: pagerduty_service_id,
            SLACK_CHANNEL: slack_channel_id,
            GITHUB_REPO: github_repo,
        }
        for kind in LOOKUP_ORDER:
            raw = given[kind]
            if not raw:
                continue
            target = await self.lookup_one(kind, normalize_identifier(kind, raw))
            if target is not None:
                return target
        return None

    async def lookup_one(self, kind: str, identifier: str) -> RouteTarget | None:
        """Cached (hits and misses, least recently used evicted first). A read that raced a claim change
        is returned but not cached, so a stale "unrouted" can never stick."""
        key = (kind, identifier)
        hit = self._cache.get(key, False)
        if hit is not False:
            self._cache.move_to_end(key)
            return hit  # type: ignore[return-value]
        generation = self._generation
        async with self._session_factory() as session:
            row = (
                await session.execute(
                    select(RoutingClaim.org_id, RoutingClaim.team_node_id).where(
                        RoutingClaim.kind == kind, RoutingClaim.identifier == identifier
                    )
                )
            ).first()
        target = RouteTarget(row.org_id, row.team_node_id) if row else None
        if generation == self._generation:
            self._cache[key] = target
            if len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return target
