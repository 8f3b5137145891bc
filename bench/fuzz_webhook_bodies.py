"""What the webhook fuzzer sends to ``POST /webhooks/pagerduty``,
``POST /webhooks/incidentio/{org}/{team}`` and ``POST /webhooks/github``: hypothesis strategies.

Each example is one delivery: a body, a content type, a signature state and the source's other
headers. Bodies are source-shaped envelopes (PagerDuty V3 ``{"event": {...}}``, incident.io
``{"event_type": T, T: {...}}``, GitHub ``workflow_run``/``check_suite``/``issue_comment``/
``pull_request_review_comment``/``ping`` payloads) either well formed with odd but legal leaves, or
with any leaf replaced by random JSON; those envelopes mutated (truncated, invalid UTF-8, NaN and
Infinity, duplicate keys, lone surrogates, deep nesting, padding to the 1 MiB limit and past it);
and the generic bodies of ``bench.fuzz_slack_bodies`` (every JSON type, nesting up to 150,000 levels,
random bytes). Most deliveries are signed with the secret the server holds, so they reach the
parser and the handlers rather than the 401 path; the rest cover several values with one valid,
forged, missing, malformed, signed over other bytes and, for incident.io, stale or future timestamps.

``bench/fuzz_webhook_sending.py`` signs and sends them and tallies the answers. Used by
``python -m bench.fuzz_webhooks`` (10,000 per route, ``make fuzz``) and by a seeded few hundred in the
regular tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any, Literal
from urllib.parse import quote

from hypothesis import strategies as st

from bench.fuzz_slack_bodies import FORM_TYPE, JSON_TYPE, FuzzRequest, json_bodies, json_values

Route = Literal["pagerduty", "incidentio", "github"]
ROUTES: tuple[Route, ...] = ("pagerduty", "incidentio", "github")
MAX_BODY = 1024 * 1024
SIGNATURE_STATES = ("valid", "several", "forged", "missing", "malformed", "other_bytes", "too_many")
INCIDENTIO_ONLY_STATES = ("stale", "future", "odd_timestamp")


@dataclass(frozen=True, slots=True)
class WebhookRequest(FuzzRequest):
    """A ``FuzzRequest`` for one webhook route. ``delivery`` is ``X-GitHub-Delivery`` or incident.io's
    ``webhook-id`` (``None``: not sent); ``noise`` is the header junk of the malformed states."""

    route: Route
    path: str
    event: str | None
    delivery: str | None
    noise: str


# Leaves and small pieces --------------------------------------------------------------------------


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of ``choices``, each picked in proportion to its weight.

    ``st.one_of`` does not pick its branches evenly (in one measurement, a large envelope strategy
    given four of five branches came out in 8 % of 300 examples), so the mix is set by a drawn number.
    """
    total = sum(weight for weight, _ in choices)

    @st.composite
    def pick(draw: st.DrawFn) -> Any:
        roll = draw(st.integers(min_value=0, max_value=total - 1))
        for weight, strategy in choices:
            if roll < weight:
                return draw(strategy)
            roll -= weight
        raise AssertionError("unreachable: the roll is below the total weight")

    return pick()


header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
)
plain_text = st.text(max_size=80)
long_text = st.builds(
    str.__mul__, st.text(min_size=1, max_size=8), st.integers(min_value=200, max_value=2000)
)
"""Up to 16,000 characters for few of hypothesis's choices (its buffer would overrun on random ones)."""
prose = weighted(
    (8, plain_text),
    (
        1,
        st.sampled_from(["*bold* <!channel> <@U0ALICE> `code` ```x``` &amp; <https://x|y>", "", " ", "\n\t"]),
    ),
    (1, long_text),
)
urls = st.one_of(
    st.sampled_from(["https://acme.pagerduty.com/incidents/Q1", "javascript:alert(1)", "", "http://[::1"]),
    plain_text,
)


def _offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


zones: st.SearchStrategy[tzinfo] = st.one_of(
    st.just(UTC), st.integers(min_value=-1439, max_value=1439).map(_offset)
)
SOON, LATER = datetime(2024, 1, 1), datetime(2030, 1, 1)
recent = st.one_of(
    st.datetimes(min_value=SOON, max_value=LATER, timezones=zones),
    st.datetimes(min_value=SOON, max_value=LATER),
)
extreme = st.one_of(st.datetimes(timezones=zones), st.datetimes())


def _iso(moment: datetime, style: int) -> str:
    text = moment.isoformat()
    if style == 1 and moment.utcoffset() == timedelta(0):
        return text.replace("+00:00", "Z")
    if style == 2:
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if moment.tzinfo is not None else "")
    return text


timestamps = weighted(
    (6, st.builds(_iso, recent, st.integers(min_value=0, max_value=2))),
    (1, st.builds(_iso, extreme, st.integers(min_value=0, max_value=2))),
    (1, st.integers(min_value=-(2**63), max_value=2**63)),
    (1, st.sampled_from(["2026-12-03", "2026-12-03T25:61:00Z", "now", "", "0", "1e309"])),
)


def _lax(draw: st.DrawFn, loose: bool, strategy: st.SearchStrategy[Any]) -> Any:
    """A value of ``strategy``; in a loose envelope, half the time random JSON instead."""
    if loose and draw(st.booleans()):
        return draw(json_values)
    return draw(strategy)


def _optional(draw: st.DrawFn, document: dict[str, Any], key: str, value: Callable[[], Any]) -> None:
    if draw(st.booleans()):
        document[key] = value()


# PagerDuty V3 -----------------------------------------------------------------------------------

PAGERDUTY_EVENT_TYPES = (
    ["incident.triggered"] * 6
    + [
        "incident.acknowledged",
        "incident.unacknowledged",
        "incident.resolved",
        "incident.reopened",
        "incident.reassigned",
        "incident.delegated",
        "incident.escalated",
        "incident.priority_updated",
        "incident.annotated",
    ]
    * 2
    + [
        "incident.responder.added",
        "incident.status_update_published",
        "incident.conference_bridge.updated",
        "service.updated",
        "pagey.ping",
    ]
)


def pagerduty_strategies(service: str) -> tuple[st.SearchStrategy[str], ...]:
    """Service ids (mostly the claimed one), incident ids and event ids (a few repeat, for dedupe)."""
    services = weighted(
        (6, st.sampled_from([service, service, service, "PNOBODY9", service.lower(), " " + service])),
        (1, st.text(min_size=1, max_size=70)),
    )
    incidents = weighted(
        (5, st.sampled_from(["Q1FUZZ", "Q2FUZZ", "Q3FUZZ"])), (1, st.text(min_size=1, max_size=70))
    )
    events = weighted(
        (6, st.uuids().map(str)),
        (1, st.sampled_from(["01DUPLICATEEVENT", "01DUPLICATEEVENT2"])),
        (1, st.text(min_size=1, max_size=140)),
    )
    return services, incidents, events


@st.composite
def pagerduty_refs(draw: st.DrawFn, ids: st.SearchStrategy[str], loose: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"id": _lax(draw, loose, ids)}
    _optional(draw, ref, "type", lambda: _lax(draw, loose, st.sampled_from(["user_reference", "x"])))
    _optional(draw, ref, "summary", lambda: _lax(draw, loose, prose))
    _optional(draw, ref, "html_url", lambda: _lax(draw, loose, urls))
    return ref


@st.composite
def pagerduty_payloads(draw: st.DrawFn, service: str, loose: bool) -> dict[str, Any]:
    services, incidents, events = pagerduty_strategies(service)
    people = st.text(min_size=1, max_size=20)
    event_type = _lax(draw, loose, st.sampled_from(PAGERDUTY_EVENT_TYPES))
    data: dict[str, Any]
    if event_type == "incident.annotated" and draw(st.booleans()):
        data = {
            "id": _lax(draw, loose, st.text(min_size=1, max_size=70)),
            "type": "incident_note",
            "incident": draw(pagerduty_refs(incidents, loose)),
            "content": _lax(draw, loose, prose),
        }
    else:
        data = {"id": _lax(draw, loose, incidents), "type": _lax(draw, loose, st.just("incident"))}
        _optional(draw, data, "number", lambda: _lax(draw, loose, st.integers()))
        _optional(draw, data, "title", lambda: _lax(draw, loose, prose))
        _optional(draw, data, "status", lambda: _lax(draw, loose, st.sampled_from(["triggered", "resolved"])))
        _optional(draw, data, "urgency", lambda: _lax(draw, loose, st.sampled_from(["high", "low", ""])))
        _optional(draw, data, "html_url", lambda: _lax(draw, loose, urls))
        if draw(st.integers(min_value=0, max_value=9)):
            data["service"] = draw(pagerduty_refs(services, loose))
        refs = pagerduty_refs(people, loose)
        _optional(draw, data, "assignees", lambda: _lax(draw, loose, st.lists(refs, max_size=4)))
        _optional(draw, data, "priority", lambda: _lax(draw, loose, st.none() | refs))
    event: dict[str, Any] = {
        "id": _lax(draw, loose, events),
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": _lax(draw, loose, timestamps),
        "data": data,
    }
    _optional(draw, event, "agent", lambda: _lax(draw, loose, st.none() | pagerduty_refs(people)))
    _optional(draw, event, "client", lambda: {"name": _lax(draw, loose, plain_text)})
    return {"event": _lax(draw, loose, st.just(event))}


# incident.io (Standard Webhooks) ------------------------------------------------------------------

INCIDENTIO_EVENT_TYPES = (
    ["public_incident.incident_created_v2"] * 4
    + ["public_incident.incident_updated_v2", "public_incident.incident_status_updated_v2"] * 2
    + [
        "private_incident.incident_created_v2",
        "public_incident.follow_up_created_v1",
        "public_incident.action_created_v1",
    ]
)
STATUS_CATEGORIES = ("triage", "active", "paused", "closed", "resolved", "declined", "post-incident", "")


@st.composite
def incidentio_named(draw: st.DrawFn, loose: bool) -> dict[str, Any]:
    named: dict[str, Any] = {"name": _lax(draw, loose, prose)}
    _optional(draw, named, "category", lambda: _lax(draw, loose, st.sampled_from(STATUS_CATEGORIES)))
    return named


@st.composite
def incidentio_incidents(draw: st.DrawFn, loose: bool) -> dict[str, Any]:
    ids = weighted(
        (5, st.sampled_from(["01HFUZZINCIDENT1", "01HFUZZINCIDENT2"])), (1, st.text(min_size=1, max_size=70))
    )
    incident: dict[str, Any] = {"id": _lax(draw, loose, ids)}
    _optional(draw, incident, "name", lambda: _lax(draw, loose, prose))
    _optional(
        draw, incident, "reference", lambda: _lax(draw, loose, st.sampled_from(["INC-42", "INC-", "42"]))
    )
    _optional(draw, incident, "summary", lambda: _lax(draw, loose, prose))
    _optional(draw, incident, "permalink", lambda: _lax(draw, loose, urls))
    _optional(draw, incident, "incident_status", lambda: draw(incidentio_named(loose)))
    _optional(draw, incident, "severity", lambda: _lax(draw, loose, st.none() | incidentio_named(loose)))
    assignment = st.fixed_dictionaries(
        {}, optional={"assignee": incidentio_named(loose), "role": incidentio_named(loose)}
    )
    _optional(
        draw,
        incident,
        "incident_role_assignments",
        lambda: _lax(draw, loose, st.lists(assignment, max_size=3)),
    )
    return incident


@st.composite
def incidentio_payloads(draw: st.DrawFn, loose: bool) -> dict[str, Any]:
    event_type = _lax(draw, loose, st.sampled_from(INCIDENTIO_EVENT_TYPES))
    incident = draw(incidentio_incidents(loose))
    change: Any = incident
    if event_type == "public_incident.incident_status_updated_v2" or draw(st.integers(0, 9)) == 0:
        change = {"incident": incident}
        _optional(draw, change, "new_status", lambda: _lax(draw, loose, incidentio_named(loose)))
        _optional(draw, change, "previous_status", lambda: _lax(draw, loose, incidentio_named(loose)))
    key = event_type if isinstance(event_type, str) else "event"
    if loose and draw(st.booleans()):
        key = draw(st.sampled_from(["incident", "public_incident.incident_created_v2", ""]))
    return {"event_type": event_type, key: _lax(draw, loose, st.just(change))}


def incidentio_paths(org: str, team: str) -> st.SearchStrategy[str]:
    """Mostly the team's own URL; also an unknown team or org, the org node, and random ids."""
    others = [(org, "nobody"), ("nobody", team), (org, org), (org.upper(), team)]
    ids = weighted(
        (12, st.just((org, team))),
        (2, st.sampled_from(others)),
        (1, st.tuples(st.text(min_size=1, max_size=70), st.text(min_size=1, max_size=70))),
    )
    return ids.map(lambda pair: f"/webhooks/incidentio/{quote(pair[0], safe='')}/{quote(pair[1], safe='')}")


# GitHub -----------------------------------------------------------------------------------------

GITHUB_EVENTS = ("workflow_run", "check_suite", "issue_comment", "pull_request_review_comment", "ping")
CONCLUSIONS = ("failure", "failure", "timed_out", "startup_failure", "success", "cancelled", None)


@st.composite
def github_repositories(draw: st.DrawFn, repo: str, loose: bool) -> dict[str, Any]:
    names = weighted(
        (8, st.sampled_from([repo, repo, repo, repo, repo.upper(), "someone/else", "acme", "/"])),
        (1, st.text(max_size=60)),
    )
    full_name = _lax(draw, loose, names)
    owner, _, name = str(full_name).partition("/")
    return {
        "id": _lax(draw, loose, st.integers(min_value=1, max_value=2**40)),
        "name": name,
        "full_name": full_name,
        "private": False,
        "owner": {"login": owner, "type": "Organization"},
        "html_url": f"https://github.com/{full_name}",
    }


@st.composite
def github_users(draw: st.DrawFn, loose: bool) -> dict[str, Any]:
    logins = st.sampled_from(["alice", "dependabot[bot]", "incidentfox[bot]"])
    login = _lax(draw, loose, weighted((3, logins), (1, plain_text)))
    return {"login": login, "id": draw(st.integers(min_value=1, max_value=2**31)), "type": "User"}


@st.composite
def github_pulls(draw: st.DrawFn, loose: bool) -> dict[str, Any]:
    number = _lax(draw, loose, st.integers(min_value=1, max_value=10_000))
    ref = {"ref": draw(plain_text), "sha": draw(st.text("0123456789abcdef", min_size=40, max_size=40))}
    return {"id": draw(st.integers(min_value=1, max_value=2**40)), "number": number, "head": ref, "base": ref}


@st.composite
def github_payloads(draw: st.DrawFn, event: str, repo: str, loose: bool) -> dict[str, Any]:
    repository = draw(github_repositories(repo, loose))
    sender = draw(github_users(loose))
    sha = draw(st.text("0123456789abcdef", min_size=40, max_size=40))
    pulls = st.lists(github_pulls(loose), max_size=2)
    mention = st.sampled_from(
        ["@incidentfox why did CI fail?", "hey @IncidentFox", "@incidentfox", "no mention here", ""]
    )
    if event in ("workflow_run", "check_suite"):
        body: dict[str, Any] = {
            "action": _lax(
                draw, loose, st.sampled_from(["completed", "completed", "requested", "in_progress"])
            ),
            "repository": repository,
            "sender": sender,
        }
        unit = {
            "id": _lax(draw, loose, st.integers(min_value=1, max_value=2**53)),
            "head_branch": _lax(draw, loose, plain_text),
            "head_sha": sha,
            "status": _lax(draw, loose, st.sampled_from(["completed", "queued"])),
            "conclusion": _lax(draw, loose, st.sampled_from(CONCLUSIONS)),
            "pull_requests": _lax(draw, loose, pulls),
        }
        _optional(draw, unit, "updated_at", lambda: _lax(draw, loose, timestamps))
        if event == "workflow_run":
            unit |= {
                "name": _lax(draw, loose, prose),
                "display_title": _lax(draw, loose, prose),
                "run_attempt": _lax(draw, loose, st.integers(min_value=1, max_value=5)),
                "html_url": _lax(draw, loose, urls),
                "event": _lax(draw, loose, st.sampled_from(["pull_request", "push", "schedule"])),
            }
            body["workflow"] = {"id": draw(st.integers(min_value=1, max_value=2**31)), "name": unit["name"]}
        else:
            unit["app"] = {"slug": _lax(draw, loose, st.sampled_from(["github-actions", "circleci"]))}
        body[event] = _lax(draw, loose, st.just(unit))
        return body
    if event in ("issue_comment", "pull_request_review_comment"):
        comment = {
            "id": _lax(draw, loose, st.integers(min_value=1, max_value=2**53)),
            "body": _lax(draw, loose, weighted((1, mention), (1, prose))),
            "user": sender,
            "html_url": _lax(draw, loose, urls),
        }
        _optional(draw, comment, "created_at", lambda: _lax(draw, loose, timestamps))
        body = {
            "action": _lax(draw, loose, st.sampled_from(["created", "created", "edited", "deleted"])),
            "comment": comment,
            "repository": repository,
            "sender": sender,
        }
        if event == "issue_comment":
            issue: dict[str, Any] = {
                "number": _lax(draw, loose, st.integers(min_value=1, max_value=10_000)),
                "title": _lax(draw, loose, prose),
            }
            _optional(draw, issue, "pull_request", lambda: {"url": draw(urls)})
            body["issue"] = issue
        else:
            body["pull_request"] = draw(github_pulls(loose))
        return body
    return {
        "zen": draw(plain_text),
        "hook_id": draw(st.integers(min_value=1, max_value=2**31)),
        "hook": {"type": "Repository", "events": draw(st.lists(st.sampled_from(GITHUB_EVENTS), max_size=3))},
        "repository": repository,
        "sender": sender,
    }


# Bodies: envelopes, their mutations, and the generic bodies ------------------------------------

MUTATIONS = (
    "truncate",
    "invalid_utf8",
    "nan",
    "infinity",
    "duplicate_key",
    "duplicate_inner_key",
    "lone_surrogate",
    "deep_leaf",
    "bom",
    "trailing_garbage",
    "pad_to_limit",
    "over_limit",
)


def _serialize(document: Any, style: int) -> bytes:
    if style == 1:
        return json.dumps(document, allow_nan=True, separators=(",", ":")).encode()
    if style == 2:
        return json.dumps(document, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return json.dumps(document, allow_nan=True).encode()


def _mutate(raw: bytes, how: str, at: int, extra: bytes) -> bytes:
    """``raw`` (a JSON object) broken in the way ``how`` names, at position ``at`` (mod its length)."""
    cut = at % max(1, len(raw))
    if how == "truncate":
        return raw[: max(1, cut)]
    if how == "invalid_utf8":
        return raw[:cut] + (extra or b"\xff") + b"\xc3" + raw[cut:]
    if how in ("nan", "infinity"):
        constant = b"NaN" if how == "nan" else b"-Infinity"
        return b'{"fuzz": ' + constant + b", " + raw[1:]
    if how == "duplicate_key":
        first_key = raw[1 : raw.find(b":")] if b":" in raw else b'"event"'
        return b"{" + first_key + b": {}, " + raw[1:]
    if how == "duplicate_inner_key":
        return raw.replace(b'"id":', b'"id":"shadowed","id":', 1)
    if how == "lone_surrogate":
        return b'{"fuzz": "\\udc80", ' + raw[1:]
    if how == "deep_leaf":
        depth = 60 + at % 200
        return b'{"fuzz": ' + b"[" * depth + b"]" * depth + b", " + raw[1:]
    if how == "bom":
        return b"\xef\xbb\xbf" + raw
    if how == "trailing_garbage":
        return raw + (extra or b"}")
    padding = MAX_BODY - len(raw) + (1 if how == "over_limit" else -1)
    return raw + b" " * max(0, padding)


def bodies(envelopes: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Serialized envelopes (most of them), their mutations, and the generic bodies."""
    serialized = st.builds(_serialize, envelopes, st.integers(min_value=0, max_value=2))
    mutated = st.builds(
        _mutate,
        serialized,
        st.sampled_from(MUTATIONS),
        st.integers(min_value=0, max_value=2**20),
        st.binary(max_size=4),
    )
    return weighted((14, serialized), (4, mutated), (3, json_bodies))


CONTENT_TYPES = st.sampled_from(
    [JSON_TYPE] * 6
    + ["application/json; charset=utf-8", "text/plain", FORM_TYPE, "multipart/form-data; boundary=x", None]
)
SIGNATURES = st.sampled_from(["valid"] * 9 + list(SIGNATURE_STATES[1:]))
deliveries = weighted(
    (8, st.uuids().map(str)), (1, st.just("fuzz-duplicate-delivery")), (1, header_text), (1, st.none())
)


@st.composite
def pagerduty_requests(draw: st.DrawFn, service: str) -> WebhookRequest:
    loose = draw(st.integers(min_value=0, max_value=2)) == 0
    return WebhookRequest(
        body=draw(bodies(pagerduty_payloads(service, loose))),
        content_type=draw(CONTENT_TYPES),
        signature=draw(SIGNATURES),
        route="pagerduty",
        path="/webhooks/pagerduty",
        event=None,
        delivery=None,
        noise=draw(header_text),
    )


@st.composite
def incidentio_requests(draw: st.DrawFn, org: str, team: str) -> WebhookRequest:
    loose = draw(st.integers(min_value=0, max_value=2)) == 0
    states = st.sampled_from(["valid"] * 8 + list(SIGNATURE_STATES[1:]) + list(INCIDENTIO_ONLY_STATES))
    return WebhookRequest(
        body=draw(bodies(incidentio_payloads(loose))),
        content_type=draw(CONTENT_TYPES),
        signature=draw(states),
        route="incidentio",
        path=draw(incidentio_paths(org, team)),
        event=None,
        delivery=draw(deliveries),
        noise=draw(header_text),
    )


@st.composite
def github_requests(draw: st.DrawFn, repo: str) -> WebhookRequest:
    loose = draw(st.integers(min_value=0, max_value=2)) == 0
    shape = draw(st.sampled_from(GITHUB_EVENTS))
    header = draw(
        weighted(
            (8, st.just(shape)),
            (1, st.sampled_from((*GITHUB_EVENTS, "push", "pull_request", "star", ""))),
            (1, st.none()),
            (1, header_text),
        )
    )
    return WebhookRequest(
        body=draw(bodies(github_payloads(shape, repo, loose))),
        content_type=draw(CONTENT_TYPES),
        signature=draw(SIGNATURES),
        route="github",
        path="/webhooks/github",
        event=header,
        delivery=draw(deliveries),
        noise=draw(header_text),
    )


@dataclass(frozen=True, slots=True)
class Claims:
    """What the server's team owns: the PagerDuty service and the GitHub repo it claims, and its own
    ``org``/``team`` ids (the incident.io URL names them). Most generated deliveries name these."""

    service: str
    repo: str
    org: str
    team: str


def route_requests(route: Route, claims: Claims) -> st.SearchStrategy[WebhookRequest]:
    if route == "pagerduty":
        return pagerduty_requests(claims.service)
    if route == "incidentio":
        return incidentio_requests(claims.org, claims.team)
    return github_requests(claims.repo)
