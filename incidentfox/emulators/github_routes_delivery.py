"""The GitHub emulator's delivery endpoints: what was built, compared and shipped.

* ``GET /repos/{owner}/{repo}/compare/{base}...{head}``: ``status`` (``identical``, ``ahead``,
  ``behind``, ``diverged``), ``ahead_by``, ``behind_by``, ``total_commits``, the commits from the merge
  base to ``head`` oldest first (``per_page`` default 250, at most 1000, with ``Link``) and the changed
  files from the merge base's tree to ``head``'s (at most 300). An unknown ref answers 404; refs with
  no common history answer 404 ``No common ancestor between …``.
* ``GET …/deployments`` (``sha``, ``ref``, ``task``, ``environment`` filters, newest first) and
  ``GET …/deployments/{id}/statuses`` (newest first).
* ``GET …/releases`` (newest first, drafts included as for a token with push access).
* ``GET …/actions/workflows/{workflow_id}/runs``: the runs of one workflow, named by its id or its file
  name (``ci.yml``), with the filters of the repository's run list; an unknown workflow is a 404.

Shapes follow GitHub's REST reference; route names are GitHub's operation ids, as in
``github_routes``.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from incidentfox.emulators import github_render as render
from incidentfox.emulators import github_render_actions as actions_render
from incidentfox.emulators.github_models import (
    ChangedFile,
    Commit,
    Deployment,
    DeploymentStatus,
    Release,
    Repo,
    WorkflowRun,
)
from incidentfox.emulators.github_render import Obj, Urls, iso, node_id, user_json
from incidentfox.emulators.github_routes import GitHubRoutes, github_error, not_found

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
COMPARE_MAX_FILES = 300
_RUN_STATUSES = {"completed", "in_progress", "queued", "requested", "waiting", "pending"}


def deployment_json(urls: Urls, repo: Repo, deployment: Deployment) -> Obj:
    api = f"{urls.repo(repo)}/deployments/{deployment.id}"
    latest = deployment.statuses[-1].created_at if deployment.statuses else deployment.created_at
    return {
        "url": api,
        "id": deployment.id,
        "node_id": node_id("Deployment", deployment.id),
        "sha": deployment.sha,
        "ref": deployment.ref,
        "task": deployment.task,
        "payload": {},
        "original_environment": deployment.environment,
        "environment": deployment.environment,
        "description": deployment.description or None,
        "creator": user_json(urls, deployment.creator),
        "created_at": iso(deployment.created_at),
        "updated_at": iso(latest),
        "statuses_url": f"{api}/statuses",
        "repository_url": urls.repo(repo),
        "transient_environment": False,
        "production_environment": deployment.production_environment,
    }


def deployment_status_json(urls: Urls, repo: Repo, deployment: Deployment, status: DeploymentStatus) -> Obj:
    api = f"{urls.repo(repo)}/deployments/{deployment.id}"
    return {
        "url": f"{api}/statuses/{status.id}",
        "id": status.id,
        "node_id": node_id("DeploymentStatus", status.id),
        "state": status.state,
        "creator": user_json(urls, status.creator),
        "description": status.description,
        "environment": deployment.environment,
        "target_url": status.log_url,
        "log_url": status.log_url,
        "environment_url": status.environment_url,
        "created_at": iso(status.created_at),
        "updated_at": iso(status.created_at),
        "deployment_url": api,
        "repository_url": urls.repo(repo),
    }


def release_json(urls: Urls, repo: Repo, release: Release) -> Obj:
    api = f"{urls.repo(repo)}/releases/{release.id}"
    web_url = urls.web(repo)
    return {
        "url": api,
        "html_url": f"{web_url}/releases/tag/{release.tag_name}",
        "assets_url": f"{api}/assets",
        "upload_url": f"https://uploads.github.com/repos/{repo.full_name}/releases/{release.id}/assets{{?name,label}}",
        "tarball_url": f"{urls.repo(repo)}/tarball/{release.tag_name}",
        "zipball_url": f"{urls.repo(repo)}/zipball/{release.tag_name}",
        "id": release.id,
        "node_id": node_id("Release", release.id),
        "tag_name": release.tag_name,
        "target_commitish": release.target_commitish,
        "name": release.name,
        "body": release.body,
        "draft": release.draft,
        "prerelease": release.prerelease,
        "created_at": iso(release.created_at),
        "published_at": iso(release.published_at),
        "author": user_json(urls, release.author),
        "assets": [],
    }


def _merge_base(repo: Repo, base: Commit, head: Commit) -> Commit | None:
    """The newest commit both ``base`` and ``head`` reach."""
    reachable = {c.sha for c in repo.history(base)}
    return next((c for c in repo.history(head) if c.sha in reachable), None)


def compared_files(repo: Repo, merge_base: Commit, head: Commit, ahead: list[Commit]) -> list[ChangedFile]:
    """The files that differ between the merge base's tree and ``head``'s (real diffs), plus the
    patch-only changes of the commits in between, which leave no trace in a tree."""
    before, after = repo.tree(merge_base), repo.tree(head)
    changed = [
        ChangedFile.between(path, before.get(path), after.get(path))
        for path in sorted(set(before) | set(after))
        if before.get(path) != after.get(path)
    ]
    seen = {f.filename for f in changed}
    for commit in ahead:
        for change in commit.files:
            if change.content is None and change.status != "removed" and change.filename not in seen:
                changed.append(change)
                seen.add(change.filename)
    return changed


class DeliveryRoutes:
    """Handlers registered beside ``GitHubRoutes``'s, sharing its world, URLs and pagination."""

    def __init__(self, routes: GitHubRoutes) -> None:
        self.routes = routes

    @property
    def urls(self) -> Urls:
        return self.routes.urls

    def register(self, app: web.Application) -> dict[AbstractRoute, str]:
        repo = "/repos/{owner}/{repo}"
        table: list[tuple[str, str, Handler]] = [
            (f"{repo}/compare/{{basehead}}", "repos.compare_commits", self.compare),
            (f"{repo}/deployments", "repos.list_deployments", self.deployments),
            (
                f"{repo}/deployments/{{id:\\d+}}/statuses",
                "repos.list_deployment_statuses",
                self.deployment_statuses,
            ),
            (f"{repo}/releases", "repos.list_releases", self.releases),
            (f"{repo}/actions/workflows/{{workflow}}/runs", "actions.list_workflow_runs", self.workflow_runs),
        ]
        return {app.router.add_route("GET", path, handler): name for path, name, handler in table}

    def _repo(self, request: web.Request) -> Repo | None:
        return self.routes.world.repo(f"{request.match_info['owner']}/{request.match_info['repo']}")

    async def compare(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        base_ref, dots, head_ref = request.match_info["basehead"].partition("...")
        if repo is None or not dots:
            return not_found()
        base, head = repo.resolve(base_ref), repo.resolve(head_ref)
        if base is None or head is None:
            return not_found()
        merge_base = _merge_base(repo, base, head)
        if merge_base is None:
            return github_error(404, f"No common ancestor between {base_ref} and {head_ref}.")
        from_head, from_base = repo.history(head), repo.history(base)
        head_shas, base_shas = {c.sha for c in from_head}, {c.sha for c in from_base}
        ahead = [c for c in reversed(from_head) if c.sha not in base_shas]
        behind = [c for c in from_base if c.sha not in head_shas]
        status = (
            "identical"
            if not ahead and not behind
            else "ahead"
            if not behind
            else "behind"
            if not ahead
            else "diverged"
        )
        per_page = min(max(_int(request.query.get("per_page"), 250), 1), 1000)
        page = max(_int(request.query.get("page"), 1), 1)
        chunk = ahead[(page - 1) * per_page : page * per_page]
        files = compared_files(repo, merge_base, head, ahead)[:COMPARE_MAX_FILES]
        web_url = f"{self.urls.web(repo)}/compare/{base_ref}...{head_ref}"
        body = {
            "url": f"{self.urls.repo(repo)}/compare/{base_ref}...{head_ref}",
            "html_url": web_url,
            "permalink_url": f"{self.urls.web(repo)}/compare/{base.sha}...{head.sha}",
            "diff_url": f"{web_url}.diff",
            "patch_url": f"{web_url}.patch",
            "base_commit": render.commit_json(self.urls, repo, base),
            "merge_base_commit": render.commit_json(self.urls, repo, merge_base),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "commits": [render.commit_json(self.urls, repo, c) for c in chunk],
            "files": [render.changed_file_json(self.urls, repo, f, head.sha) for f in files],
        }
        headers: dict[str, str] = {}
        last = max(1, math.ceil(len(ahead) / per_page))
        if page < last:
            query = [(k, v) for k, v in request.query.items() if k != "page"]
            base_link = f"{self.urls.api}{request.path}"
            headers["Link"] = (
                f'<{base_link}?{urlencode([*query, ("page", str(page + 1))])}>; rel="next", '
                f'<{base_link}?{urlencode([*query, ("page", str(last))])}>; rel="last"'
            )
        return web.json_response(body, headers=headers)

    async def deployments(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return not_found()
        q = request.query
        chosen = [
            d
            for d in repo.deployments.values()
            if (not q.get("sha") or d.sha == q["sha"])
            and (not q.get("ref") or d.ref == q["ref"])
            and (not q.get("task") or d.task == q["task"])
            and (not q.get("environment") or d.environment == q["environment"])
        ]
        chosen.sort(key=lambda d: (d.created_at, d.id), reverse=True)
        return self.routes.paginate(request, chosen, lambda d: deployment_json(self.urls, repo, d))

    async def deployment_statuses(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        deployment = repo.deployments.get(int(request.match_info["id"])) if repo else None
        if repo is None or deployment is None:
            return not_found()
        statuses = sorted(deployment.statuses, key=lambda s: (s.created_at, s.id), reverse=True)
        return self.routes.paginate(
            request, statuses, lambda s: deployment_status_json(self.urls, repo, deployment, s)
        )

    async def releases(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return not_found()
        chosen = sorted(repo.releases.values(), key=lambda r: (r.created_at, r.id), reverse=True)
        return self.routes.paginate(request, chosen, lambda r: release_json(self.urls, repo, r))

    async def workflow_runs(self, request: web.Request) -> web.StreamResponse:
        repo = self._repo(request)
        if repo is None:
            return not_found()
        wanted = request.match_info["workflow"]
        mine = [r for r in repo.runs.values() if _is_workflow(r, wanted)]
        if not mine:
            return not_found()
        q = request.query
        status = q.get("status")
        runs = [
            r
            for r in mine
            if (not q.get("branch") or r.head_branch == q["branch"])
            and (not q.get("event") or r.event == q["event"])
            and (not q.get("head_sha") or r.head_sha == q["head_sha"])
            and (not q.get("actor") or r.actor.login == q["actor"])
            and (not status or (r.status if status in _RUN_STATUSES else r.conclusion) == status)
        ]
        runs.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return self.routes.paginate(
            request, runs, lambda r: actions_render.run_json(self.urls, repo, r), wrap="workflow_runs"
        )


def _is_workflow(run: WorkflowRun, wanted: str) -> bool:
    return wanted == str(run.workflow_id) or wanted == run.path.rsplit("/", 1)[-1]


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default
