"""Who may do what in the config service (design §6): admin, org admin, team token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from incidentfox.errors import Forbidden

AuthKind = Literal["admin", "org_admin", "team"]
TEAM_WRITE_POLICY_KEY = ("access", "team_tokens_can_patch")
"""Set ``{"access": {"team_tokens_can_patch": true}}`` in the org's own config to let team tokens PATCH."""
SLACK_MEMBER_POLICY_KEY = ("access", "team_members_can_edit")
"""``{"access": {"team_members_can_edit": true}}`` in the org config lets team members edit from Slack."""


@dataclass(frozen=True, slots=True)
class Principal:
    kind: AuthKind
    org_id: str | None = None
    team_node_id: str | None = None
    token_id: str | None = None
    slack_actor: str | None = None
    """``slack:{T…}:{U…}`` when a person acts from Slack; history and audit record it as the actor.
    A ``team`` principal from Slack is a team member, bound by ``access.team_members_can_edit``."""

    @property
    def actor(self) -> str:
        if self.slack_actor:
            return self.slack_actor
        if self.kind == "admin":
            return "admin"
        if self.kind == "org_admin":
            return f"org_admin:{self.token_id}"
        return f"team:{self.team_node_id}:{self.token_id}"

    def whoami(self) -> dict[str, Any]:
        return {"auth_kind": self.kind, "org_id": self.org_id, "team_node_id": self.team_node_id}


def require_admin(principal: Principal) -> None:
    if principal.kind != "admin":
        raise Forbidden("this endpoint needs the global admin token")


def require_org_admin(principal: Principal, org_id: str) -> None:
    if principal.kind == "admin":
        return
    if principal.kind == "org_admin" and principal.org_id == org_id:
        return
    raise Forbidden(f"this token cannot administer org {org_id!r}")


def require_node_read(principal: Principal, org_id: str, node_id: str) -> None:
    if principal.kind == "team" and principal.org_id == org_id and principal.team_node_id == node_id:
        return
    if principal.kind == "team" and principal.org_id == org_id:
        raise Forbidden("a team token can read only its own team")
    require_org_admin(principal, org_id)


def require_node_write(
    principal: Principal, org_id: str, node_id: str, *, operation: str, org_policy: dict[str, Any]
) -> None:
    if principal.kind != "team":
        require_org_admin(principal, org_id)
        return
    if principal.org_id != org_id or principal.team_node_id != node_id:
        raise Forbidden("a team token can change only its own team")
    if operation != "patch":
        raise Forbidden("a team token can only PATCH its config; PUT needs an org admin token")
    policy = SLACK_MEMBER_POLICY_KEY if principal.slack_actor else TEAM_WRITE_POLICY_KEY
    section = org_policy.get(policy[0])
    if not (isinstance(section, dict) and section.get(policy[1]) is True):
        who = "team members" if principal.slack_actor else "team tokens"
        raise Forbidden(
            f"this org does not let {who} edit config; an org admin can allow it with "
            f'{{"access": {{"{policy[1]}": true}}}} in the org config'
        )


_TEAM_PROTECTED_KEY = re.compile(
    r"(?i)(^|[_\-.])(url|urls|endpoint|host|kubeconfig|context|verify_ssl|ca_cert|ca_data|content|"
    r"path|file|dir|command|args|env)$|insecure|skip_tls"
)
"""Keys that choose where a run connects, with which credentials, how strictly it checks TLS, or what
it executes: endpoints, kubeconfig contexts, CA certificates, ``insecure*``, file paths, commands."""
MCP_SERVERS = "mcp_servers"
MCP_STDIO_KEYS = frozenset({"command", "args", "env"})
"""A stdio MCP server's settings: a process IncidentFox starts on its own host, so org admins only."""
_MCP_ENDPOINT_KEYS = frozenset({"url", "headers"})


def require_team_may_patch(principal: Principal, patch: Any, existing: Any = None) -> None:
    """Team tokens and Slack team members may not change where a run connects, with which credentials,
    how it checks TLS, or what it executes.

    An endpoint, a kubeconfig context, a file path or a command set in a team's own config would be used
    with the secrets the team inherits from its org (a model API key, a cluster token or kubeconfig),
    and ``verify_ssl: false`` would expose them to anyone on the path, so only an org admin may set them.

    MCP servers (``mcp_servers.{id}``): a team may add a streamable-HTTP server (``url``, ``headers``) of
    its own, since it brings its own credentials in its headers. It may not repoint or re-head a server
    that exists already (``existing`` is the node's effective config before the write): its headers may
    hold credentials an org admin set, which a new ``url`` would send elsewhere. A team removes its own
    server and adds it again instead. A stdio server's ``command``, ``args`` and ``env`` run on the
    IncidentFox host: org admins only.
    """
    if principal.kind != "team":
        return
    who = "a team member" if principal.slack_actor else "a team token"
    for path in _changed_paths(patch):
        if path[0] == MCP_SERVERS:
            _require_team_may_set_mcp(who, path, existing)
        elif _TEAM_PROTECTED_KEY.search(path[-1]):
            raise Forbidden(
                f"{who} cannot change `{'.'.join(path)}`: endpoints, credentials, TLS checks, file paths "
                "and commands decide where the org's secrets are sent; ask an org admin"
            )


def _require_team_may_set_mcp(who: str, path: tuple[str, ...], existing: Any) -> None:
    if len(path) < 3:
        return
    server_id, key = path[1], path[2]
    dotted = ".".join(path)
    if key in MCP_STDIO_KEYS:
        raise Forbidden(
            f"{who} cannot set `{dotted}`: a stdio MCP server's command, args and env run on the "
            "IncidentFox host, so only an org admin may set them; a team can add a streamable-HTTP "
            f"server instead (`{MCP_SERVERS}.{server_id}.url`)"
        )
    servers = existing.get(MCP_SERVERS) if isinstance(existing, dict) else None
    if key in _MCP_ENDPOINT_KEYS and isinstance(servers, dict) and isinstance(servers.get(server_id), dict):
        raise Forbidden(
            f"{who} cannot change `{dotted}`: the MCP server {server_id} exists already and its headers may "
            "carry credentials an org admin set; remove it and add it again with its own headers, add a "
            "server under a new id, or ask an org admin"
        )


def _changed_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(value, dict) or not value:
        return [prefix] if prefix else []
    paths: list[tuple[str, ...]] = []
    for key, child in value.items():
        paths.extend(_changed_paths(child, (*prefix, str(key))))
    return paths
