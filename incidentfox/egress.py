"""The one egress policy for URLs that come from config (Kubernetes ``api_url``, ``model.base_url``, …).

A URL typed into a team's or an org's config is where IncidentFox will send that team's credentials
and questions, so where it may point is an installation decision, made here and nowhere else:

* link-local and cloud metadata addresses (``169.254.0.0/16``, ``fe80::/10``, ``fd00:ec2::254``,
  ``metadata.google.internal``, …) are always refused;
* loopback and private ranges (RFC 1918, ``fc00::/7``, CGNAT, …) only when the installation allows
  them: ``EGRESS_ALLOW_PRIVATE`` when set, otherwise only while the installation has a single org
  (an installation run by one company may well point at its own private cluster; a shared one must
  not let one tenant reach the host's network);
* a host name is resolved and *every* address it resolves to is checked.

``check_url`` runs before a client is built. ``CheckedHTTPConnection``/``CheckedHTTPSConnection``
repeat the check at connect time and connect to the address they checked, so a DNS answer that
changes between the check and the connection (DNS rebinding) cannot slip through.

URLs the global admin set in the installation's environment (``OPENAI_BASE_URL``, ``KUBECONFIG``) are
not config and do not pass through here.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from urllib3.util import connection as urllib3_connection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALWAYS_REFUSED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "0.0.0.0/8", "::/128", "100.100.100.200/32")
)
"""Link-local (where every cloud serves instance metadata and credentials), the AWS IPv6 metadata
address, Alibaba's metadata address, and the unspecified address (which reaches the local host)."""
METADATA_HOST_NAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data"})


class EgressRefused(Exception):
    """A config URL points somewhere this installation does not send requests; the message says why."""


@dataclass(slots=True)
class EgressPolicy:
    """Where config URLs may point. ``allow_private=None`` means "only while there is a single org",
    asked of ``org_count`` (an async callable the config service provides, cached there)."""

    allow_private: bool | None = False
    org_count: Callable[[], Awaitable[int]] | None = None

    async def private_allowed(self) -> bool:
        if self.allow_private is not None:
            return self.allow_private
        if self.org_count is None:
            return False
        return await self.org_count() <= 1

    async def check_url(self, url: str, *, setting: str) -> None:
        """Raise ``EgressRefused`` unless every address ``url``'s host resolves to may be reached."""
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("http", "https") or not host:
            raise EgressRefused(f"`{setting}` must be an http(s) URL.")
        refuse_metadata_name(host, setting)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise EgressRefused(f"`{setting}` has an invalid port.") from exc
        addresses = await resolve_host(host, port)
        if not addresses:
            raise EgressRefused(f"the host in `{setting}` could not be resolved.")
        check_addresses(addresses, private_allowed=await self.private_allowed(), setting=setting)


_current = EgressPolicy()


def install_policy(policy: EgressPolicy) -> None:
    """Make ``policy`` the process's egress policy (the runtime does this once at start)."""
    global _current
    _current = policy


def current_policy() -> EgressPolicy:
    """The process's egress policy; until the runtime installs one, private addresses are refused."""
    return _current


def refuse_metadata_name(host: str, setting: str) -> None:
    if host.rstrip(".").lower() in METADATA_HOST_NAMES:
        raise EgressRefused(f"`{setting}` points at a cloud metadata service, which is never allowed.")


def is_private(address: IPAddress) -> bool:
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    target = mapped or address
    return target.is_private or target.is_loopback or target.is_reserved or target in _CGNAT


_CGNAT = ipaddress.ip_network("100.64.0.0/10")


def check_addresses(addresses: Iterable[IPAddress], *, private_allowed: bool, setting: str) -> None:
    for address in addresses:
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        target = mapped or address
        if target.is_link_local or any(target in network for network in ALWAYS_REFUSED_NETWORKS):
            raise EgressRefused(
                f"`{setting}` points at a link-local or cloud metadata address, which is never allowed."
            )
        if not private_allowed and (is_private(target) or target.is_multicast):
            raise EgressRefused(
                f"`{setting}` points at a private or loopback address, which this installation does not "
                "allow (the installation's EGRESS_ALLOW_PRIVATE setting decides)."
            )


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return _addresses(infos)


def resolve_host_sync(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return _addresses(infos)


def _addresses(infos: Iterable[tuple[object, object, object, object, tuple[object, ...]]]) -> list[IPAddress]:
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


class _CheckedConnect:
    """Connect only to an address that passes the policy, and to exactly the address checked."""

    private_allowed: bool = False
    setting: str = "URL"

    def _new_conn(self) -> socket.socket:
        conn: HTTPConnection = self  # type: ignore[assignment]
        host = conn.host
        refuse_metadata_name(host, self.setting)
        addresses = resolve_host_sync(host, conn.port or 0)
        if not addresses:
            raise NewConnectionError(conn, "host name not found")
        check_addresses(addresses, private_allowed=self.private_allowed, setting=self.setting)
        sock = urllib3_connection.create_connection(
            (str(addresses[0]), conn.port or 0),
            conn.timeout,
            source_address=conn.source_address,
            socket_options=conn.socket_options,
        )
        return sock


def checked_pool_classes(*, private_allowed: bool, setting: str) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections apply the policy at connect time (for ``PoolManager``)."""
    attrs = {"private_allowed": private_allowed, "setting": setting}
    http_conn = type("CheckedHTTPConnection", (_CheckedConnect, HTTPConnection), attrs)
    https_conn = type("CheckedHTTPSConnection", (_CheckedConnect, HTTPSConnection), attrs)
    return {
        "http": type("CheckedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("CheckedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }
