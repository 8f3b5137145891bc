"""The GitHub emulator's REST endpoints: aiohttp handlers over a ``GitHubWorld``.

Each route has the name GitHub's OpenAPI description gives its operation (``pulls.get``,
``actions.download_job_logs_for_workflow_run``, …), which is what ``GitHubEmulator.fail_next`` and
the recorded calls use. Lists paginate as GitHub's do: ``per_page`` (default 30, at most 100) and
``page``, with a ``Link`` header carrying ``next``/``last``/``first``/``prev``; wrapped lists (runs,
jobs, check runs, search) answer ``{"total_count": n, "<items>": [...]}``.

Logs are not served by the API itself: the log endpoints answer ``302 Found`` with a short-lived
signed URL (``/_blobs/...?se=&sig=``) that serves the job's plain-text log or the run's zip, as
GitHub's redirect to its blob storage does. The signed URL needs no token.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from incidentfox.emulators import github_render as render
from incidentfox.emulators import github_render_actions as actions_render
from incidentfox.emulators.github_actions import run_logs_zip
from incidentfox.emulators.github_models import Repo
from incidentfox.emulators.github_render import Obj, Urls, error_json
from incidentfox.emulators.github_search import parse_query, search_files, search_item
from incidentfox.emulators.github_store import GitHubWorld

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DIFF_MEDIA_TYPES = ("application/vnd.github.diff", "application/vnd.github.v3.diff")
RAW_MEDIA_TYPES = ("application/vnd.github.raw", "application/vnd.github.v3.raw")
JSON_BODY: web.RequestKey[object] = web.RequestKey("json_body", object)
"""The request's parsed JSON body (or ``None``), set by the emulator's gate before any handler."""
RATE_LIMIT: web.RequestKey[tuple[int, int, int, int]] = web.RequestKey("rate_limit")
"""(limit, remaining, reset epoch, used) after counting this request, set by the gate."""
BLOB_TTL_S = 60
MAX_COMMENT_CHARS = 65_536


def github_error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response(error_json(message, status, **extra), status=status)


def not_found() -> web.Response:
    return github_error(404, "Not Found")


def validation_failed(resource: str, field: str, code: str = "missing_field") -> web.Response:
    errors = [{"resource": resource, "code": code, "field": field}]
    return github_error(422, "Validation Failed", errors=errors)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


def _time(value: str | None) -> datetime | None:
    """An ISO 8601 query parameter (``2025-03-01T10:00:00Z``), or ``None`` when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _accepts(request: web.Request, media_types: tuple[str, ...]) -> bool:
    accept = request.headers.get("Accept", "")
    return any(media in accept for media in media_types)


class GitHubRoutes:
    """The handlers; ``names`` maps each registered aiohttp route to its GitHub operation name."""

    def __init__(self, world: GitHubWorld, urls: Callable[[], Urls]) -> None:
        self.world = world
        self._urls = urls
        self.names: dict[AbstractRoute, str] = {}
        self._blob_key = hashlib.sha256(str(time.time_ns()).encode()).digest()

    @property
    def urls(self) -> Urls:
        return self._urls()

    def register(self, app: web.Application) -> None:
        repo = "/repos/{owner}/{repo}"
        table: list[tuple[str, str, str, Handler]] = [
            ("GET", "/rate_limit", "rate_limit.get", self.rate_limit),
            ("GET", "/user", "users.get_authenticated", self.authenticated_user),
            ("GET", repo, "repos.get", self.get_repo),
            ("GET", f"{repo}/commits", "repos.list_commits", self.list_commits),
            ("GET", f"{repo}/commits/{{ref}}", "repos.get_commit", self.get_commit),
            ("GET", f"{repo}/commits/{{ref}}/check-runs", "checks.list_for_ref", self.check_runs_for_ref),
            ("GET", f"{repo}/check-runs/{{id:\\d+}}", "checks.get", self.get_check_run),
            ("GET", f"{repo}/pulls", "pulls.list", self.list_pulls),
            ("GET", f"{repo}/pulls/{{number:\\d+}}", "pulls.get", self.get_pull),
            ("GET", f"{repo}/pulls/{{number:\\d+}}/files", "pulls.list_files", self.pull_files),
            ("GET", f"{repo}/pulls/{{number:\\d+}}/comments", "pulls.list_review_comments", self.reviews),
            (
                "POST",
                f"{repo}/pulls/{{number:\\d+}}/comments/{{id:\\d+}}/replies",
                "pulls.create_reply_for_review_comment",
                self.reply_to_review,
            ),
            ("GET", f"{repo}/contents", "repos.get_content", self.contents),
            ("GET", f"{repo}/contents/{{path:.*}}", "repos.get_content", self.contents),
            ("POST", f"{repo}/issues", "issues.create", self.create_issue),
            ("GET", f"{repo}/issues/{{number:\\d+}}", "issues.get", self.get_issue),
            ("GET", f"{repo}/issues/{{number:\\d+}}/comments", "issues.list_comments", self.list_comments),
            ("POST", f"{repo}/issues/{{number:\\d+}}/comments", "issues.create_comment", self.add_comment),
            ("GET", f"{repo}/issues/comments/{{id:\\d+}}", "issues.get_comment", self.get_comment),
            ("PATCH", f"{repo}/issues/comments/{{id:\\d+}}", "issues.update_comment", self.edit_comment),
            ("GET", f"{repo}/actions/runs", "actions.list_workflow_runs_for_repo", self.list_runs),
            ("GET", f"{repo}/actions/runs/{{id:\\d+}}", "actions.get_workflow_run", self.get_run),
            ("GET", f"{repo}/actions/runs/{{id:\\d+}}/jobs", "actions.list_jobs_for_workflow_run", self.jobs),
            (
                "GET",
                f"{repo}/actions/runs/{{id:\\d+}}/logs",
                "actions.download_workflow_run_logs",
                self.run_logs,
            ),
            ("GET", f"{repo}/actions/jobs/{{id:\\d+}}", "actions.get_job_for_workflow_run", self.get_job),
            (
                "GET",
                f"{repo}/actions/jobs/{{id:\\d+}}/logs",
                "actions.download_job_logs_for_workflow_run",
                self.job_logs,
            ),
            ("GET", "/search/code", "search.code", self.search_code),
            ("GET", "/_blobs/{kind}/{id:\\d+}", "blobs.get", self.blob),
        ]
        for method, path, name, handler in table:
            route = app.router.add_route(method, path, handler)
            self.names[route] = name
        self.names[app.router.add_route("*", "/{tail:.*}", self.unknown)] = "unknown"

    # -- helpers ------------------------------------------------------------------------------------

    def _repo(self, request: web.Request) -> Repo | None:
        return self.world.repo(f"{request.match_info['owner']}/{request.match_info['repo']}")

    def paginate(
        self,
        request: web.Request,
        items: list[Any],
        render_item: Callable[[Any], Obj],
        *,
        wrap: str | None = None,
    ) -> web.Response:
        per_page = min(max(_int(request.query.get("per_page"), 30), 1), 100)
        page = max(_int(request.query.get("page"), 1), 1)
        chunk = items[(page - 1) * per_page : page * per_page]
        last = max(1, math.ceil(len(items) / per_page))

        def link(target: int, rel: str) -> str:
            query = [(k, v) for k, v in request.query.items() if k != "page"] + [("page", str(target))]
            return f'<{self.urls.api}{request.path}?{urlencode(query)}>; rel="{rel}"'

        links = []
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(min(page - 1, last), "prev")]
        rendered = [render_item(item) for item in chunk]
        body: Any = rendered if wrap is None else {"total_count": len(items), wrap: rendered}
        if wrap == "items":
            body["incomplete_results"] = False
        headers = {"Link": ", ".join(links)} if links else {}
        return web.json_response(body, headers=headers)

    def sign(self, kind: str, ident: int) -> str:
        """A signed, expiring URL for a log blob (what GitHub's log endpoints redirect to)."""
        expires = int(time.time()) + BLOB_TTL_S
        sig = hmac.new(self._blob_key, f"{kind}/{ident}/{expires}".encode(), hashlib.sha256).hexdigest()
        return f"{self.urls.api}/_blobs/{kind}/{ident}?{urlencode({'se': expires, 'sig': sig})}"

    # -- repositories, commits, contents ------------------------------------------------------------

    async def rate_limit(self, request: web.Request) -> web.StreamResponse:
        limit, remaining, reset, used = request.get(RATE_LIMIT, (5000, 5000, 0, 0))
        core = {"limit": limit, "remaining": remaining, "reset": reset, "used": used, "resource": "core"}
        search = {"limit": 30, "remaining": 30, "reset": reset, "used": 0, "resource": "search"}
        graphql = {**core, "resource": "graphql"}
        return web.json_response(
            {"resources": {"core": core, "search": search, "graphql": graphql}, "rate": core}
        )

    async def authenticated_user(self, request: web.Request) -> web.StreamResponse:
        """The token's user; a GitHub App installation token has none (403), as on GitHub."""
        viewer = self.world.viewer
        if viewer.type == "Bot":
            return github_error(403, "Resource not accessible by integration")
        return web.json_response(render.user_json(self.urls, viewer))

    async def get_repo(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        return web.json_response(render.repo_json(self.urls, repo)) if repo else not_found()

    async def list_commits(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return not_found()
        if not repo.commits:
            return github_error(409, "Git Repository is empty.")
        ref = request.query.get("sha")
        head = repo.resolve(ref)
        if head is None:
            return github_error(404, f"No commit found for SHA: {ref}")
        since, until = _time(request.query.get("since")), _time(request.query.get("until"))
        path = request.query.get("path", "").strip("/")
        author = request.query.get("author")
        commits = [
            c
            for c in repo.history(head)
            if (since is None or c.date >= since)
            and (until is None or c.date <= until)
            and (not path or any(f.filename == path or f.filename.startswith(path + "/") for f in c.files))
            and (not author or author in (c.author.login, c.author.email))
        ]
        return self.paginate(request, commits, lambda c: render.commit_json(self.urls, repo, c))

    async def get_commit(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return not_found()
        commit = repo.resolve(request.match_info["ref"])
        if commit is None:
            return github_error(422, f"No commit found for SHA: {request.match_info['ref']}")
        if _accepts(request, DIFF_MEDIA_TYPES):
            diff = render.pull_diff_of(commit.files)
            return web.Response(text=diff, content_type="application/vnd.github.diff", charset="utf-8")
        return web.json_response(render.commit_json(self.urls, repo, commit, detail=True))

    async def contents(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return not_found()
        ref = request.query.get("ref") or repo.default_branch
        commit = repo.resolve(ref)
        if commit is None and (repo.commits or ref != repo.default_branch):
            return github_error(404, f"No commit found for the ref {ref}")
        tree = repo.tree(commit)
        path = request.match_info.get("path", "").strip("/")
        if path in tree:
            if _accepts(request, RAW_MEDIA_TYPES):
                return web.Response(text=tree[path], content_type="application/vnd.github.raw")
            return web.json_response(render.content_json(self.urls, repo, path, tree[path], ref))
        prefix = f"{path}/" if path else ""
        children: dict[str, tuple[str, int]] = {}
        for file_path, text in tree.items():
            if file_path.startswith(prefix):
                head, _, rest = file_path[len(prefix) :].partition("/")
                kind = "dir" if rest else "file"
                children[prefix + head] = (kind, 0 if rest else len(text.encode()))
        if not children:
            return not_found()
        entries = [
            render.directory_entry_json(self.urls, repo, p, kind, ref, size)
            for p, (kind, size) in sorted(children.items())
        ]
        return web.json_response(entries)

    # -- pull requests ------------------------------------------------------------------------------

    async def list_pulls(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return not_found()
        state = request.query.get("state", "open")
        head, base = request.query.get("head"), request.query.get("base")
        pulls = [
            pr
            for pr in repo.pulls.values()
            if state in ("all", pr.state)
            and (not base or pr.base == base)
            and (not head or f"{repo.owner.login}:{pr.head}" == head)
        ]
        sort = request.query.get("sort", "created")
        keys: dict[str, Callable[[Any], Any]] = {
            "created": lambda pr: pr.created_at,
            "updated": lambda pr: pr.updated_at,
            "popularity": lambda pr: sum(1 for c in repo.comments.values() if c.number == pr.number),
            "long-running": lambda pr: pr.created_at,
        }
        default_direction = "desc" if sort == "created" else "asc"
        descending = request.query.get("direction", default_direction) == "desc"
        pulls.sort(key=lambda pr: (keys.get(sort, keys["created"])(pr), pr.number), reverse=descending)
        return self.paginate(request, pulls, lambda pr: render.pull_json(self.urls, repo, pr))

    async def get_pull(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        pr = repo.pulls.get(int(request.match_info["number"])) if repo else None
        if repo is None or pr is None:
            return not_found()
        if _accepts(request, DIFF_MEDIA_TYPES):
            diff = render.pull_diff_of(pr.files)
            return web.Response(text=diff, content_type="application/vnd.github.diff", charset="utf-8")
        return web.json_response(render.pull_json(self.urls, repo, pr, detail=True))

    async def pull_files(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        pr = repo.pulls.get(int(request.match_info["number"])) if repo else None
        if repo is None or pr is None:
            return not_found()
        return self.paginate(
            request, pr.files, lambda f: render.changed_file_json(self.urls, repo, f, pr.head_sha)
        )

    async def reviews(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        number = int(request.match_info["number"])
        if repo is None or number not in repo.pulls:
            return not_found()
        comments = [c for c in repo.review_comments.values() if c.number == number]
        return self.paginate(request, comments, lambda c: render.review_comment_json(self.urls, repo, c))

    async def reply_to_review(self, request: web.Request) -> web.StreamResponse:
        """A reply in a line comment's review thread, by the token's identity (the bot)."""
        repo = self._repo(request)
        number, parent = int(request.match_info["number"]), int(request.match_info["id"])
        original = repo.review_comments.get(parent) if repo else None
        if repo is None or original is None or original.number != number:
            return not_found()
        text = self._comment_text(request)
        if isinstance(text, web.Response):
            return text
        reply = self.world.add_review_comment(
            repo.full_name,
            number,
            text,
            path=original.path,
            line=original.line,
            author=None,
            in_reply_to=parent,
        )
        return web.json_response(render.review_comment_json(self.urls, repo, reply), status=201)

    # -- issues and comments ------------------------------------------------------------------------

    async def get_issue(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        issue = repo.issues.get(int(request.match_info["number"])) if repo else None
        if repo is None or issue is None:
            return not_found()
        return web.json_response(render.issue_json(self.urls, repo, issue))

    async def create_issue(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return not_found()
        body = request.get(JSON_BODY)
        if not isinstance(body, dict):
            return github_error(400, "Problems parsing JSON")
        title = body.get("title")
        if not isinstance(title, str | int) or not str(title).strip():
            return validation_failed("Issue", "title")
        labels = body.get("labels") or []
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            return validation_failed("Issue", "labels", "invalid")
        issue = self.world.add_issue(
            repo.full_name,
            str(title),
            body=str(body.get("body") or ""),
            author=self.world.viewer.login,
            labels=labels,
            assignees=[str(a) for a in body.get("assignees") or []],
        )
        return web.json_response(render.issue_json(self.urls, repo, issue), status=201)

    async def list_comments(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        number = int(request.match_info["number"])
        if repo is None or number not in repo.issues:
            return not_found()
        since = _time(request.query.get("since"))
        comments = sorted(
            (
                c
                for c in repo.comments.values()
                if c.number == number and (not since or c.updated_at >= since)
            ),
            key=lambda c: (c.created_at, c.id),
        )
        return self.paginate(request, comments, lambda c: render.comment_json(self.urls, repo, c))

    def _comment_text(self, request: web.Request) -> str | web.Response:
        body = request.get(JSON_BODY)
        if not isinstance(body, dict):
            return github_error(400, "Problems parsing JSON")
        text = body.get("body")
        if not isinstance(text, str) or not text.strip():
            return validation_failed("IssueComment", "body")
        if len(text) > MAX_COMMENT_CHARS:
            return github_error(
                422, "Validation Failed", errors=["Body is too long (maximum is 65536 characters)"]
            )
        return text

    async def add_comment(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        number = int(request.match_info["number"])
        if repo is None or number not in repo.issues:
            return not_found()
        text = self._comment_text(request)
        if isinstance(text, web.Response):
            return text
        comment = self.world.add_issue_comment(repo.full_name, number, text)
        return web.json_response(render.comment_json(self.urls, repo, comment), status=201)

    async def get_comment(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        comment = repo.comments.get(int(request.match_info["id"])) if repo else None
        if repo is None or comment is None:
            return not_found()
        return web.json_response(render.comment_json(self.urls, repo, comment))

    async def edit_comment(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        comment = repo.comments.get(int(request.match_info["id"])) if repo else None
        if repo is None or comment is None:
            return not_found()
        text = self._comment_text(request)
        if isinstance(text, web.Response):
            return text
        comment.body = text
        comment.updated_at = max(datetime.now(UTC).replace(microsecond=0), comment.created_at)
        return web.json_response(render.comment_json(self.urls, repo, comment))

    # -- checks and actions -------------------------------------------------------------------------

    async def check_runs_for_ref(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return not_found()
        ref = request.match_info["ref"]
        commit = repo.resolve(ref)
        sha = commit.sha if commit else ref.lower()
        if commit is None and not re.fullmatch(r"[0-9a-f]{40}", sha):
            return github_error(422, f"No commit found for SHA: {ref}")
        name, status = request.query.get("check_name"), request.query.get("status")
        checks = [
            c
            for c in repo.check_runs.values()
            if c.head_sha == sha and (not name or c.name == name) and (not status or c.status == status)
        ]
        checks.sort(key=lambda c: -c.id)
        return self.paginate(
            request, checks, lambda c: actions_render.check_run_json(self.urls, repo, c), wrap="check_runs"
        )

    async def get_check_run(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        check = repo.check_runs.get(int(request.match_info["id"])) if repo else None
        if repo is None or check is None:
            return not_found()
        return web.json_response(actions_render.check_run_json(self.urls, repo, check))

    async def list_runs(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return not_found()
        q = request.query
        statuses = {"completed", "in_progress", "queued", "requested", "waiting", "pending"}
        status = q.get("status")
        runs = [
            r
            for r in repo.runs.values()
            if (not q.get("branch") or r.head_branch == q["branch"])
            and (not q.get("event") or r.event == q["event"])
            and (not q.get("head_sha") or r.head_sha == q["head_sha"])
            and (not q.get("actor") or r.actor.login == q["actor"])
            and (not status or (r.status if status in statuses else r.conclusion) == status)
        ]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return self.paginate(
            request, runs, lambda r: actions_render.run_json(self.urls, repo, r), wrap="workflow_runs"
        )

    async def get_run(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        run = repo.runs.get(int(request.match_info["id"])) if repo else None
        if repo is None or run is None:
            return not_found()
        return web.json_response(actions_render.run_json(self.urls, repo, run))

    async def jobs(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        run = repo.runs.get(int(request.match_info["id"])) if repo else None
        if repo is None or run is None:
            return not_found()
        jobs = [repo.jobs[job_id] for job_id in run.jobs]
        return self.paginate(
            request, jobs, lambda j: actions_render.job_json(self.urls, repo, j), wrap="jobs"
        )

    async def get_job(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        job = repo.jobs.get(int(request.match_info["id"])) if repo else None
        if repo is None or job is None:
            return not_found()
        return web.json_response(actions_render.job_json(self.urls, repo, job))

    async def job_logs(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        job_id = int(request.match_info["id"])
        if repo is None or job_id not in repo.jobs:
            return not_found()
        return web.Response(status=302, headers={"Location": self.sign("job-logs", job_id)})

    async def run_logs(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        run_id = int(request.match_info["id"])
        if repo is None or run_id not in repo.runs:
            return not_found()
        return web.Response(status=302, headers={"Location": self.sign("run-logs", run_id)})

    async def blob(self, request: web.Request) -> web.StreamResponse:
        kind, ident = request.match_info["kind"], int(request.match_info["id"])
        expires = _int(request.query.get("se"), 0)
        wanted = hmac.new(self._blob_key, f"{kind}/{ident}/{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(wanted, request.query.get("sig", "")) or expires < time.time():
            return web.Response(status=403, text="Server failed to authenticate the request.")
        for repo in self.world.repos.values():
            if kind == "job-logs" and ident in repo.jobs:
                return web.Response(text=repo.jobs[ident].log, content_type="text/plain")
            if kind == "run-logs" and ident in repo.runs:
                archive = run_logs_zip([repo.jobs[j] for j in repo.runs[ident].jobs])
                disposition = f"attachment; filename=logs_{ident}.zip"
                return web.Response(
                    body=archive, content_type="application/zip", headers={"Content-Disposition": disposition}
                )
        return web.Response(status=404, text="The specified blob does not exist.")

    # -- search -------------------------------------------------------------------------------------

    async def search_code(self, request: web.Request) -> web.StreamResponse:
        query = parse_query(request.query.get("q", ""))
        if query is None:
            return validation_failed("Search", "q", "missing")
        hits = search_files(self.world, query)
        highlight = "text-match" in request.headers.get("Accept", "")
        return self.paginate(
            request, hits, lambda hit: search_item(self.urls, hit, query.terms, highlight), wrap="items"
        )

    async def unknown(self, request: web.Request) -> web.StreamResponse:
        return not_found()
