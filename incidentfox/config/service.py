"""The config service: the org → unit → team tree, config documents, effective configs and claims."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import jsonpatch
from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from incidentfox.config import audit
from incidentfox.config.cache import CachedEffective, EffectiveConfigCache
from incidentfox.config.change_bus import ConfigChange, ConfigChanges, LocalConfigChanges
from incidentfox.config.file_paths import require_file_paths_allowed
from incidentfox.config.ids import validate_node_id
from incidentfox.config.installation_credentials import InstallationCredentials
from incidentfox.config.merge import effective_config, merge_patch, value_sources
from incidentfox.config.models import ConfigHistory, Node, NodeConfig, RoutingClaim
from incidentfox.config.permissions import (
    Principal,
    require_node_read,
    require_node_write,
    require_org_admin,
    require_team_may_patch,
)
from incidentfox.config.routing import SLACK_WORKSPACE, Claim, RoutingIndex, claims_in
from incidentfox.config.secrets import SecretBox
from incidentfox.config.slack_claims import SlackClaimPolicy, require_may_claim_workspaces
from incidentfox.db.base import utcnow
from incidentfox.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from incidentfox.schedules.spec import require_valid_schedules

NodeKind = Literal["org", "unit", "team"]
WriteOperation = Literal["put", "patch"]
_CLAIM_LABELS = {
    "slack_channel": "Slack channel",
    "github_repo": "GitHub repo",
    "pagerduty_service": "PagerDuty service",
    "slack_workspace": "Slack workspace",
}


class ConfigService:
    """Reads and writes of the tree and its configs. Every write is one transaction."""

    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        box: SecretBox,
        routing: RoutingIndex,
        cache: EffectiveConfigCache | None = None,
        changes: ConfigChanges | None = None,
        *,
        installation: InstallationCredentials | None = None,
        files_dir: Path | None = None,
    ) -> None:
        self.sessions = session_factory
        self.installation = installation or InstallationCredentials()
        self.files_dir = files_dir
        self._org_count: tuple[float, int] | None = None
        self._box = box
        self.routing = routing
        self.cache = cache or EffectiveConfigCache()
        self._generation = 0
        self.changes: ConfigChanges = changes or LocalConfigChanges()
        self.claim_policy: SlackClaimPolicy | None = None
        """Set when Slack is configured: channel claims need the org to own the workspace."""

    async def create_org(self, session: AsyncSession, *, org_id: object, name: object, actor: str) -> Node:
        """Create the org's root node in the caller's transaction (the caller also issues its token)."""
        org_id = validate_node_id(org_id, field="org_id")
        if await session.get(Node, (org_id, org_id)) is not None:
            raise Conflict(f"org {org_id!r} already exists")
        node = Node(
            org_id=org_id, node_id=org_id, parent_id=None, kind="org", name=_name(name, org_id), path=org_id
        )
        session.add(node)
        session.add(NodeConfig(org_id=org_id, node_id=org_id, document={}, version=0, updated_by=actor))
        audit.record(session, org_id=org_id, actor=actor, action="org.create", target=org_id, name=node.name)
        self._org_count = None
        return node

    ORG_COUNT_TTL_S = 5.0

    async def org_count(self) -> int:
        """How many orgs exist, cached for ``ORG_COUNT_TTL_S`` (the egress policy asks per connection).

        A local ``create_org`` drops the cache at once; an org created by another process is seen
        within the TTL."""
        now = time.monotonic()
        if self._org_count is not None and now - self._org_count[0] < self.ORG_COUNT_TTL_S:
            return self._org_count[1]
        async with self.sessions() as session:
            count = int(
                await session.scalar(select(func.count()).select_from(Node).where(Node.kind == "org")) or 0
            )
        self._org_count = (now, count)
        return count

    async def create_node(self, principal: Principal, org_id: str, body: dict[str, Any]) -> dict[str, Any]:
        require_org_admin(principal, org_id)
        async with self.sessions.begin() as session:
            node = await self._create_node_in(session, principal, org_id, body)
        return _node_json(node)

    async def create_team_with_config(
        self, principal: Principal, org_id: str, body: dict[str, Any], document: dict[str, Any]
    ) -> dict[str, Any]:
        """Create a team and write its first config in one transaction: a claim conflict or an invalid
        document leaves no empty team behind."""
        require_org_admin(principal, org_id)
        async with self.sessions.begin() as session:
            node = await self._create_node_in(session, principal, org_id, {**body, "kind": "team"})
            await session.flush()
            result, changed_claims = await self._write_in(
                session, principal, org_id, node.node_id, document, operation="put", if_match=None
            )
        await self._after_write(org_id, node.node_id, changed_claims)
        return result

    async def _create_node_in(
        self, session: AsyncSession, principal: Principal, org_id: str, body: dict[str, Any]
    ) -> Node:
        node_id = validate_node_id(body.get("node_id"))
        parent_id = validate_node_id(body.get("parent_id", org_id), field="parent_id")
        kind = body.get("kind")
        if kind not in ("unit", "team"):
            raise BadRequest("kind must be 'unit' or 'team'", code="invalid_kind")
        if node_id == parent_id:
            raise BadRequest("a node cannot be its own parent", code="cycle")
        await self._org_root(session, org_id)
        parent = await session.get(Node, (org_id, parent_id))
        if parent is None:
            raise BadRequest(f"parent {parent_id!r} does not exist in org {org_id!r}", code="unknown_parent")
        if parent.kind == "team":
            raise BadRequest(
                "a team cannot have children; put units and teams under the org or a unit",
                code="team_under_team",
            )
        if await session.get(Node, (org_id, node_id)) is not None:
            raise Conflict(f"node {node_id!r} already exists in org {org_id!r}")
        node = Node(
            org_id=org_id,
            node_id=node_id,
            parent_id=parent_id,
            kind=kind,
            name=_name(body.get("name"), node_id),
            path=f"{parent.path}/{node_id}",
        )
        session.add(node)
        session.add(
            NodeConfig(org_id=org_id, node_id=node_id, document={}, version=0, updated_by=principal.actor)
        )
        audit.record(
            session,
            org_id=org_id,
            actor=principal.actor,
            action="node.create",
            target=node_id,
            parent_id=parent_id,
            kind=kind,
        )
        return node

    async def move_node(
        self, principal: Principal, org_id: str, node_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Rename a node or move it under another parent; a move may not create a cycle."""
        require_org_admin(principal, org_id)
        async with self.sessions.begin() as session:
            node = await self._node(session, org_id, node_id)
            if "name" in body:
                node.name = _name(body["name"], node.name)
            if "parent_id" in body and body["parent_id"] != node.parent_id:
                if node.kind == "org":
                    raise BadRequest("the org root cannot be moved", code="cycle")
                parent_id = validate_node_id(body["parent_id"], field="parent_id")
                parent = await session.get(Node, (org_id, parent_id))
                if parent is None:
                    raise BadRequest(
                        f"parent {parent_id!r} does not exist in org {org_id!r}", code="unknown_parent"
                    )
                if parent.kind == "team":
                    raise BadRequest("a team cannot have children", code="team_under_team")
                if parent.path == node.path or parent.path.startswith(node.path + "/"):
                    raise BadRequest(
                        f"moving {node_id!r} under {parent_id!r} would create a cycle", code="cycle"
                    )
                await self._repath(session, node, parent)
            audit.record(
                session,
                org_id=org_id,
                actor=principal.actor,
                action="node.update",
                target=node_id,
                parent_id=node.parent_id,
                name=node.name,
            )
        self._invalidate(org_id, node_id)
        await self.changes.publish(ConfigChange(org_id, node_id))
        return _node_json(node)

    async def list_nodes(self, principal: Principal, org_id: str) -> list[dict[str, Any]]:
        require_org_admin(principal, org_id)
        async with self.sessions() as session:
            await self._org_root(session, org_id)
            rows = (
                await session.scalars(select(Node).where(Node.org_id == org_id).order_by(Node.path))
            ).all()
        return [_node_json(row) for row in rows]

    async def list_orgs(self, principal: Principal) -> list[dict[str, Any]]:
        """Every org for the global admin; an org admin or team token sees only its own org."""
        query = select(Node).where(Node.kind == "org", Node.org_id != audit.INSTALLATION_AUDIT_ORG)
        if principal.kind != "admin":
            query = query.where(Node.org_id == principal.org_id)
        async with self.sessions() as session:
            rows = (await session.scalars(query.order_by(Node.org_id))).all()
        return [
            {"org_id": row.org_id, "name": row.name, "created_at": row.created_at.isoformat()} for row in rows
        ]

    async def get_node(self, principal: Principal, org_id: str, node_id: str) -> dict[str, Any]:
        require_node_read(principal, org_id, node_id)
        async with self.sessions() as session:
            return _node_json(await self._node(session, org_id, node_id))

    async def get_config(self, principal: Principal, org_id: str, node_id: str) -> dict[str, Any]:
        require_node_read(principal, org_id, node_id)
        async with self.sessions() as session:
            await self._node(session, org_id, node_id)
            row = await session.get(NodeConfig, (org_id, node_id))
            assert row is not None
        return _config_json(org_id, node_id, self._box.redact(row.document), row.version)

    async def write_config(
        self,
        principal: Principal,
        org_id: str,
        node_id: str,
        body: Any,
        *,
        operation: WriteOperation,
        if_match: int | None = None,
    ) -> dict[str, Any]:
        """PUT stores ``body`` as given (nulls included); PATCH merge-patches the node's own config."""
        if not isinstance(body, dict):
            raise BadRequest("the config must be a JSON object", code="invalid_config")
        async with self.sessions.begin() as session:
            result, changed_claims = await self._write_in(
                session, principal, org_id, node_id, body, operation=operation, if_match=if_match
            )
        await self._after_write(org_id, node_id, changed_claims)
        return result

    async def create_org_for_workspace(
        self, *, org_id: str, name: str, workspace_id: str, admin_user_id: str, actor: str
    ) -> dict[str, Any]:
        """Create an org that claims a Slack workspace, with its first Slack admin, in one transaction.

        ``Conflict`` when the org id is taken or another org claimed the workspace first."""
        document = {"slack": {"workspace_ids": [workspace_id], "admin_user_ids": [admin_user_id]}}
        principal = Principal(kind="org_admin", org_id=org_id, slack_actor=actor)
        async with self.sessions.begin() as session:
            await self.create_org(session, org_id=org_id, name=name, actor=actor)
            await session.flush()
            result, changed_claims = await self._write_in(
                session, principal, org_id, org_id, document, operation="put", if_match=None
            )
        await self._after_write(org_id, org_id, changed_claims)
        return result

    async def _write_in(
        self,
        session: AsyncSession,
        principal: Principal,
        org_id: str,
        node_id: str,
        body: dict[str, Any],
        *,
        operation: WriteOperation,
        if_match: int | None,
    ) -> tuple[dict[str, Any], set[Claim]]:
        node = await self._node(session, org_id, node_id)
        org_policy: dict[str, Any] = {}
        if principal.kind == "team":
            org_policy = (await self._config_row(session, org_id, org_id, lock=False)).document
        require_node_write(principal, org_id, node_id, operation=operation, org_policy=org_policy)
        existing = await self._stored_effective(session, node) if principal.kind == "team" else None
        require_team_may_patch(principal, body, existing)
        row = await self._config_row(session, org_id, node_id, lock=True)
        if if_match is not None and if_match != row.version:
            raise PreconditionFailed(
                f"config of {node_id!r} is at version {row.version}, not {if_match}; re-read and retry"
            )
        proposed = merge_patch(row.document, body) if operation == "patch" else body
        require_file_paths_allowed(principal, proposed, row.document, self.files_dir)
        require_valid_schedules(proposed, row.document)
        document = self._box.seal(proposed, row.document)
        changed_claims = await self._sync_claims(session, principal, node, claims_in(document))
        diff = [self._redact_op(op) for op in jsonpatch.make_patch(row.document, document).patch]
        row.document = document
        row.version += 1
        row.updated_at = utcnow()
        row.updated_by = principal.actor
        session.add(
            ConfigHistory(
                org_id=org_id,
                node_id=node_id,
                version=row.version,
                actor=principal.actor,
                operation=operation,
                diff=diff,
            )
        )
        audit.record(
            session,
            org_id=org_id,
            actor=principal.actor,
            action="config.write",
            target=node_id,
            operation=operation,
            version=row.version,
            paths=[op["path"] for op in diff],
        )
        try:
            await session.flush()
        except IntegrityError as exc:
            raise Conflict(
                "one of the routing identifiers was claimed by another team just now", code="routing_conflict"
            ) from exc
        return _config_json(org_id, node_id, self._box.redact(document), row.version), changed_claims

    async def _after_write(self, org_id: str, node_id: str, changed_claims: set[Claim]) -> None:
        self._invalidate(org_id, node_id)
        self.routing.invalidate(changed_claims)
        await self.changes.publish(ConfigChange(org_id, node_id, tuple(sorted(changed_claims))))

    async def history(
        self, principal: Principal, org_id: str, node_id: str, *, limit: int = 50
    ) -> list[dict[str, Any]]:
        require_node_read(principal, org_id, node_id)
        async with self.sessions() as session:
            await self._node(session, org_id, node_id)
            rows = (
                await session.scalars(
                    select(ConfigHistory)
                    .where(ConfigHistory.org_id == org_id, ConfigHistory.node_id == node_id)
                    .order_by(ConfigHistory.version.desc())
                    .limit(limit)
                )
            ).all()
        return [
            {
                "version": r.version,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "operation": r.operation,
                "diff": r.diff,
            }
            for r in rows
        ]

    async def effective_config_view(self, principal: Principal, org_id: str, node_id: str) -> dict[str, Any]:
        """The effective config as an API reader sees it: secrets redacted, and ``sources`` naming the
        node that set each leaf.

        Always read from the database (one read for both, so they agree; it fills the cache when that
        holds no entry). The engine's cached path is untouched. A source path is the keys joined with
        ``.``: a key that itself contains a dot makes the path ambiguous (and two such paths could
        coincide); config keys rarely hold dots, and the readable form is what people type.
        """
        require_node_read(principal, org_id, node_id)
        entry, documents = await self._load_effective(org_id, node_id)
        sources = value_sources((node, documents.get(node, {})) for node in entry.chain)
        return {
            "org_id": org_id,
            "node_id": node_id,
            "chain": list(entry.chain),
            "config": self._box.redact(entry.stored),
            "sources": {".".join(path): node for path, node in sorted(sources.items())},
        }

    async def effective_config(self, org_id: str, node_id: str) -> dict[str, Any]:
        """The effective config with secrets decrypted: for the run engine only, never for display."""
        return copy.deepcopy(dict(await self.effective_config_shared(org_id, node_id)))

    async def effective_config_shared(self, org_id: str, node_id: str) -> Mapping[str, Any]:
        """The cached effective config itself, for hot read-only checks (never mutate it)."""
        entry = await self._effective(org_id, node_id)
        if entry.opened is None:
            entry.opened = self.installation.fill(org_id, self._box.open(entry.stored))
        return entry.opened

    async def _effective(self, org_id: str, node_id: str) -> CachedEffective:
        hit = self.cache.get(org_id, node_id)
        if hit is not None:
            return hit
        entry, _ = await self._load_effective(org_id, node_id)
        return entry

    async def _load_effective(
        self, org_id: str, node_id: str
    ) -> tuple[CachedEffective, dict[str, dict[str, Any]]]:
        """Read the node's chain and its own documents and merge them; cache the result unless an entry
        is cached already (it is just as current, and may hold the decrypted form the engine uses)."""
        generation = self._generation
        async with self.sessions() as session:
            node = await self._node(session, org_id, node_id)
            chain = tuple(node.path.split("/"))
            rows = (
                await session.scalars(
                    select(NodeConfig).where(NodeConfig.org_id == org_id, NodeConfig.node_id.in_(chain))
                )
            ).all()
        documents = {row.node_id: row.document for row in rows}
        entry = CachedEffective(stored=effective_config(documents.get(n, {}) for n in chain), chain=chain)
        if generation == self._generation and self.cache.get(org_id, node_id) is None:
            self.cache.put(org_id, node_id, entry)
        return entry, documents

    def apply_change(self, change: ConfigChange) -> None:
        """Drop what another process's write made stale (``node_id=None``: everything)."""
        if change.node_id is None:
            self._generation += 1
            self.cache.clear()
            self.routing.invalidate_all()
            return
        self._invalidate(change.org_id, change.node_id)
        self.routing.invalidate(change.claims)

    def _invalidate(self, org_id: str, node_id: str) -> None:
        """Drop cached configs of the node and its subtree; the generation bump stops a racing reader
        from re-caching what it read before this write committed."""
        self._generation += 1
        self.cache.invalidate(org_id, node_id)

    async def _sync_claims(
        self, session: AsyncSession, principal: Principal, node: Node, wanted: set[Claim]
    ) -> set[Claim]:
        workspaces = {claim for claim in wanted if claim[0] == SLACK_WORKSPACE}
        if workspaces and node.kind != "org":
            raise BadRequest(
                "only an org can claim Slack workspaces; move `slack.workspace_ids` to the org's config",
                code="invalid_slack",
            )
        if wanted - workspaces and node.kind != "team":
            raise BadRequest(
                "only teams can claim routing identifiers; move `routing` to a team's config",
                code="invalid_routing",
            )
        held_rows = (
            await session.execute(
                select(RoutingClaim.kind, RoutingClaim.identifier).where(
                    RoutingClaim.org_id == node.org_id, RoutingClaim.team_node_id == node.node_id
                )
            )
        ).all()
        held: set[Claim] = {(r.kind, r.identifier) for r in held_rows}
        to_add, to_remove = wanted - held, held - wanted
        require_may_claim_workspaces(principal, to_add)
        if to_add and self.claim_policy is not None:
            await self.claim_policy.check(session, node.org_id, to_add)
        if to_add:
            taken = (
                await session.execute(
                    select(RoutingClaim.kind, RoutingClaim.identifier).where(
                        tuple_(RoutingClaim.kind, RoutingClaim.identifier).in_(sorted(to_add))
                    )
                )
            ).all()
            if taken:
                names = ", ".join(f"{_CLAIM_LABELS[r.kind]} {r.identifier}" for r in taken)
                owner = "org" if node.kind == "org" else "team"
                raise Conflict(f"already claimed by another {owner}: {names}", code="routing_conflict")
        if to_remove:
            await session.execute(
                delete(RoutingClaim).where(
                    tuple_(RoutingClaim.kind, RoutingClaim.identifier).in_(sorted(to_remove))
                )
            )
        session.add_all(
            RoutingClaim(kind=k, identifier=i, org_id=node.org_id, team_node_id=node.node_id)
            for k, i in to_add
        )
        return to_add | to_remove

    def _redact_op(self, op: dict[str, Any]) -> dict[str, Any]:
        return {key: (self._box.redact(value) if key == "value" else value) for key, value in op.items()}

    async def _repath(self, session: AsyncSession, node: Node, parent: Node) -> None:
        old_prefix, new_prefix = node.path, f"{parent.path}/{node.node_id}"
        descendants: Sequence[Node] = (
            await session.scalars(
                select(Node).where(Node.org_id == node.org_id, Node.path.startswith(old_prefix + "/"))
            )
        ).all()
        for descendant in descendants:
            descendant.path = new_prefix + descendant.path[len(old_prefix) :]
        node.parent_id = parent.node_id
        node.path = new_prefix

    async def _stored_effective(self, session: AsyncSession, node: Node) -> dict[str, Any]:
        """``node``'s effective config as stored (secrets encrypted), read in the write's session."""
        chain = node.path.split("/")
        rows = (
            await session.scalars(
                select(NodeConfig).where(NodeConfig.org_id == node.org_id, NodeConfig.node_id.in_(chain))
            )
        ).all()
        documents = {row.node_id: row.document for row in rows}
        return effective_config(documents.get(n, {}) for n in chain)

    async def _org_root(self, session: AsyncSession, org_id: str) -> Node:
        root = await session.get(Node, (org_id, org_id))
        if root is None or root.kind != "org":
            raise NotFound(f"org {org_id!r} does not exist")
        return root

    async def _node(self, session: AsyncSession, org_id: str, node_id: str) -> Node:
        node = await session.get(Node, (org_id, node_id))
        if node is None:
            await self._org_root(session, org_id)
            raise NotFound(f"node {node_id!r} does not exist in org {org_id!r}")
        return node

    async def _config_row(
        self, session: AsyncSession, org_id: str, node_id: str, *, lock: bool
    ) -> NodeConfig:
        query = select(NodeConfig).where(NodeConfig.org_id == org_id, NodeConfig.node_id == node_id)
        if lock:
            query = query.with_for_update()
        row = (await session.scalars(query)).one_or_none()
        if row is None:
            raise NotFound(f"node {node_id!r} has no config row")
        return row


def _name(value: Any, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise BadRequest("name must be a non-empty string of at most 200 characters", code="invalid_name")
    return value.strip()


def _node_json(node: Node) -> dict[str, Any]:
    return {
        "org_id": node.org_id,
        "node_id": node.node_id,
        "parent_id": node.parent_id,
        "kind": node.kind,
        "name": node.name,
        "path": node.path.split("/"),
    }


def _config_json(org_id: str, node_id: str, document: dict[str, Any], version: int) -> dict[str, Any]:
    return {"org_id": org_id, "node_id": node_id, "version": version, "config": document}
