"""The PagerDuty emulator's change events: ``GET /change_events`` (the account's) and ``GET
/services/{id}/change_events`` (one service's), newest first, with the REST API's filters ``since``
and ``until`` (on the event's ``timestamp``; ``since`` after ``until`` is a 400), ``team_ids[]``
(services of those teams) and ``integration_ids[]``, and classic pagination. An unknown service is a
404 in PagerDuty's error envelope."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from incidentfox.emulators.pagerduty_http import BadInput, error_response, list_param, paginate, time_param
from incidentfox.emulators.pagerduty_world import Obj, PagerDutyWorld, parse_time


class ChangeEventRoutes:
    """Handlers over the emulator's world; ``render`` adds ``self`` and ``html_url`` as served."""

    def __init__(self, world: Callable[[], PagerDutyWorld], render: Callable[[Any], Any]) -> None:
        self._world = world
        self._render = render

    def register(self, app: web.Application) -> None:
        app.router.add_get("/change_events", self.list_all, name="change_events")
        app.router.add_get("/services/{id}/change_events", self.for_service, name="service_change_events")

    def _chosen(self, request: web.Request, service_id: str | None) -> list[Obj]:
        world = self._world()
        since, until = time_param(request, "since"), time_param(request, "until")
        if since is not None and until is not None and since > until:
            raise BadInput("'since' must be before 'until'")
        teams = set(list_param(request, "team_ids"))
        team_services = {sid for sid, s in world.services.items() if {t["id"] for t in s["teams"]} & teams}
        integrations = set(list_param(request, "integration_ids"))
        chosen = [
            event
            for event in world.change_events
            if (service_id is None or any(s["id"] == service_id for s in event["services"]))
            and (not teams or any(s["id"] in team_services for s in event["services"]))
            and (not integrations or (event["integration"] or {}).get("id") in integrations)
            and (since is None or since <= parse_time(event["timestamp"]))
            and (until is None or parse_time(event["timestamp"]) < until)
        ]
        return sorted(chosen, key=lambda e: e["timestamp"], reverse=True)

    async def list_all(self, request: web.Request) -> web.Response:
        return paginate(request, "change_events", self._render(self._chosen(request, None)))

    async def for_service(self, request: web.Request) -> web.Response:
        service_id = request.match_info["id"]
        if service_id not in self._world().services:
            return error_response(404, errors=[f"Service {service_id} not found"])
        return paginate(request, "change_events", self._render(self._chosen(request, service_id)))
