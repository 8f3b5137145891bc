"""The run history of the config API, for the config console (``/api/v1/orgs/{org}/runs``).

``GET …/runs`` lists an org's or a team's runs newest first, a page at a time (keyset pagination on
``created_at`` and ``run_id``); ``GET …/runs/{run_id}`` shows one run with its feedback and a
plain-text timeline of its persisted progress events: ``Run.events``, read back with
``event_from_dict`` just as the "View session" modal reads them, one entry per event. A running
run's events are at most a second behind (the progress journal's interval).

Who sees what: the global admin every org, an org admin its org, a team token its own team's runs
only (403 for another team's, as for its config).

Secrets: every text here was scrubbed with the team's secret values when it was written (the
question at intake, thoughts, tool arguments and results, summaries and the RCA when their events
were emitted). Each string passes ``redaction.scrub_text`` (and tool arguments ``scrub_json``) once
more on the way out, so a credential-shaped value in an older row is still never shown.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from incidentfox.agents.events import (
    Answer,
    ApprovalDecided,
    ApprovalRequest,
    Error,
    FirstFinding,
    Interrupted,
    ProgressEvent,
    Question,
    Result,
    Resumed,
    SimilarIncidents,
    Started,
    SubagentEnd,
    SubagentStart,
    Thought,
    ToolEnd,
    ToolStart,
    event_from_dict,
)
from incidentfox.agents.redaction import scrub_json, scrub_text
from incidentfox.agents.runs.listing import RunListing
from incidentfox.agents.runs.models import RUN_STATUSES, Run
from incidentfox.bot.health import RUNTIME
from incidentfox.bot.http_json import json_response
from incidentfox.config.ids import validate_node_id
from incidentfox.config.permissions import Principal, require_node_read, require_org_admin
from incidentfox.config.views import CONFIG_SERVICE, authenticated, int_query
from incidentfox.errors import BadRequest, NotFound

log = logging.getLogger(__name__)

PAGE_DEFAULT = 50
PAGE_MAX = 200
TEXT_MAX = 300
"""The question as a list shows it; the full text stays in Slack."""
STEP_MAX = 500
_PLANNER = "planner"


@authenticated
async def list_runs(request: web.Request, principal: Principal) -> web.StreamResponse:
    org = request.match_info["org"]
    team = await _team_filter(request, principal, org)
    status = request.query.get("status") or None
    if status is not None and status not in RUN_STATUSES:
        raise BadRequest(f"status must be one of {', '.join(RUN_STATUSES)}", code="invalid_status")
    limit: int = int_query(request, "limit", PAGE_DEFAULT, maximum=PAGE_MAX)
    before = request.query.get("before") or None
    listing = RunListing(request.app[RUNTIME].runs.sessions)
    rows = await listing.page(org, team=team, status=status, limit=limit, before=before)
    page = rows[:limit]
    more = len(rows) > limit
    return json_response(
        {"runs": [run_json(row) for row in page], "next_before": page[-1].run_id if more else None}
    )


@authenticated
async def get_run(request: web.Request, principal: Principal) -> web.StreamResponse:
    org, run_id = request.match_info["org"], request.match_info["run_id"]
    if not (principal.kind == "team" and principal.org_id == org):
        require_org_admin(principal, org)
    listing = RunListing(request.app[RUNTIME].runs.sessions)
    run = await listing.run(run_id)
    if run is None or run.org_id != org:
        raise NotFound(f"run {run_id[:60]!r} does not exist in org {org!r}", code="unknown_run")
    require_node_read(principal, org, run.team_node_id)
    votes = await listing.votes(run.run_id)
    rca = run.rca if isinstance(run.rca, dict) else {}
    summary = rca.get("summary")
    detail = {
        **run_json(run),
        "summary": scrub_text(summary) if isinstance(summary, str) and summary else None,
        "error": scrub_text(run.error) if run.error else None,
        "feedback": {
            "up": sum(1 for vote in votes if vote.vote == "up"),
            "down": sum(1 for vote in votes if vote.vote == "down"),
            "votes": [{"user_id": v.user_id, "vote": v.vote, "at": v.at.isoformat()} for v in votes],
        },
    }
    return json_response({"run": detail, "timeline": timeline(run.run_id, run.events or [])})


def add_routes(app: web.Application) -> None:
    runs = "/api/v1/orgs/{org}/runs"
    app.router.add_get(runs, list_runs)
    app.router.add_get(runs + "/{run_id}", get_run)


async def _team_filter(request: web.Request, principal: Principal, org: str) -> str | None:
    """The team whose runs to list (``None``: the whole org), after checking the caller may read them.

    A team token lists its own team's runs whether or not it names the team, and is refused any
    other team; an unknown org or team is a 404, a unit a 400."""
    raw = request.query.get("team") or None
    team = validate_node_id(raw, field="team") if raw is not None else None
    if team is None and principal.kind == "team":
        team = principal.team_node_id
    node = await request.app[CONFIG_SERVICE].get_node(principal, org, team or org)
    if team is not None and node["kind"] != "team":
        raise BadRequest(
            f"{team!r} is a {node['kind']}; runs belong to teams, so give a team id", code="not_a_team"
        )
    return team


def run_json(run: Run) -> dict[str, Any]:
    """A run as the console lists it; ``text`` is the question, cut to ``TEXT_MAX`` characters."""
    return {
        "run_id": run.run_id,
        "org_id": run.org_id,
        "team_node_id": run.team_node_id,
        "status": run.status,
        "source": run.source,
        "kind": run.kind,
        "text": _shorten(scrub_text(run.question or ""), TEXT_MAX),
        "origin": scrub_json(run.origin) if run.origin else None,
        "channel_id": run.channel_id,
        "thread_ts": run.thread_ts,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "duration_s": _duration(run),
    }


def timeline(run_id: str, stored: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One ``{at, kind, text}`` per persisted event, in order; ``kind`` is the event's kind
    (``started``, ``thought``, ``tool_start``, ``tool_end``, …, ``result``, ``error``)."""
    entries: list[dict[str, Any]] = []
    approvals: dict[str, str] = {}
    unreadable = 0
    for data in stored:
        try:
            event = event_from_dict(dict(data))
        except (ValueError, TypeError, KeyError, AttributeError):
            unreadable += 1
            continue
        if isinstance(event, ApprovalRequest):
            approvals[event.approval_id] = f"{event.action} on {event.target}"
        entries.append(
            {
                "at": datetime.fromtimestamp(event.at, UTC).isoformat(),
                "kind": event.kind,
                "text": _shorten(scrub_text(_event_text(event, approvals)), STEP_MAX),
            }
        )
    if unreadable:
        log.info("run timeline skipped unreadable events run_id=%s count=%d", run_id, unreadable)
    return entries


def _event_text(event: ProgressEvent, approvals: Mapping[str, str]) -> str:
    """Plain words for one event (no mrkdwn: the console shows text as text)."""
    match event:
        case Started(summary=summary):
            return f"Started: {summary}"
        case Thought(text=text, agent=agent):
            return _by(agent) + text
        case ToolStart(tool=tool, args=args, agent=agent):
            return _by(agent) + f"{tool} {_args(args)}".rstrip()
        case ToolEnd(tool=tool, status=status, summary=summary, agent=agent):
            return _by(agent) + f"{tool}: {status}" + (f" — {summary}" if summary.strip() else "")
        case SubagentStart(agent=agent, task=task):
            return f"{agent} agent started" + (f": {task}" if task.strip() else "")
        case SubagentEnd(agent=agent, summary=summary):
            return f"{agent} agent finished" + (f": {summary}" if summary.strip() else "")
        case Question(text=text):
            return f"Needs an answer: {text}"
        case ApprovalRequest(action=action, target=target, reason=reason):
            return f"Approval requested: {action} on {target}" + (f" ({reason})" if reason.strip() else "")
        case ApprovalDecided(approval_id=approval_id, decision=decision, by=by, outcome=outcome):
            what = approvals.get(approval_id, f"approval {approval_id}")
            who = f" by {by}" if by else ""
            return f"{what}: {decision}{who}" + (f" — {outcome}" if outcome.strip() else "")
        case Interrupted(by=by):
            return f"Interrupted by {by}"
        case Resumed(by=by):
            return f"Resumed by {by}"
        case Result(rca=rca):
            return f"Root cause found: {rca.summary}"
        case Answer(text=text):
            return f"Answered: {text}"
        case Error(message=message):
            return f"Failed: {message}"
        case SimilarIncidents(text=text):
            return text
        case FirstFinding(resource=resource, symptom=symptom, evidence=evidence, source=source):
            return f"First finding: {resource}: {symptom}" + (
                f' ("{evidence}", {source})' if evidence else ""
            )


def _by(agent: str) -> str:
    return "" if agent == _PLANNER else f"{agent}: "


def _args(args: Mapping[str, Any]) -> str:
    cleaned = scrub_json(dict(args))
    return ", ".join(
        f"{key}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)}"
        for key, value in cleaned.items()
    )


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _duration(run: Run) -> float | None:
    if run.started_at is None or run.finished_at is None:
        return None
    return round(max(0.0, (run.finished_at - run.started_at).total_seconds()), 3)
