"""The settings of the warehouse toolset: the team's ``integrations.warehouse``, checked.

``url`` (required) is a SQLAlchemy URL: ``postgresql+asyncpg://reader:pw@db:5432/shop``,
``mysql+asyncmy://…`` (also a bare ``mysql://`` or ``mariadb://``), ``mysql+aiomysql://…`` or
``snowflake://user:pw@account/db/schema?warehouse=wh``. It holds a password, so the config service
stores it as a secret; here it is only ever shown through ``WarehouseSettings.display``/``mask``.
``row_limit`` (default 200) and ``timeout_s`` (default 15) are capped at 5,000 rows and 120 s;
``schemas`` are the schemas the model may list and describe. Nothing is read from the environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from incidentfox.agents.toolsets.base import lookup_dotted

Backend = Literal["postgresql", "mysql", "snowflake"]

URL_SETTING = "integrations.warehouse.url"
DEFAULT_ROW_LIMIT = 200
MAX_ROW_LIMIT = 5_000
DEFAULT_TIMEOUT_S = 15.0
MAX_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 5.0
DEADLINE_GRACE_S = 3.0
"""How much longer than the server's statement timeout the asyncio deadline waits."""
MASK = "***"

MYSQL_DRIVER = "asyncmy"
"""The driver a bare ``mysql://`` URL gets."""
_DRIVERS: dict[str, tuple[Backend, str]] = {
    "postgresql": ("postgresql", "postgresql+asyncpg"),
    "postgres": ("postgresql", "postgresql+asyncpg"),
    "postgresql+asyncpg": ("postgresql", "postgresql+asyncpg"),
    "mysql": ("mysql", f"mysql+{MYSQL_DRIVER}"),
    "mariadb": ("mysql", f"mysql+{MYSQL_DRIVER}"),
    "mysql+asyncmy": ("mysql", "mysql+asyncmy"),
    "mysql+aiomysql": ("mysql", "mysql+aiomysql"),
    "mariadb+asyncmy": ("mysql", "mysql+asyncmy"),
    "mariadb+aiomysql": ("mysql", "mysql+aiomysql"),
    "snowflake": ("snowflake", "snowflake"),
}
_DRIVER_PACKAGES = {
    "postgresql+asyncpg": "asyncpg",
    "mysql+asyncmy": "asyncmy",
    "mysql+aiomysql": "aiomysql",
    "snowflake": "snowflake-sqlalchemy",
}
DEFAULT_PORTS: dict[Backend, int] = {"postgresql": 5432, "mysql": 3306, "snowflake": 443}
_MYSQL_QUERY_KEPT_OUT = ("init_command", "client_flag", "local_infile", "autocommit")
SUPPORTED_URLS = "postgresql+asyncpg://, mysql+asyncmy://, mysql+aiomysql:// or snowflake://"


class WarehouseNotConfigured(Exception):
    """No usable warehouse configuration; the message says what to set, and holds no password."""


class WarehouseUnreachable(Exception):
    """The warehouse's host could not be found; the message says which."""


class WarehouseFailure(Exception):
    """A call to the warehouse failed. The message is one plain sentence without the password; the
    driver's exception is the ``__cause__``."""


@dataclass(frozen=True, slots=True)
class WarehouseSettings:
    """The team's ``integrations.warehouse`` once checked. ``url`` holds the password: show
    ``display`` instead, and pass any text that may echo the URL through ``mask``."""

    url: URL
    backend: Backend
    row_limit: int = DEFAULT_ROW_LIMIT
    timeout_s: float = DEFAULT_TIMEOUT_S
    schemas: tuple[str, ...] = ()

    @property
    def display(self) -> str:
        return self.url.render_as_string(hide_password=True)

    @property
    def where(self) -> str:
        """``host:port/database``, for sentences about the warehouse."""
        host = self.url.host or "?"
        port = f":{self.url.port}" if self.url.port else ""
        return f"{host}{port}/{self.url.database or ''}".rstrip("/")

    def mask(self, text: str) -> str:
        password = self.url.password
        if password:
            text = text.replace(str(password), MASK)
        return _URL_PASSWORD.sub(rf"\1{MASK}@", text)


_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s\"']+:)([^@/\s\"']+)@")


def _number(settings: Mapping[str, Any], key: str, default: float, maximum: float) -> float:
    raw = settings.get(key, default)
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise WarehouseNotConfigured(f"integrations.warehouse.{key} must be a positive number.")
    return min(float(raw), maximum)


def warehouse_settings(config: Mapping[str, Any]) -> WarehouseSettings:
    """The checked settings; ``WarehouseNotConfigured`` in plain words (never with the password)."""
    section = lookup_dotted(config, "integrations.warehouse")
    settings: Mapping[str, Any] = section if isinstance(section, Mapping) else {}
    if settings.get("enabled") is False:
        raise WarehouseNotConfigured("The warehouse integration is turned off (`enabled: false`).")
    raw_url = settings.get("url")
    if not raw_url or not isinstance(raw_url, str):
        raise WarehouseNotConfigured(
            f"No warehouse is configured for this team: set {URL_SETTING} to a SQLAlchemy URL "
            f"({SUPPORTED_URLS})."
        )
    try:
        url = make_url(raw_url.strip())
    except ArgumentError:
        raise WarehouseNotConfigured(
            f"{URL_SETTING} is not a URL IncidentFox can read; expected {SUPPORTED_URLS}."
        ) from None
    known = _DRIVERS.get(url.drivername.lower())
    if known is None:
        raise WarehouseNotConfigured(
            f"{URL_SETTING} uses {url.drivername}://, which the warehouse toolset does not support; "
            f"use {SUPPORTED_URLS}."
        )
    backend, drivername = known
    if not url.host:
        raise WarehouseNotConfigured(f"{URL_SETTING} has no host.")
    schemas = settings.get("schemas") or ()
    if isinstance(schemas, str) or not all(isinstance(s, str) for s in schemas):
        raise WarehouseNotConfigured("integrations.warehouse.schemas must be a list of schema names.")
    if backend == "mysql":
        # The session's own guarantees (read-only from the first command, one statement per call)
        # are not up to the URL.
        url = url.difference_update_query(_MYSQL_QUERY_KEPT_OUT)
    return WarehouseSettings(
        url=url.set(drivername=drivername),
        backend=backend,
        row_limit=int(_number(settings, "row_limit", DEFAULT_ROW_LIMIT, MAX_ROW_LIMIT)),
        timeout_s=_number(settings, "timeout_s", DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S),
        schemas=tuple(schemas),
    )


def driver_missing(drivername: str) -> str:
    package = _DRIVER_PACKAGES.get(drivername, drivername)
    return (
        f"The {drivername} driver is not installed in this IncidentFox, so {URL_SETTING} cannot be "
        f"used; the installation's admin can add it (Python package {package})."
    )
