"""The team's MCP servers as config declares them: ``mcp_servers.{id}`` and ``agents.{name}.mcp_servers``.

A server is either stdio (``command``, ``args``, ``env``: a process started on the IncidentFox host) or
streamable HTTP (``url``, ``headers``). ``timeout_s`` bounds starting it and listing its tools (default
10 s); ``call_timeout_s`` bounds each tool call (default 30 s). ``enabled: false`` turns one off.

Parsing never raises: a server whose entry is wrong becomes a ``ServerProblem`` whose message names the
key to fix, and the other servers still work. Values of ``env`` and ``headers`` are treated as secrets
(``own_secrets``) whatever their names: a credential is often passed as ``VENDOR_LOGIN`` or ``X-Auth``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from incidentfox.config.secret_names import has_url_password

DEFAULT_START_TIMEOUT_S = 10.0
DEFAULT_CALL_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 600.0
STDIO_KEYS = frozenset({"command", "args", "env"})
HTTP_KEYS = frozenset({"url", "headers"})
_OTHER_KEYS = frozenset({"timeout_s", "call_timeout_s", "enabled", "description"})
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_MIN_OWN_SECRET_LEN = 6
_NUMBER = re.compile(r"[0-9.:-]+")
_PLAIN_URL = re.compile(r"(?i)^https?://\S+$")

Transport = Literal["stdio", "http"]


@dataclass(frozen=True, slots=True)
class McpServerSpec:
    """One declared MCP server, validated. ``command``/``args``/``env`` are set for stdio, ``url`` and
    ``headers`` for streamable HTTP."""

    server_id: str
    transport: Transport
    command: str = ""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float = DEFAULT_START_TIMEOUT_S
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S
    description: str = ""

    @property
    def setting(self) -> str:
        """The config key a problem with this server's endpoint is reported under."""
        return f"mcp_servers.{self.server_id}.{'url' if self.transport == 'http' else 'command'}"

    def own_secrets(self) -> list[str]:
        """The values of ``env`` and ``headers`` (and, for ``Authorization: Bearer x``, ``x`` alone),
        never shown to a model whatever their key is called. Left out: values that cannot be a secret
        and would only blank out answers (shorter than 6 characters, numbers, URLs without a password)."""
        found: list[str] = []
        for value in (*self.env.values(), *self.headers.values()):
            found.append(value)
            scheme, _, credential = value.partition(" ")
            if credential and scheme.isalpha():
                found.append(credential.strip())
        return [value for value in found if _may_be_secret(value)]


def _may_be_secret(value: str) -> bool:
    if len(value) < _MIN_OWN_SECRET_LEN or _NUMBER.fullmatch(value):
        return False
    return not (_PLAIN_URL.match(value) and not has_url_password(value))


@dataclass(frozen=True, slots=True)
class ServerProblem:
    """A declared server that cannot be used, and why in plain words naming the key."""

    server_id: str
    message: str


@dataclass(frozen=True, slots=True)
class DeclaredServers:
    """Every server of ``mcp_servers`` (``enabled: false`` ones left out) and which agents get which."""

    servers: Mapping[str, McpServerSpec]
    problems: Mapping[str, ServerProblem]
    attached: Mapping[str, tuple[str, ...]]
    """Agent name (``planner``, ``metrics``, …) → the server ids it names, in the order given."""
    unknown: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Agent name → ids it names that ``mcp_servers`` does not declare (or turns off)."""

    def for_agent(self, agent: str) -> tuple[str, ...]:
        return self.attached.get(agent, ())

    def needed(self) -> tuple[str, ...]:
        """Every declared id some agent names, once each, in a stable order."""
        return tuple(dict.fromkeys(i for ids in self.attached.values() for i in ids))


def declared_servers(config: Mapping[str, Any]) -> DeclaredServers:
    """The team's MCP servers and their attachments, from its effective config."""
    raw = config.get("mcp_servers")
    entries = raw if isinstance(raw, Mapping) else {}
    servers: dict[str, McpServerSpec] = {}
    problems: dict[str, ServerProblem] = {}
    turned_off: set[str] = set()
    for key, entry in entries.items():
        server_id = str(key)
        if isinstance(entry, Mapping) and entry.get("enabled") is False:
            turned_off.add(server_id)
            continue
        parsed = parse_server(server_id, entry)
        if isinstance(parsed, ServerProblem):
            problems[server_id] = parsed
        else:
            servers[server_id] = parsed
    attached: dict[str, tuple[str, ...]] = {}
    unknown: dict[str, tuple[str, ...]] = {}
    agents = config.get("agents")
    for name, settings in agents.items() if isinstance(agents, Mapping) else ():
        ids = settings.get("mcp_servers") if isinstance(settings, Mapping) else None
        if not isinstance(ids, list) or (isinstance(settings, Mapping) and settings.get("enabled") is False):
            continue
        names = [str(i) for i in ids if isinstance(i, str)]
        known = [i for i in names if i in servers or i in problems]
        missing = [i for i in names if i not in servers and i not in problems and i not in turned_off]
        if known:
            attached[str(name)] = tuple(dict.fromkeys(known))
        if missing:
            unknown[str(name)] = tuple(missing)
    return DeclaredServers(servers=servers, problems=problems, attached=attached, unknown=unknown)


def has_attached_servers(config: Mapping[str, Any]) -> bool:
    """Whether some agent of the team names at least one usable MCP server."""
    declared = declared_servers(config)
    return any(i in declared.servers for i in declared.needed())


def parse_server(server_id: str, entry: Any) -> McpServerSpec | ServerProblem:
    """One ``mcp_servers.{id}`` entry, or the problem with it."""
    where = f"mcp_servers.{server_id}"
    if not _ID_RE.match(server_id):
        return ServerProblem(
            server_id, f"`{where}`: a server id uses letters, digits, '-', '_' or '.' (at most 63)."
        )
    if not isinstance(entry, Mapping):
        return ServerProblem(server_id, f"`{where}` must be an object with `command` or `url`.")
    unexpected = sorted(set(map(str, entry)) - STDIO_KEYS - HTTP_KEYS - _OTHER_KEYS)
    if unexpected:
        keys = ", ".join(f"`{where}.{k}`" for k in unexpected)
        return ServerProblem(
            server_id,
            f"{keys} is not a known setting; an MCP server takes `command`, `args`, `env` (stdio) or "
            "`url`, `headers` (streamable HTTP), and `timeout_s`, `call_timeout_s`.",
        )
    try:
        timeout_s = _seconds(entry, "timeout_s", DEFAULT_START_TIMEOUT_S, where)
        call_timeout_s = _seconds(entry, "call_timeout_s", DEFAULT_CALL_TIMEOUT_S, where)
        description = _text(entry, "description", where, required=False)
        has_command, has_url = entry.get("command") is not None, entry.get("url") is not None
        if has_command and has_url:
            raise _Invalid(f"`{where}` sets both `command` and `url`; a server is either stdio or HTTP.")
        if has_command:
            if any(entry.get(k) is not None for k in HTTP_KEYS):
                raise _Invalid(f"`{where}.headers` is for HTTP servers; this one has a `command`.")
            return McpServerSpec(
                server_id,
                "stdio",
                command=_text(entry, "command", where),
                args=_strings(entry, "args", where),
                env=_string_map(entry, "env", where),
                timeout_s=timeout_s,
                call_timeout_s=call_timeout_s,
                description=description,
            )
        if has_url:
            if any(entry.get(k) is not None for k in ("args", "env")):
                raise _Invalid(f"`{where}.args` and `.env` are for stdio servers; this one has a `url`.")
            url = _text(entry, "url", where)
            if not re.match(r"(?i)^https?://[^/\s]+", url):
                raise _Invalid(f"`{where}.url` must be an http:// or https:// URL.")
            return McpServerSpec(
                server_id,
                "http",
                url=url,
                headers=_string_map(entry, "headers", where),
                timeout_s=timeout_s,
                call_timeout_s=call_timeout_s,
                description=description,
            )
        raise _Invalid(
            f"`{where}` needs `command` (a stdio server started on the IncidentFox host) or `url` "
            "(a streamable HTTP server)."
        )
    except _Invalid as exc:
        return ServerProblem(server_id, str(exc))


class _Invalid(ValueError):
    pass


def _seconds(entry: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = entry.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TIMEOUT_S:
        raise _Invalid(f"`{where}.{key}` must be a number of seconds between 0 and {MAX_TIMEOUT_S:g}.")
    return float(value)


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = entry.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _Invalid(f"`{where}.{key}` must be a non-empty string.")
    return value.strip()


def _strings(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _Invalid(f'`{where}.{key}` must be a list of strings, e.g. ["--port", "8080"].')
    return tuple(value)


def _string_map(entry: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = entry.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _Invalid(f"`{where}.{key}` must be an object of string values.")
    return dict(value)
