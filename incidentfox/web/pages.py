"""``GET /``, ``/ui/static/...`` and ``/ui/api/bootstrap``: the page, its assets, and who may use them.

Who may use the page (design §5): on the embedded default bound to loopback, the person at this
machine is the local admin and the console signs in by itself. Bound anywhere else (``HOST``), or
with a real Slack app, every ``/ui/api`` call needs the admin token, which the page asks for once.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from incidentfox.bot.http_json import json_response
from incidentfox.bot.settings import Settings
from incidentfox.errors import Forbidden, Unauthorized
from incidentfox.web.embedded import is_loopback_host

STATIC_DIR = Path(__file__).parent / "static"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Bootstrap = Callable[[], dict[str, Any]]


class PageAccess:
    """Decides whether a request may use the local page's API, and whether it is signed in already."""

    def __init__(self, settings: Settings, *, embedded: bool) -> None:
        self.loopback_only = is_loopback_host(settings.host)
        self.auto_sign_in = embedded and self.loopback_only
        self._admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None

    @property
    def console_token(self) -> str | None:
        """The admin token handed to the page itself (embedded default on loopback only)."""
        return self._admin_token if self.auto_sign_in else None

    def check(self, request: web.Request) -> None:
        if self.loopback_only and not _from_loopback(request):
            raise Forbidden("the local workspace answers this machine only")
        if self.auto_sign_in:
            return
        given = _bearer(request) or request.query.get("token", "")
        if not given or self._admin_token is None:
            raise Unauthorized("sign in with the admin token (ADMIN_TOKEN) to use this page")
        if not secrets.compare_digest(given.encode(), self._admin_token.encode()):
            raise Unauthorized("that token is not the admin token")

    def guard(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            self.check(request)
            return await handler(request)

        return guarded


def add_page_routes(app: web.Application, access: PageAccess, bootstrap: Bootstrap) -> None:
    """The page and its assets (public: they hold no data) and the guarded bootstrap."""

    async def index(_request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def bootstrap_view(request: web.Request) -> web.StreamResponse:
        if not access.auto_sign_in and not _has_credentials(request):
            return json_response(
                {"mode": bootstrap().get("mode"), "console": {"token": None, "requires_token": True}}
            )
        access.check(request)
        return json_response(bootstrap())

    app.router.add_get("/", index)
    app.router.add_get("/ui/api/bootstrap", bootstrap_view)
    app.router.add_static("/ui/static/", STATIC_DIR, append_version=False)


def console_bootstrap(access: PageAccess) -> dict[str, Any]:
    """What the page needs when a real Slack app is connected: the console only."""
    return {"mode": "console", "console": {"token": access.console_token, "requires_token": True}}


def _has_credentials(request: web.Request) -> bool:
    return bool(_bearer(request) or request.query.get("token"))


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def _from_loopback(request: web.Request) -> bool:
    remote = request.remote or ""
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False
