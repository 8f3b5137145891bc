"""An offline PagerDuty REST API v2 on 127.0.0.1, over real HTTPS, for the real ``pagerduty`` client.

    async with PagerDutyEmulator() as pd:
        client = pagerduty.RestApiV2Client(pd.api_key, default_from=BOT_EMAIL, verify=pd.client_ssl_context())
        client.url = pd.api_url

HTTPS because the client refuses any base URL that is not ``https://``: each emulator has its own
throwaway CA (``pagerduty_tls``), which a client trusts through ``client_ssl_context()`` or, for the
toolset, ``ca_cert_content`` (``integration_config()`` fills it in).

It serves the account of a ``PagerDutyWorld`` (``seed_checkout`` by default; ``pd.world`` is there to
add to) in the API's shapes: wrapped entities (``{"incident": {...}}``), classic pagination
(``limit`` up to 100, ``offset``, ``more``, ``total`` when ``total=true``, ``offset + limit`` at most
10 000), ``[]`` filters, and PagerDuty's error envelope ``{"error": {"message", "code", "errors"}}``.

Endpoints: ``GET /incidents`` (``service_ids[]``, ``statuses[]``, ``urgencies[]``, ``since``/``until``
on ``created_at``, default the last 30 days, or ``date_range=all``; ``sort_by``), ``GET
/incidents/{id}``, ``/alerts``, ``/log_entries`` (newest first, ``is_overview``), ``GET|POST
/incidents/{id}/notes``, ``GET /services`` and ``/services/{id}``, ``GET /oncalls``
(``escalation_policy_ids[]``, ``schedule_ids[]``, ``user_ids[]``, ``earliest``, ``since``/``until``),
``GET /escalation_policies/{id}``, ``GET /users``, ``/users/{id}`` and ``/users/me``;
``/services/{id}`` expands ``include[]=escalation_policies``, ``teams`` and ``integrations`` into
whole objects; ``GET /change_events`` and ``/services/{id}/change_events`` (``pagerduty_changes``).

Authentication is ``Authorization: Token token=<api_key>``; anything else is 401. The key is an
account-level key unless ``key_user_id`` names its user: then ``/users/me`` answers that user, and a
note is written as that user. With an account-level key, ``/users/me`` is a 400 whose ``error`` is a
plain string (what the client's ``api_key_access`` reads), and a note needs a ``From`` header holding
a user's email, as the real API requires. ``read_only`` refuses every write with 403.

Faults: ``fail_next(target, status, retry_after=..., times=...)`` answers the next matching calls
with that status (429 with ``Retry-After`` and the ``ratelimit-*`` headers, 5xx with PagerDuty's
internal-error body); ``target`` is a path (``/incidents/Q3…``), a route name (``incident``,
``incidents``, ``alerts``, ``log_entries``, ``notes``, ``create_note``, ``services``, ``service``,
``oncalls``, ``users``, ``user``, ``me``, ``escalation_policy``, ``change_events``,
``service_change_events``) or ``*``. ``unreachable`` drops every
connection. Every request is kept in ``calls`` as a ``RecordedCall``. ``send_webhook`` plays a V3
webhook (see ``pagerduty_webhooks``) to any URL.
"""

from __future__ import annotations

import json
import math
import shutil
import ssl
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from incidentfox.emulators.pagerduty_changes import ChangeEventRoutes
from incidentfox.emulators.pagerduty_http import (
    INTERNAL_ERROR,
    BadInput,
    RecordedCall,
    error_response,
    flag_param,
    list_param,
    paginate,
    sort_incidents,
    time_param,
)
from incidentfox.emulators.pagerduty_seed import BOT_EMAIL, seed_checkout
from incidentfox.emulators.pagerduty_tls import LocalCertificate, issue_local_certificate
from incidentfox.emulators.pagerduty_webhooks import (
    WebhookDelivery,
    WebhookRequest,
    post_webhook,
    signed_request,
    webhook_event,
)
from incidentfox.emulators.pagerduty_world import (
    INCIDENT_STATUSES,
    Obj,
    PagerDutyWorld,
    parse_time,
    render,
)
from incidentfox.emulators.served import Emulator, ServedApp

DEFAULT_API_KEY = "emulator-pd-account-key-0123"
DEFAULT_WEB_URL = "https://acme.pagerduty.com"
NOTE_MAX_CHARS = 25_000
ACCOUNT_KEY_ME = (
    "Because this request was made using an account-level access token, we were unable to determine "
    "the user's identity. Please use a user-level token."
)
_RECORDED_HEADERS = ("Authorization", "From", "Accept", "Content-Type", "User-Agent")


@dataclass(slots=True)
class _Fault:
    target: str
    status: int
    retry_after: float | None
    remaining: int
    message: str | None = None


class PagerDutyEmulator(Emulator):
    """PagerDuty's REST API v2 over HTTPS on 127.0.0.1. Start with ``async with`` or ``start()``."""

    def __init__(
        self,
        world: PagerDutyWorld | None = None,
        *,
        api_key: str = DEFAULT_API_KEY,
        key_user_id: str | None = None,
        web_url: str = DEFAULT_WEB_URL,
        host: str = "127.0.0.1",
    ) -> None:
        self.world = world if world is not None else seed_checkout(PagerDutyWorld())
        self.api_key = api_key
        self.key_user_id = key_user_id
        """When set, the key is a user-level key of this user (``/users/me`` answers them)."""
        self.web_url = web_url
        self.host = host
        self.read_only = False
        """When true, every write answers 403 Access Denied, as a read-only API key does."""
        self.unreachable = False
        """When true, every request's connection is dropped without an answer."""
        self.calls: list[RecordedCall] = []
        self.webhooks_sent: list[WebhookDelivery] = []
        self.certificate: LocalCertificate = issue_local_certificate()
        self._faults: list[_Fault] = []
        self._server = ServedApp()
        self._port: int | None = None
        self._tls_dir: Path | None = None

    async def start(self) -> Self:
        app = web.Application(middlewares=[self._gate])
        get, post = app.router.add_get, app.router.add_post
        get("/incidents", self._incidents, name="incidents")
        get("/incidents/{id}", self._incident, name="incident")
        get("/incidents/{id}/alerts", self._alerts, name="alerts")
        get("/incidents/{id}/log_entries", self._log_entries, name="log_entries")
        get("/incidents/{id}/notes", self._notes, name="notes")
        post("/incidents/{id}/notes", self._create_note, name="create_note")
        get("/services", self._services, name="services")
        get("/services/{id}", self._service, name="service")
        get("/oncalls", self._oncalls, name="oncalls")
        get("/escalation_policies/{id}", self._escalation_policy, name="escalation_policy")
        ChangeEventRoutes(lambda: self.world, self._render).register(app)
        get("/users", self._users, name="users")
        get("/users/me", self._me, name="me")
        get("/users/{id}", self._user, name="user")
        app.router.add_route("*", "/{tail:.*}", self._not_found, name="unknown")
        self._tls_dir = Path(tempfile.mkdtemp(prefix="pd-emulator-"))
        server_context = self.certificate.server_context(self._tls_dir)
        self._port = await self._server.serve(app, self.host, 0, ssl_context=server_context)
        return self

    async def stop(self) -> None:
        await self._server.close()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
            self._tls_dir = None

    @property
    def api_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the PagerDuty emulator is not started")
        return f"https://{self.host}:{self._port}"

    @property
    def ca_cert_pem(self) -> str:
        """The CA a client must trust to reach ``api_url`` (the toolset's ``ca_cert_content``)."""
        return self.certificate.ca_pem

    def client_ssl_context(self) -> ssl.SSLContext:
        """Pass as ``verify=`` to ``pagerduty.RestApiV2Client`` (or any httpx/aiohttp client)."""
        return self.certificate.client_context()

    def integration_config(self, **overrides: Any) -> dict[str, Any]:
        """The team config section ``integrations.pagerduty`` that points the toolset here."""
        return {
            "api_key": self.api_key,
            "api_url": self.api_url,
            "from_email": BOT_EMAIL,
            "ca_cert_content": self.ca_cert_pem,
            **overrides,
        }

    def fail_next(
        self,
        target: str,
        status: int,
        *,
        retry_after: float | None = None,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls matching ``target`` with ``status`` instead of serving them."""
        if times < 1:
            raise ValueError("times must be at least 1")
        self._faults.append(_Fault(target, status, retry_after, times, message))

    @property
    def pending_faults(self) -> int:
        """How many injected failures have not been served yet."""
        return sum(f.remaining for f in self._faults)

    def calls_to(self, route: str, method: str | None = None) -> list[RecordedCall]:
        """The recorded calls of one route name (``incidents``, ``create_note``…)."""
        return [c for c in self.calls if c.route == route and (method is None or c.method == method)]

    def build_webhook(
        self,
        event_type: str,
        incident_id: str,
        *,
        secret: str | None,
        extra_secrets: Sequence[str] = (),
        extra_signatures: Sequence[str] = (),
        event_id: str | None = None,
        webhook_id: str | None = None,
        occurred_at: datetime | None = None,
        agent_user_id: str | None = None,
    ) -> WebhookRequest:
        """A signed V3 webhook about one incident of ``world``, not yet sent (see ``signed_request``
        for how the signatures are laid out). Its ``self`` links point at this emulator once it is
        started, at ``https://api.pagerduty.com`` before."""
        payload = webhook_event(
            self.world,
            event_type,
            incident_id,
            api_url=self.api_url if self._port is not None else "https://api.pagerduty.com",
            web_url=self.web_url,
            event_id=event_id,
            occurred_at=occurred_at,
            agent_user_id=agent_user_id,
        )
        return signed_request(
            payload,
            secret=secret,
            extra_secrets=extra_secrets,
            extra_signatures=extra_signatures,
            webhook_id=webhook_id,
        )

    async def send_webhook(
        self,
        url: str,
        event_type: str,
        incident_id: str,
        *,
        secret: str | None,
        extra_secrets: Sequence[str] = (),
        extra_signatures: Sequence[str] = (),
        event_id: str | None = None,
        webhook_id: str | None = None,
        occurred_at: datetime | None = None,
        agent_user_id: str | None = None,
    ) -> WebhookDelivery:
        """POST a signed V3 webhook to ``url`` and return what the receiver answered."""
        request = self.build_webhook(
            event_type,
            incident_id,
            secret=secret,
            extra_secrets=extra_secrets,
            extra_signatures=extra_signatures,
            event_id=event_id,
            webhook_id=webhook_id,
            occurred_at=occurred_at,
            agent_user_id=agent_user_id,
        )
        return await self.redeliver(url, request)

    async def redeliver(self, url: str, request: WebhookRequest) -> WebhookDelivery:
        """POST the same bytes and headers again, as PagerDuty does when a delivery failed."""
        delivery = await post_webhook(url, request)
        self.webhooks_sent.append(delivery)
        return delivery

    @web.middleware
    async def _gate(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            body = raw.decode("utf-8", "replace")
        route = request.match_info.route.name or "unknown"
        status = 0
        try:
            if self.unreachable:
                if request.transport is not None:
                    request.transport.abort()
                return web.Response(status=503)
            response = self._fault_for(request, route) or await self._authorized(request, handler)
            status = response.status
            return response
        finally:
            self.calls.append(
                RecordedCall(
                    method=request.method,
                    path=request.path,
                    route=route,
                    query={key: request.query.getall(key) for key in request.query},
                    json=body,
                    headers={h: request.headers[h] for h in _RECORDED_HEADERS if h in request.headers},
                    status=status,
                    at=time.monotonic(),
                )
            )

    async def _authorized(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Token token={self.api_key}":
            return error_response(401)
        if request.method != "GET" and self.read_only:
            return error_response(403, errors=["This API key is read-only."])
        try:
            response: web.StreamResponse = await handler(request)
        except BadInput as exc:
            return error_response(400, errors=[str(exc)])
        response.headers["X-Request-Id"] = uuid.uuid4().hex
        return response

    def _fault_for(self, request: web.Request, route: str) -> web.Response | None:
        fault = next(
            (f for f in self._faults if f.target in ("*", route, request.path) and f.remaining > 0), None
        )
        if fault is None:
            return None
        fault.remaining -= 1
        if fault.remaining == 0:
            self._faults.remove(fault)
        if fault.status >= 500:
            message, code = INTERNAL_ERROR
            response = error_response(fault.status, fault.message or message, code=code)
        else:
            response = error_response(fault.status, fault.message)
        if fault.retry_after is not None:
            seconds = fault.retry_after
            response.headers["Retry-After"] = str(int(seconds)) if seconds == int(seconds) else str(seconds)
        if fault.status == 429:
            reset = math.ceil(fault.retry_after) if fault.retry_after is not None else 60
            response.headers.update(
                {"ratelimit-limit": "960", "ratelimit-remaining": "0", "ratelimit-reset": str(reset)}
            )
        return response

    def _render(self, value: Any) -> Any:
        return render(value, self.api_url, self.web_url)

    def _incident_or_404(self, request: web.Request) -> str | web.Response:
        incident_id = request.match_info["id"]
        if incident_id not in self.world.incidents:
            return error_response(404, errors=[f"Incident {incident_id} not found"])
        return incident_id

    async def _not_found(self, request: web.Request) -> web.Response:
        return error_response(404)

    async def _incidents(self, request: web.Request) -> web.Response:
        world = self.world
        statuses = list_param(request, "statuses")
        if any(s not in INCIDENT_STATUSES for s in statuses):
            raise BadInput("Statuses must be a list of triggered, acknowledged, or resolved.")
        urgencies = list_param(request, "urgencies")
        services = set(list_param(request, "service_ids"))
        teams = set(list_param(request, "team_ids"))
        users = set(list_param(request, "user_ids"))
        key = request.query.get("incident_key")
        since, until = time_param(request, "since"), time_param(request, "until")
        if request.query.get("date_range") != "all":
            until = until or max(world.now + timedelta(seconds=1), datetime.now(UTC))
            since = since or until - timedelta(days=30)
            if since > until:
                raise BadInput("'since' must be before 'until'")
            if until - since > timedelta(days=180):
                raise BadInput("The date range may span at most 6 months")
        chosen = []
        for incident in world.incidents.values():
            created = parse_time(incident["created_at"])
            assignees = {a["assignee"]["id"] for a in incident["assignments"]}
            if (
                (not statuses or incident["status"] in statuses)
                and (not urgencies or incident["urgency"] in urgencies)
                and (not services or incident["service"]["id"] in services)
                and (not teams or {t["id"] for t in incident["teams"]} & teams)
                and (not users or assignees & users)
                and (key is None or incident["incident_key"] == key)
                and (since is None or since <= created)
                and (until is None or created < until)
            ):
                chosen.append(world.incident_view(incident["id"]))
        ordered = sort_incidents(chosen, request.query.get("sort_by"))
        return paginate(request, "incidents", self._render(ordered))

    async def _incident(self, request: web.Request) -> web.Response:
        found = self._incident_or_404(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response({"incident": self._render(self.world.incident_view(found))})

    async def _alerts(self, request: web.Request) -> web.Response:
        found = self._incident_or_404(request)
        if isinstance(found, web.Response):
            return found
        statuses = list_param(request, "statuses")
        alerts = [a for a in self.world.alerts[found] if not statuses or a["status"] in statuses]
        return paginate(request, "alerts", self._render(alerts))

    async def _log_entries(self, request: web.Request) -> web.Response:
        found = self._incident_or_404(request)
        if isinstance(found, web.Response):
            return found
        overview = {
            "trigger_log_entry",
            "acknowledge_log_entry",
            "resolve_log_entry",
            "annotate_log_entry",
            "assign_log_entry",
            "escalate_log_entry",
        }
        since, until = time_param(request, "since"), time_param(request, "until")
        entries = [
            e
            for e in reversed(self.world.log_entries[found])
            if (not flag_param(request, "is_overview") or e["type"] in overview)
            and (since is None or since <= parse_time(e["created_at"]))
            and (until is None or parse_time(e["created_at"]) < until)
        ]
        return paginate(request, "log_entries", self._render(entries))

    async def _notes(self, request: web.Request) -> web.Response:
        found = self._incident_or_404(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response({"notes": self._render(self.world.notes[found])})

    async def _create_note(self, request: web.Request) -> web.Response:
        found = self._incident_or_404(request)
        if isinstance(found, web.Response):
            return found
        author = self._note_author(request)
        if isinstance(author, web.Response):
            return author
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise BadInput("The request body must be JSON") from None
        note = body.get("note") if isinstance(body, dict) else None
        content = note.get("content") if isinstance(note, dict) else None
        if not isinstance(content, str) or not content.strip():
            raise BadInput("Note content can't be blank")
        if len(content) > NOTE_MAX_CHARS:
            raise BadInput(f"Note content is too long (maximum is {NOTE_MAX_CHARS} characters)")
        created = self.world.add_note(found, content, user_id=author, at=datetime.now(UTC))
        return web.json_response({"note": self._render(created)}, status=201)

    def _note_author(self, request: web.Request) -> str | web.Response:
        """The user a note is written as: the key's user, or the ``From`` header's user."""
        if self.key_user_id is not None:
            return self.key_user_id
        sender = request.headers.get("From", "").strip()
        if not sender:
            return error_response(
                400,
                errors=["The From header is required when using an account-level API key."],
            )
        user = self.world.user_by_email(sender)
        if user is None:
            return error_response(400, "Requester User Not Found", code=1008)
        return str(user["id"])

    async def _services(self, request: web.Request) -> web.Response:
        query = request.query.get("query", "").lower()
        teams = set(list_param(request, "team_ids"))
        services = [
            self.world.service_view(sid)
            for sid, s in sorted(self.world.services.items(), key=lambda kv: kv[1]["name"])
            if query in s["name"].lower() and (not teams or {t["id"] for t in s["teams"]} & teams)
        ]
        return paginate(request, "services", self._render(services))

    async def _service(self, request: web.Request) -> web.Response:
        service_id = request.match_info["id"]
        if service_id not in self.world.services:
            return error_response(404, errors=[f"Service {service_id} not found"])
        service = self.world.service_view(service_id)
        included = set(list_param(request, "include"))
        if "escalation_policies" in included:
            service["escalation_policy"] = self.world.escalation_policies[service["escalation_policy"]["id"]]
        if "teams" in included:
            service["teams"] = [self.world.teams[t["id"]] for t in service["teams"]]
        if "integrations" in included:
            service["integrations"] = [self.world.integrations[i["id"]] for i in service["integrations"]]
        return web.json_response({"service": self._render(service)})

    async def _oncalls(self, request: web.Request) -> web.Response:
        policies = set(list_param(request, "escalation_policy_ids"))
        schedules = set(list_param(request, "schedule_ids"))
        users = set(list_param(request, "user_ids"))
        since = time_param(request, "since") or self.world.now
        until = time_param(request, "until") or since
        chosen: list[Obj] = []
        for entry in self.world.oncalls:
            start = parse_time(entry["start"]) if entry["start"] else None
            end = parse_time(entry["end"]) if entry["end"] else None
            if (
                (not policies or entry["escalation_policy"]["id"] in policies)
                and (not schedules or (entry["schedule"] or {}).get("id") in schedules)
                and (not users or entry["user"]["id"] in users)
                and (start is None or start <= until)
                and (end is None or since < end)
            ):
                chosen.append(entry)
        if flag_param(request, "earliest"):
            earliest: dict[tuple[str, int, str], Obj] = {}
            for entry in sorted(chosen, key=lambda e: e["start"] or ""):
                combo = (entry["escalation_policy"]["id"], entry["escalation_level"], entry["user"]["id"])
                earliest.setdefault(combo, entry)
            chosen = list(earliest.values())
        chosen.sort(
            key=lambda e: (e["escalation_policy"]["summary"], e["escalation_level"], e["start"] or "")
        )
        return paginate(request, "oncalls", self._render(chosen))

    async def _escalation_policy(self, request: web.Request) -> web.Response:
        policy = self.world.escalation_policies.get(request.match_info["id"])
        if policy is None:
            return error_response(404)
        return web.json_response({"escalation_policy": self._render(policy)})

    async def _users(self, request: web.Request) -> web.Response:
        query = request.query.get("query", "").lower()
        users = [
            u
            for u in sorted(self.world.users.values(), key=lambda u: u["name"])
            if query in u["name"].lower() or query in u["email"].lower()
        ]
        return paginate(request, "users", self._render(users))

    async def _user(self, request: web.Request) -> web.Response:
        user = self.world.users.get(request.match_info["id"])
        if user is None:
            return error_response(404)
        return web.json_response({"user": self._render(user)})

    async def _me(self, request: web.Request) -> web.Response:
        if self.key_user_id is None:
            return web.json_response({"error": ACCOUNT_KEY_ME}, status=400)
        return web.json_response({"user": self._render(self.world.users[self.key_user_id])})
