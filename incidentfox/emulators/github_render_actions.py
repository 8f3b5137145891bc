"""The GitHub emulator's JSON for checks and Actions: check runs, workflow runs and jobs, in the shapes
GitHub's REST API documents (and that ``workflow_run``/``check_suite`` webhooks embed)."""

from __future__ import annotations

from incidentfox.emulators.github_actions import Job
from incidentfox.emulators.github_models import CheckRun, Repo, WorkflowRun, fake_sha
from incidentfox.emulators.github_render import Obj, Urls, iso, node_id, repo_json, user_json


def _minimal_pulls(urls: Urls, repo: Repo, numbers: list[int]) -> list[Obj]:
    """The ``pull_requests`` entries of runs, suites and check runs: number, url, head and base."""
    mini = {"id": repo.id, "url": urls.repo(repo), "name": repo.name}
    return [
        {
            "url": f"{urls.repo(repo)}/pulls/{n}",
            "id": repo.pulls[n].id,
            "number": n,
            "head": {"ref": repo.pulls[n].head, "sha": repo.pulls[n].head_sha, "repo": mini},
            "base": {"ref": repo.pulls[n].base, "sha": repo.pulls[n].base_sha, "repo": mini},
        }
        for n in numbers
        if n in repo.pulls
    ]


GITHUB_ACTIONS_APP: Obj = {
    "id": 15368,
    "slug": "github-actions",
    "node_id": "MDM6QXBwMTUzNjg=",
    "name": "GitHub Actions",
    "description": "Automate your workflow from idea to production",
    "external_url": "https://help.github.com/en/actions",
    "html_url": "https://github.com/apps/github-actions",
    "events": ["check_run", "check_suite", "workflow_job", "workflow_run"],
}


def app_json(slug: str) -> Obj:
    if slug == "github-actions":
        return dict(GITHUB_ACTIONS_APP)
    return {
        "id": int(fake_sha("app", slug)[:6], 16),
        "slug": slug,
        "node_id": node_id("App", slug),
        "name": slug,
        "html_url": f"https://github.com/apps/{slug}",
        "events": ["check_run", "check_suite"],
    }


def check_run_json(urls: Urls, repo: Repo, check: CheckRun) -> Obj:
    api = f"{urls.repo(repo)}/check-runs/{check.id}"
    numbers = [n for n, pr in repo.pulls.items() if pr.head_sha == check.head_sha]
    details = (
        f"{urls.web(repo)}/actions/runs/{repo.jobs[check.id].run_id}/job/{check.id}"
        if check.id in repo.jobs
        else f"https://ci.example.com/checks/{check.id}"
    )
    return {
        "id": check.id,
        "name": check.name,
        "node_id": node_id("CheckRun", check.id),
        "head_sha": check.head_sha,
        "external_id": "",
        "url": api,
        "html_url": f"{urls.web(repo)}/runs/{check.id}",
        "details_url": details,
        "status": check.status,
        "conclusion": check.conclusion,
        "started_at": iso(check.started_at),
        "completed_at": iso(check.completed_at),
        "output": {
            "title": check.title or None,
            "summary": check.summary or None,
            "text": check.text or None,
            "annotations_count": 0,
            "annotations_url": f"{api}/annotations",
        },
        "check_suite": {"id": check.check_suite_id},
        "app": app_json(check.app_slug),
        "pull_requests": _minimal_pulls(urls, repo, numbers),
    }


def run_json(urls: Urls, repo: Repo, run: WorkflowRun) -> Obj:
    api = f"{urls.repo(repo)}/actions/runs/{run.id}"
    head = repo.commits.get(run.head_sha)
    head_commit = {
        "id": run.head_sha,
        "tree_id": fake_sha("tree", run.head_sha),
        "message": head.message if head else run.display_title,
        "timestamp": iso(head.date if head else run.created_at),
        "author": {"name": run.actor.login, "email": run.actor.email},
        "committer": {"name": run.actor.login, "email": run.actor.email},
    }
    return {
        "id": run.id,
        "name": run.name,
        "node_id": node_id("WorkflowRun", run.id),
        "head_branch": run.head_branch,
        "head_sha": run.head_sha,
        "path": run.path,
        "display_title": run.display_title,
        "run_number": run.run_number,
        "event": run.event,
        "status": run.status,
        "conclusion": run.conclusion,
        "workflow_id": run.workflow_id,
        "check_suite_id": run.check_suite_id,
        "check_suite_node_id": node_id("CheckSuite", run.check_suite_id),
        "url": api,
        "html_url": f"{urls.web(repo)}/actions/runs/{run.id}",
        "pull_requests": _minimal_pulls(urls, repo, run.pull_requests),
        "created_at": iso(run.created_at),
        "updated_at": iso(run.updated_at),
        "actor": user_json(urls, run.actor),
        "triggering_actor": user_json(urls, run.actor),
        "run_attempt": run.run_attempt,
        "referenced_workflows": [],
        "run_started_at": iso(run.created_at),
        "jobs_url": f"{api}/jobs",
        "logs_url": f"{api}/logs",
        "check_suite_url": f"{urls.repo(repo)}/check-suites/{run.check_suite_id}",
        "artifacts_url": f"{api}/artifacts",
        "cancel_url": f"{api}/cancel",
        "rerun_url": f"{api}/rerun",
        "previous_attempt_url": None,
        "workflow_url": f"{urls.repo(repo)}/actions/workflows/{run.workflow_id}",
        "head_commit": head_commit,
        "repository": repo_json(urls, repo),
        "head_repository": repo_json(urls, repo),
    }


def job_json(urls: Urls, repo: Repo, job: Job) -> Obj:
    run = repo.runs[job.run_id]
    return {
        "id": job.id,
        "run_id": job.run_id,
        "workflow_name": run.name,
        "head_branch": run.head_branch,
        "run_url": f"{urls.repo(repo)}/actions/runs/{job.run_id}",
        "run_attempt": run.run_attempt,
        "node_id": node_id("CheckRun", job.id),
        "head_sha": run.head_sha,
        "url": f"{urls.repo(repo)}/actions/jobs/{job.id}",
        "html_url": f"{urls.web(repo)}/actions/runs/{job.run_id}/job/{job.id}",
        "status": job.status,
        "conclusion": job.conclusion,
        "created_at": iso(job.started_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "name": job.name,
        "steps": [
            {
                "name": step.name,
                "status": step.status,
                "conclusion": step.conclusion,
                "number": step.number,
                "started_at": iso(step.started_at),
                "completed_at": iso(step.completed_at),
            }
            for step in job.steps
        ],
        "check_run_url": f"{urls.repo(repo)}/check-runs/{job.id}",
        "labels": ["ubuntu-latest"],
        "runner_id": 7,
        "runner_name": job.runner_name,
        "runner_group_id": 2,
        "runner_group_name": "GitHub Actions",
    }
