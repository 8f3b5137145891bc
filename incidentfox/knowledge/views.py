"""The knowledge base in the config API: a team's runbooks and past incidents
(``/api/v1/orgs/{org}/nodes/{team}/knowledge``).

- ``GET …/knowledge`` lists the team's runbooks and past incidents and says whether search uses
  embeddings or, when the model could not load, BM25 alone (and why).
- ``POST …/knowledge/runbooks`` adds or replaces markdown runbooks sent as JSON
  ``{"documents": [{"path": "runbooks/pg.md", "content": "# …"}]}``; a document that cannot be read
  is skipped and reported with the reason (``skipped``), the others are added. When none could be
  added the answer is 400 ``unreadable_runbook`` with every reason.
- ``PUT …/knowledge/runbooks/{path}`` adds or replaces one runbook sent as the raw file
  (``text/markdown``), refused with 400 and the reason when it cannot be read (not UTF-8, binary…).
- ``DELETE …/knowledge/runbooks/{path}`` removes one.
- ``POST …/knowledge/github`` imports (or refreshes) the markdown runbooks under a path of a GitHub
  repository the team claims, ``{"repo": "acme/runbooks", "path": "docs/runbooks", "ref": null}``,
  with the team's GitHub integration; unreadable files are ``skipped`` with the reason, runbooks of that
  path whose file is gone are ``removed``; GitHub's refusal is 400 ``github_import_failed``.
- ``GET …/knowledge/search?q=…&kind=runbook|incident&limit=5`` searches as the knowledge toolset does.

Who may: the team's own token and its org's admins (a team token of another team gets 403, as for
config). The node must be a team: knowledge belongs to teams.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from incidentfox.bot.http_json import json_response, read_json_object
from incidentfox.config.permissions import Principal, require_node_read
from incidentfox.config.views import CONFIG_SERVICE, authenticated, int_query
from incidentfox.errors import BadRequest, NotFound, PayloadTooLarge
from incidentfox.knowledge.github_source import GitHubSourceError, import_github_runbooks
from incidentfox.knowledge.models import KINDS
from incidentfox.knowledge.runbooks import UnreadableRunbook
from incidentfox.knowledge.store import KnowledgeBase, KnowledgeHit, TeamKey, UploadReport

KNOWLEDGE_BASE = web.AppKey("knowledge_base", KnowledgeBase)
MAX_DOCUMENTS = 50
SEARCH_MAX = 20
EXCERPT_CHARS = 600


async def _team(request: web.Request, principal: Principal) -> TeamKey:
    org, node = request.match_info["org"], request.match_info["node"]
    require_node_read(principal, org, node)
    found = await request.app[CONFIG_SERVICE].get_node(principal, org, node)
    if found["kind"] != "team":
        raise BadRequest(
            f"{node!r} is a {found['kind']}; knowledge belongs to teams, so give a team id", code="not_a_team"
        )
    return TeamKey(org, node)


@authenticated
async def list_knowledge(request: web.Request, principal: Principal) -> web.StreamResponse:
    team = await _team(request, principal)
    knowledge = request.app[KNOWLEDGE_BASE]
    await knowledge.sync_incidents(team)
    return json_response({"documents": await knowledge.documents(team), "search": search_mode(knowledge)})


@authenticated
async def add_runbooks(request: web.Request, principal: Principal) -> web.StreamResponse:
    team = await _team(request, principal)
    body = await read_json_object(request)
    documents = body.get("documents")
    if not isinstance(documents, list) or not documents or len(documents) > MAX_DOCUMENTS:
        raise BadRequest(
            f'send {{"documents": [{{"path": "runbooks/x.md", "content": "# …"}}]}} with 1 to '
            f"{MAX_DOCUMENTS} documents",
            code="invalid_documents",
        )
    pairs = [(d.get("path"), d.get("content")) if isinstance(d, dict) else (None, None) for d in documents]
    report = await request.app[KNOWLEDGE_BASE].add_runbooks(team, pairs)
    return _report(report)


@authenticated
async def import_github(request: web.Request, principal: Principal) -> web.StreamResponse:
    team = await _team(request, principal)
    body = await read_json_object(request)
    repo, path, ref = body.get("repo"), body.get("path", ""), body.get("ref")
    if not isinstance(repo, str) or not isinstance(path, str) or not (ref is None or isinstance(ref, str)):
        raise BadRequest(
            'send {"repo": "owner/name", "path": "docs/runbooks", "ref": null}', code="invalid_github_source"
        )
    config = await request.app[CONFIG_SERVICE].effective_config(team.org_id, team.team_node_id)
    try:
        imported = await import_github_runbooks(
            request.app[KNOWLEDGE_BASE], team, config, repo=repo, path=path, ref=ref or None
        )
    except GitHubSourceError as exc:
        raise BadRequest(str(exc), code="github_import_failed") from None
    report = imported.report
    return json_response(
        {
            "added": [{"path": a.path, "title": a.title, "passages": a.passages} for a in report.added],
            "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
            "removed": imported.removed,
            "more": imported.more,
        },
        status=200,
    )


@authenticated
async def put_runbook(request: web.Request, principal: Principal) -> web.StreamResponse:
    team = await _team(request, principal)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge("the runbook is larger than 1 MiB") from exc
    report = await request.app[KNOWLEDGE_BASE].add_runbooks(team, [(request.match_info["path"], raw)])
    return _report(report)


@authenticated
async def delete_runbook(request: web.Request, principal: Principal) -> web.StreamResponse:
    team = await _team(request, principal)
    path = request.match_info["path"]
    try:
        removed = await request.app[KNOWLEDGE_BASE].remove_runbook(team, path)
    except UnreadableRunbook as exc:
        raise BadRequest(str(exc), code="invalid_path") from exc
    if not removed:
        raise NotFound(f"the team has no runbook {path[:100]!r}", code="unknown_runbook")
    return web.Response(status=204)


@authenticated
async def search(request: web.Request, principal: Principal) -> web.StreamResponse:
    team = await _team(request, principal)
    query = (request.query.get("q") or "").strip()
    if not query:
        raise BadRequest("give the words to look for as q", code="missing_query")
    kind = request.query.get("kind") or None
    if kind is not None and kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(KINDS)}", code="invalid_kind")
    limit: int = int_query(request, "limit", 5, maximum=SEARCH_MAX)
    knowledge = request.app[KNOWLEDGE_BASE]
    found = await knowledge.search(team, query, kinds=(kind,) if kind else None, limit=limit)
    return json_response(
        {
            "results": [hit_json(hit) for hit in found.hits],
            "searched": found.searched,
            "search": search_mode(knowledge),
        }
    )


def search_mode(knowledge: KnowledgeBase) -> dict[str, Any]:
    state = knowledge.embeddings
    mode = {"mode": "hybrid" if state.ready else "keyword", "embedding_model": knowledge.embedder.name}
    return mode if state.ready else {**mode, "reason": state.reason}


def hit_json(hit: KnowledgeHit, *, excerpt: int = EXCERPT_CHARS) -> dict[str, Any]:
    """A result as the API and the knowledge toolset show it, with its citation first."""
    text = hit.text if len(hit.text) <= excerpt else hit.text[: excerpt - 1] + "…"
    row: dict[str, Any] = {"cite": hit.citation, "kind": hit.kind, "title": hit.title}
    if hit.kind == "runbook":
        row["path"] = hit.source
        if hit.section:
            row["section"] = hit.section
    else:
        row["run_id"] = hit.source
        if hit.happened_at is not None:
            row["finished_at"] = hit.happened_at.isoformat().replace("+00:00", "Z")
        row["feedback"] = {"up": hit.votes_up, "down": hit.votes_down}
    if hit.url:
        row["url"] = hit.url
    row["score"] = hit.score
    row["text"] = text
    return row


def _report(report: UploadReport) -> web.StreamResponse:
    skipped = [{"path": s.path, "reason": s.reason} for s in report.skipped]
    if not report.added:
        reasons = "; ".join(f"{s['path'] or 'a document'}: {s['reason']}" for s in skipped)
        raise BadRequest(
            f"No runbook was added: {reasons}", code="unreadable_runbook", details={"skipped": skipped}
        )
    added = [{"path": a.path, "title": a.title, "passages": a.passages} for a in report.added]
    return json_response({"added": added, "skipped": skipped}, status=201)


def add_routes(app: web.Application, knowledge: KnowledgeBase) -> None:
    """Mount the routes and the team knowledge base they serve (before the app starts)."""
    app[KNOWLEDGE_BASE] = knowledge
    base = "/api/v1/orgs/{org}/nodes/{node}/knowledge"
    app.router.add_get(base, list_knowledge)
    app.router.add_get(base + "/search", search)
    app.router.add_post(base + "/runbooks", add_runbooks)
    app.router.add_post(base + "/github", import_github)
    app.router.add_put(base + "/runbooks/{path:.+}", put_runbook)
    app.router.add_delete(base + "/runbooks/{path:.+}", delete_runbook)
