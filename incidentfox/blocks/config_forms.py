"""The input blocks of a team's config, shared by the setup modal and the App Home's Edit modals.

Each section renders the inputs for one part of a team's own config and parses a submission of them
into a merge patch (RFC 7396) plus field errors keyed by ``block_id`` (for ``response_action:
errors``). Secrets are never prefilled: a secret input is empty, its placeholder says whether one is
set, and leaving it empty keeps the stored secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from slack_sdk.models.blocks import (
    CheckboxesElement,
    ConversationFilter,
    ConversationMultiSelectElement,
    ConversationSelectElement,
    InputBlock,
    NumberInputElement,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    UserMultiSelectElement,
)

from incidentfox.blocks.components import Block

SECTIONS = ("kubernetes", "github", "pagerduty", "model", "routing", "members")
"""The parts of a team's config a Slack form can edit."""

VALUE = "value"
CHANNELS_ONLY = ConversationFilter(include=["public", "private"], exclude_bot_users=True)
"""The ``action_id`` of every input element in these forms (block ids are unique per field)."""

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_REPO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
_PD_SERVICE = re.compile(r"P[A-Z0-9]{5,31}|[A-Z0-9]{2,32}")
_USERGROUP = re.compile(r"S[A-Z0-9]{2,30}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")
_TIMEOUT_MINUTES_MAX = 24 * 60


@dataclass(frozen=True, slots=True)
class Field:
    """One input: where it lives in the config and how it is shown and checked."""

    block_id: str
    path: tuple[str, ...]
    label: str
    hint: str = ""
    placeholder: str = ""
    secret: bool = False
    admin_only: bool = False
    kind: str = "text"
    """``text``, ``multiline``, ``url``, ``list`` (one per line or comma-separated), ``channel``,
    ``channels``, ``users``, ``checkbox`` or ``minutes``."""
    check: Callable[[str], str | None] | None = None


def _url(value: str) -> str | None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
        return "Enter a full http(s) URL, e.g. https://k8s.example.com:6443"
    return None


def _namespace(value: str) -> str | None:
    if not _NAMESPACE.fullmatch(value):
        return "A namespace is lowercase letters, digits and dashes (at most 63), e.g. prod"
    return None


def _repo(value: str) -> str | None:
    return (
        None if _REPO.fullmatch(value) else f"`{value}` is not a repo; write owner/name, e.g. acme/checkout"
    )


def _pd_service(value: str) -> str | None:
    if _PD_SERVICE.fullmatch(value):
        return None
    return f"`{value}` is not a PagerDuty service id; it looks like PABC123 (Services → the id in the URL)"


def _email(value: str) -> str | None:
    return None if _EMAIL.fullmatch(value) else "Enter an email address, like sre-bot@example.com."


def _usergroup(value: str) -> str | None:
    return None if _USERGROUP.fullmatch(value) else "A user group id starts with S, e.g. S0123ABCD"


def _model_provider(value: str) -> str | None:
    if value.lower() in ("openai", "openai_compatible", "anthropic"):
        return None
    return "Write openai (also for OpenAI-compatible servers) or anthropic."


def _model_name(value: str) -> str | None:
    return None if _MODEL_NAME.fullmatch(value) else "A model name has no spaces, e.g. gpt-4.1"


_FIELDS: dict[str, tuple[Field, ...]] = {
    "kubernetes": (
        Field(
            "k8s_api_url",
            ("integrations", "kubernetes", "api_url"),
            "Kubernetes API URL",
            placeholder="https://k8s.example.com:6443",
            kind="url",
            check=_url,
        ),
        Field(
            "k8s_token",
            ("integrations", "kubernetes", "token"),
            "Kubernetes service-account token",
            hint="A read-only token is enough to investigate; write actions always wait for Approve.",
            secret=True,
        ),
        Field(
            "k8s_namespace",
            ("integrations", "kubernetes", "namespace"),
            "Default namespace",
            placeholder="prod",
            check=_namespace,
        ),
        Field(
            "k8s_kubeconfig_content",
            ("integrations", "kubernetes", "kubeconfig_content"),
            "Kubeconfig contents (org admins)",
            hint="Instead of URL and token: paste the whole kubeconfig file. It is stored encrypted.",
            kind="multiline",
            admin_only=True,
            secret=True,
        ),
    ),
    "github": (
        Field(
            "github_token",
            ("integrations", "github", "token"),
            "GitHub token",
            hint="A fine-grained token with read access to the repos this team claims.",
            secret=True,
        ),
        Field(
            "github_webhook_secret",
            ("integrations", "github", "webhook_secret"),
            "GitHub webhook secret",
            hint="The secret of the repo's webhook to /webhooks/github.",
            secret=True,
        ),
        Field(
            "github_channel",
            ("integrations", "github", "channel_id"),
            "Channel for CI failures",
            hint="Leave empty for the team's first channel.",
            kind="channel",
        ),
    ),
    "pagerduty": (
        Field(
            "pagerduty_api_key",
            ("integrations", "pagerduty", "api_key"),
            "PagerDuty API key",
            hint="A read-only REST API key is enough; notes on incidents need a full-access key.",
            secret=True,
        ),
        Field(
            "pagerduty_from_email",
            ("integrations", "pagerduty", "from_email"),
            "Notes are written as",
            placeholder="sre-bot@example.com",
            hint="The email of a PagerDuty user; PagerDuty needs it for the RCA note on an incident.",
            check=_email,
        ),
        Field(
            "pagerduty_webhook_secret",
            ("integrations", "pagerduty", "webhook_secret"),
            "PagerDuty webhook signing secret",
            hint="From the V3 webhook subscription to /webhooks/pagerduty.",
            secret=True,
        ),
        Field(
            "pagerduty_channel",
            ("integrations", "pagerduty", "channel_id"),
            "Channel for incidents",
            hint="Where a page opens its thread. Leave empty for the team's first channel.",
            kind="channel",
        ),
    ),
    "model": (
        Field(
            "model_name",
            ("model", "name"),
            "Model",
            placeholder="gpt-4.1",
            hint="Leave empty to inherit the org's or the installation's model.",
            check=_model_name,
        ),
        Field(
            "model_provider",
            ("model", "provider"),
            "Model provider",
            placeholder="openai",
            hint="openai (or any OpenAI-compatible server: vLLM, Ollama, a LiteLLM proxy) or anthropic.",
            check=_model_provider,
        ),
        Field(
            "model_base_url",
            ("model", "base_url"),
            "Model base URL",
            placeholder="https://api.openai.com/v1",
            hint="Any OpenAI-compatible endpoint, or an Anthropic-compatible one for provider anthropic.",
            kind="url",
            check=_url,
        ),
        Field("model_api_key", ("model", "api_key"), "Model API key", secret=True),
    ),
    "routing": (
        Field(
            "routing_channels",
            ("routing", "slack_channel_ids"),
            "Slack channels this team answers in",
            kind="channels",
        ),
        Field(
            "routing_repos",
            ("routing", "github_repos"),
            "GitHub repos this team owns",
            placeholder="acme/checkout, acme/payments",
            hint="One per line or comma-separated; their CI failures come to this team.",
            kind="list",
            check=_repo,
        ),
        Field(
            "routing_services",
            ("routing", "pagerduty_service_ids"),
            "PagerDuty services this team owns",
            placeholder="PABC123",
            hint="Their incidents open an investigation in this team's channel.",
            kind="list",
            check=_pd_service,
        ),
    ),
    "members": (
        Field("member_users", ("slack", "member_user_ids"), "Team members", kind="users"),
        Field(
            "member_usergroup",
            ("slack", "member_usergroup_id"),
            "Or a user group of members",
            placeholder="S0123ABCD",
            check=_usergroup,
        ),
        Field(
            "approver_users",
            ("approvals", "approver_user_ids"),
            "Who may approve write actions",
            hint="Org admins may always approve.",
            kind="users",
        ),
        Field(
            "approver_usergroup",
            ("approvals", "approver_usergroup_id"),
            "Or a user group of approvers",
            placeholder="S0123ABCD",
            check=_usergroup,
        ),
        Field(
            "approval_timeout",
            ("approvals", "timeout_s"),
            "Approval timeout (minutes)",
            hint="An action not approved in time is not run; the investigation goes on without it.",
            kind="minutes",
        ),
        Field(
            "self_approval",
            ("approvals", "allow_self_approval"),
            "Self-approval",
            kind="checkbox",
        ),
    ),
}


def fields_of(section: str) -> tuple[Field, ...]:
    if section not in _FIELDS:
        raise ValueError(f"unknown config form section {section!r}")
    return _FIELDS[section]


def lookup(config: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = config
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


# -- rendering -----------------------------------------------------------------------------------------


def section_blocks(section: str, current: Mapping[str, Any], *, org_admin: bool) -> list[Block]:
    """The input blocks of ``section``, prefilled from ``current`` (a team's own config, redacted)."""
    return [
        _input(field, lookup(current, field.path))
        for field in fields_of(section)
        if org_admin or not field.admin_only
    ]


def _input(field: Field, value: Any) -> Block:
    label = PlainTextObject(text=field.label)
    hint = PlainTextObject(text=field.hint) if field.hint else None
    element: Any
    if field.kind == "channels":
        element = ConversationMultiSelectElement(
            action_id=VALUE,
            initial_conversations=_strings(value) or None,
            filter=CHANNELS_ONLY,
        )
    elif field.kind == "channel":
        element = ConversationSelectElement(
            action_id=VALUE,
            initial_conversation=value if isinstance(value, str) and value else None,
            filter=CHANNELS_ONLY,
        )
    elif field.kind == "users":
        element = UserMultiSelectElement(action_id=VALUE, initial_users=_strings(value) or None)
    elif field.kind == "checkbox":
        option = Option(value="allow", text=PlainTextObject(text="The person who asked may approve"))
        element = CheckboxesElement(
            action_id=VALUE, options=[option], initial_options=[option] if value is True else None
        )
    elif field.kind == "minutes":
        minutes = int(value) // 60 if isinstance(value, int | float) and value > 0 else None
        element = NumberInputElement(
            action_id=VALUE,
            is_decimal_allowed=False,
            min_value="1",
            max_value=str(_TIMEOUT_MINUTES_MAX),
            initial_value=str(max(minutes, 1)) if minutes is not None else None,
            placeholder=PlainTextObject(text="15"),
        )
    else:
        element = _text_element(field, value)
    return InputBlock(
        block_id=field.block_id, label=label, element=element, hint=hint, optional=True
    ).to_dict()


def _text_element(field: Field, value: Any) -> PlainTextInputElement:
    if field.secret:
        placeholder = "Set. Leave empty to keep it." if value else "Not set"
        return PlainTextInputElement(
            action_id=VALUE,
            placeholder=PlainTextObject(text=placeholder),
            multiline=field.kind == "multiline" or None,
        )
    initial = (
        ", ".join(_strings(value)) if field.kind == "list" else (value if isinstance(value, str) else None)
    )
    return PlainTextInputElement(
        action_id=VALUE,
        initial_value=initial or None,
        placeholder=PlainTextObject(text=field.placeholder) if field.placeholder else None,
        max_length=3000,
    )


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value if isinstance(v, str)] if isinstance(value, list) else []


# -- errors --------------------------------------------------------------------------------------------

CLAIMED = "Already claimed by another team: {items}. An org admin can move it to this team."
_CLAIM_BLOCKS = {
    "Slack channel": "routing_channels",
    "GitHub repo": "routing_repos",
    "PagerDuty service": "routing_services",
}


def claim_conflict_errors(message: str, *, fallback: str, limit: int = 300) -> dict[str, str]:
    """Field errors for a claim conflict: each identifier another team holds on the input that claims
    it. The config service's message names only identifiers (``already claimed by another team:
    Slack channel C1, GitHub repo a/b``), never the holder, and neither does this."""
    _, _, listed = message.partition(": ")
    by_block: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in listed.split(","))):
        for label, block in _CLAIM_BLOCKS.items():
            if item.startswith(label + " "):
                by_block.setdefault(block, []).append(item.removeprefix(label + " "))
    if not by_block:
        return {fallback: message[:limit]}
    return {block: CLAIMED.format(items=", ".join(items))[:limit] for block, items in by_block.items()}


# -- parsing -------------------------------------------------------------------------------------------


def submitted(values: Mapping[str, Any], block_id: str) -> Mapping[str, Any]:
    """The state of one input (``state.values[block_id][VALUE]``), ``{}`` when absent."""
    block = values.get(block_id)
    state = block.get(VALUE) if isinstance(block, Mapping) else None
    return state if isinstance(state, Mapping) else {}


def parse_section(
    section: str, values: Mapping[str, Any], current: Mapping[str, Any], *, org_admin: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """A merge patch for the team's own config from a submission, and field errors by block id.

    An emptied field deletes the team's own value (``null``), so the inherited one applies again; an
    empty secret keeps the stored secret. Fields for org admins are ignored for anyone else.
    """
    patch: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in fields_of(section):
        if field.admin_only and not org_admin:
            continue
        state = submitted(values, field.block_id)
        try:
            value = _parse_field(field, state)
        except ValueError as exc:
            errors[field.block_id] = str(exc)
            continue
        if field.secret and value is None:
            continue
        if value in (None, [], False) and lookup(current, field.path) is None:
            continue
        _set(patch, field.path, value)
    return patch, errors


def _parse_field(field: Field, state: Mapping[str, Any]) -> Any:
    if field.kind == "channels":
        return _strings(state.get("selected_conversations"))
    if field.kind == "channel":
        return state.get("selected_conversation") or None
    if field.kind == "users":
        return _strings(state.get("selected_users"))
    if field.kind == "checkbox":
        return bool(state.get("selected_options"))
    raw = str(state.get("value") or "").strip()
    if field.kind == "minutes":
        return _minutes(raw)
    if field.kind == "list":
        items = [item for item in re.split(r"[\s,]+", raw) if item]
        problems = [problem for problem in map(field.check or (lambda _: None), items) if problem]
        if problems:
            raise ValueError(problems[0])
        return list(dict.fromkeys(items))
    if not raw:
        return None
    problem = field.check(raw) if field.check else None
    if problem:
        raise ValueError(problem)
    return raw


def _minutes(raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or not 1 <= int(raw) <= _TIMEOUT_MINUTES_MAX:
        raise ValueError(f"Give a whole number of minutes from 1 to {_TIMEOUT_MINUTES_MAX}")
    return int(raw) * 60


def _set(patch: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = patch
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
