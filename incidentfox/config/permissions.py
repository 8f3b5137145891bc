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
_TEAM_PROTECTED_SECTIONS = frozenset({"mcp_servers"})


def require_team_may_patch(principal: Principal, patch: Any) -> None:
    """Team tokens and Slack team members may not change where a run connects, with which credentials,
    how it checks TLS, or what it executes.

    An endpoint, a kubeconfig context, a file path or a command set in a team's own config would be used
    with the secrets the team inherits from its org (a model API key, a cluster token or kubeconfig),
    and ``verify_ssl: false`` would expose them to anyone on the path, so only an org admin may set them.
    """
    if principal.kind != "team":
        return
    who = "a team member" if principal.slack_actor else "a team token"
    for path in _changed_paths(patch):
        if path[0] in _TEAM_PROTECTED_SECTIONS or _TEAM_PROTECTED_KEY.search(path[-1]):
            raise Forbidden(
                f"{who} cannot change `{'.'.join(path)}`: endpoints, credentials, TLS checks, file paths "
                "and commands decide where the org's secrets are sent; ask an org admin"
            )


def _changed_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if not isinstance(value, dict) or not value:
        return [prefix] if prefix else []
    paths: list[tuple[str, ...]] = []
    for key, child in value.items():
        paths.extend(_changed_paths(child, (*prefix, str(key))))
    return paths
