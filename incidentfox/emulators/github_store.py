"""Seeding the GitHub emulator's world: ``GitHubWorld`` holds every repository and is the seeding API
(the emulator inherits it), so a test writes ``gh.add_repo("acme/shop")``, ``gh.add_commit(...)``,
``gh.add_pull_request(...)`` and ``gh.add_workflow_run(...)``; ``add_deployment`` and ``add_release``
seed what was shipped. Repository names are matched case-insensitively, as GitHub does.

Merged pull requests land as merge commits on their base branch, so commit history, pull requests and
file contents agree. Workflow runs get their jobs' steps, logs (``github_actions``) and check runs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from incidentfox.emulators.github_actions import JobSpec, build_job
from incidentfox.emulators.github_models import (
    ChangedFile,
    CheckRun,
    Commit,
    Deployment,
    DeploymentStatus,
    Issue,
    IssueComment,
    PullRequest,
    Release,
    Repo,
    ReviewComment,
    User,
    WorkflowRun,
    fake_sha,
    utc_now,
)


class GitHubWorld:
    """Everything the emulator serves, and the helpers that seed it."""

    def __init__(self, *, bot_login: str = "incidentfox[bot]") -> None:
        self.repos: dict[str, Repo] = {}
        self.users: dict[str, User] = {}
        self._user_ids = itertools.count(583_231)
        self._repo_ids = itertools.count(700_000_001)
        self._pull_ids = itertools.count(1_900_000_001)
        self._issue_ids = itertools.count(2_400_000_001)
        self._comment_ids = itertools.count(2_600_000_001)
        self._run_ids = itertools.count(9_100_000_001)
        self._job_ids = itertools.count(25_800_000_001)
        self._suite_ids = itertools.count(28_300_000_001)
        self._deployment_ids = itertools.count(1_700_000_001)
        self._release_ids = itertools.count(150_000_001)
        self._run_numbers: dict[tuple[str, str], itertools.count[int]] = {}
        self.viewer = self.user(bot_login, type_="Bot")
        """The identity behind the emulator's token: the author of every comment or issue it creates."""

    def user(self, login: str, *, type_: str = "User") -> User:
        if login not in self.users:
            self.users[login] = User(login=login, id=next(self._user_ids), type=type_)
        return self.users[login]

    def repo(self, full_name: str) -> Repo | None:
        return self.repos.get(full_name.lower())

    def _repo(self, full_name: str) -> Repo:
        found = self.repo(full_name)
        if found is None:
            raise KeyError(f"seed the repository {full_name!r} first with add_repo")
        return found

    def add_repo(
        self,
        full_name: str,
        *,
        default_branch: str = "main",
        private: bool = True,
        description: str = "",
        files: Mapping[str, str] | None = None,
        owner_type: str = "Organization",
    ) -> Repo:
        """A repository whose tree starts as ``files`` (path → text); add commits to give it history."""
        owner, name = full_name.split("/", 1)
        repo = Repo(
            id=next(self._repo_ids),
            owner=self.user(owner, type_=owner_type),
            name=name,
            default_branch=default_branch,
            private=private,
            description=description,
            created_at=utc_now() - timedelta(days=400),
            base_files=dict(files or {}),
        )
        self.repos[full_name.lower()] = repo
        return repo

    def set_file(self, full_name: str, path: str, content: str) -> None:
        """Put a file in the repository's base tree (visible at every ref that does not change it)."""
        self._repo(full_name).base_files[path.strip("/")] = content

    def add_commit(
        self,
        full_name: str,
        message: str,
        *,
        author: str = "octocat",
        branch: str | None = None,
        date: datetime | None = None,
        files: Mapping[str, str | None] | None = None,
        changes: Sequence[ChangedFile] = (),
        parents: Sequence[str] | None = None,
    ) -> Commit:
        """A commit on ``branch`` (the default branch unless given); the branch moves to it.

        ``files`` maps a path to its new text (``None`` deletes it) and becomes real diffs against the
        parent; ``changes`` are taken as given (e.g. a pull request's files with their patches)."""
        repo = self._repo(full_name)
        branch = branch or repo.default_branch
        if parents is None:
            parents = [repo.branches[branch]] if branch in repo.branches else []
        date = (date or utc_now()).astimezone(UTC).replace(microsecond=0)
        before = repo.tree(repo.commits.get(parents[0]) if parents else None)
        diffs = [ChangedFile.between(path, before.get(path), text) for path, text in (files or {}).items()]
        sha = fake_sha(repo.full_name, message, date.isoformat(), *parents, len(repo.commits))
        commit = Commit(sha, message, self.user(author), date, list(parents), [*diffs, *changes])
        repo.commits[sha] = commit
        repo.branches[branch] = sha
        return commit

    def add_pull_request(
        self,
        full_name: str,
        title: str,
        *,
        head: str,
        base: str | None = None,
        author: str = "octocat",
        body: str = "",
        files: Sequence[ChangedFile] = (),
        created_at: datetime | None = None,
        merged_at: datetime | None = None,
        closed_at: datetime | None = None,
        merged_by: str | None = None,
        head_sha: str | None = None,
        draft: bool = False,
        labels: Sequence[str] = (),
    ) -> PullRequest:
        """A pull request from ``head`` into ``base``.

        Unless ``head`` is an existing branch (or ``head_sha`` is given), one commit with ``files`` is
        made on a new ``head`` branch off ``base``. With ``merged_at`` the pull request is closed and
        merged: a merge commit ("Merge pull request #N from owner/head") with the same changes lands on
        ``base`` at that time, as GitHub's merge button makes it."""
        repo = self._repo(full_name)
        base = base or repo.default_branch
        number = next(repo.numbers)
        created = (created_at or utc_now() - timedelta(hours=2)).astimezone(UTC).replace(microsecond=0)
        base_commit = repo.resolve(base)
        if head_sha is None and head not in repo.branches:
            parents = [base_commit.sha] if base_commit else []
            self.add_commit(
                full_name, title, author=author, branch=head, date=created, changes=files, parents=parents
            )
        head_sha = head_sha or repo.branches[head]
        pr = PullRequest(
            number=number,
            id=next(self._pull_ids),
            title=title,
            body=body,
            user=self.user(author),
            head=head,
            base=base,
            head_sha=head_sha,
            base_sha=base_commit.sha if base_commit else fake_sha(repo.full_name, base),
            created_at=created,
            updated_at=created,
            files=list(files),
            draft=draft,
            labels=list(labels),
        )
        if merged_at is not None:
            merged = merged_at.astimezone(UTC).replace(microsecond=0)
            message = f"Merge pull request #{number} from {repo.owner.login}/{head}\n\n{title}"
            merge = self.add_commit(
                full_name, message, author=merged_by or author, branch=base, date=merged, changes=files
            )
            merge.parents.append(head_sha)
            pr.state, pr.merged_at, pr.closed_at, pr.updated_at = "closed", merged, merged, merged
            pr.merge_commit_sha = merge.sha
            pr.merged_by = self.user(merged_by or author)
        elif closed_at is not None:
            pr.state, pr.closed_at = "closed", closed_at.astimezone(UTC).replace(microsecond=0)
            pr.updated_at = pr.closed_at
        repo.pulls[number] = pr
        repo.issues[number] = Issue(
            number=number,
            id=next(self._issue_ids),
            title=title,
            body=body,
            user=pr.user,
            created_at=created,
            updated_at=pr.updated_at,
            is_pull=True,
            state=pr.state,
            closed_at=pr.closed_at,
            labels=list(labels),
        )
        return pr

    def add_issue(
        self,
        full_name: str,
        title: str,
        *,
        body: str = "",
        author: str = "octocat",
        labels: Sequence[str] = (),
        assignees: Sequence[str] = (),
        created_at: datetime | None = None,
    ) -> Issue:
        repo = self._repo(full_name)
        created = (created_at or utc_now()).astimezone(UTC).replace(microsecond=0)
        issue = Issue(
            number=next(repo.numbers),
            id=next(self._issue_ids),
            title=title,
            body=body,
            user=self.user(author),
            created_at=created,
            updated_at=created,
            labels=list(labels),
            assignees=list(assignees),
        )
        repo.issues[issue.number] = issue
        return issue

    def add_issue_comment(
        self, full_name: str, number: int, body: str, *, author: str | None = None, at: datetime | None = None
    ) -> IssueComment:
        """A comment on issue or pull request ``number`` (by the bot's own identity when no author)."""
        repo = self._repo(full_name)
        issue = repo.issues[number]
        when = (at or utc_now()).astimezone(UTC).replace(microsecond=0)
        user = self.user(author) if author else self.viewer
        comment = IssueComment(next(self._comment_ids), number, body, user, when, when)
        repo.comments[comment.id] = comment
        issue.updated_at = max(issue.updated_at, when)
        return comment

    def add_review_comment(
        self,
        full_name: str,
        number: int,
        body: str,
        *,
        path: str,
        line: int,
        author: str | None = "octocat",
        in_reply_to: int | None = None,
    ) -> ReviewComment:
        """A comment on a line of a pull request's diff (by the bot's own identity when no author)."""
        repo = self._repo(full_name)
        pr = repo.pulls[number]
        patch = next((f.patch for f in pr.files if f.filename == path), "")
        hunk = "\n".join(patch.splitlines()[:4])
        comment = ReviewComment(
            id=next(self._comment_ids),
            number=number,
            body=body,
            user=self.user(author) if author else self.viewer,
            path=path,
            line=line,
            commit_id=pr.head_sha,
            diff_hunk=hunk,
            created_at=utc_now(),
            in_reply_to=in_reply_to,
        )
        repo.review_comments[comment.id] = comment
        return comment

    def add_check_run(
        self,
        full_name: str,
        head_sha: str,
        name: str,
        *,
        conclusion: str | None = "failure",
        title: str = "",
        summary: str = "",
        text: str = "",
        app_slug: str = "ci-bot",
        started_at: datetime | None = None,
    ) -> CheckRun:
        """A check run of another app (Actions jobs get theirs from ``add_workflow_run``)."""
        repo = self._repo(full_name)
        start = (started_at or utc_now() - timedelta(minutes=5)).astimezone(UTC).replace(microsecond=0)
        done = conclusion is not None
        check = CheckRun(
            id=next(self._job_ids),
            name=name,
            head_sha=head_sha,
            status="completed" if done else "in_progress",
            conclusion=conclusion,
            started_at=start,
            completed_at=start + timedelta(minutes=2) if done else None,
            check_suite_id=next(self._suite_ids),
            title=title,
            summary=summary,
            text=text,
            app_slug=app_slug,
        )
        repo.check_runs[check.id] = check
        return check

    def add_workflow_run(
        self,
        full_name: str,
        *,
        jobs: Iterable[JobSpec],
        name: str = "CI",
        path: str = ".github/workflows/ci.yml",
        head_branch: str | None = None,
        head_sha: str | None = None,
        event: str = "pull_request",
        pull_requests: Sequence[int] = (),
        actor: str = "octocat",
        started_at: datetime | None = None,
        conclusion: str | None = None,
    ) -> WorkflowRun:
        """A completed Actions run with its jobs (their steps, logs and check runs). Its conclusion is
        ``failure`` when a job failed, unless given. ``head_sha`` defaults to the head of ``head_branch``
        (or of the pull request's head branch)."""
        repo = self._repo(full_name)
        first_pr = repo.pulls.get(pull_requests[0]) if pull_requests else None
        head_branch = head_branch or (first_pr.head if first_pr else repo.default_branch)
        if head_sha is None:
            head_sha = (
                first_pr.head_sha if first_pr else repo.branches.get(head_branch, fake_sha(head_branch))
            )
        start = (started_at or utc_now() - timedelta(minutes=10)).astimezone(UTC).replace(microsecond=0)
        numbers = self._run_numbers.setdefault((repo.full_name, path), itertools.count(412))
        run_id = next(self._run_ids)
        suite = next(self._suite_ids)
        built = [build_job(next(self._job_ids), run_id, spec, start + timedelta(seconds=5)) for spec in jobs]
        failed = any(job.conclusion == "failure" for job in built)
        end = max((job.completed_at for job in built), default=start)
        run = WorkflowRun(
            id=run_id,
            name=name,
            workflow_id=int(fake_sha(repo.full_name, path)[:7], 16),
            path=path,
            run_number=next(numbers),
            event=event,
            status="completed",
            conclusion=conclusion or ("failure" if failed else "success"),
            head_branch=head_branch,
            head_sha=head_sha,
            pull_requests=list(pull_requests),
            created_at=start,
            updated_at=end,
            actor=self.user(actor),
            check_suite_id=suite,
            display_title=first_pr.title if first_pr else name,
            jobs=[job.id for job in built],
        )
        repo.runs[run_id] = run
        for job in built:
            repo.jobs[job.id] = job
            failed_step = next((s.name for s in job.steps if s.conclusion == "failure"), None)
            summary = f"Step '{failed_step}' failed." if failed_step else ""
            repo.check_runs[job.id] = CheckRun(
                id=job.id,
                name=job.name,
                head_sha=head_sha,
                status="completed",
                conclusion=job.conclusion,
                started_at=job.started_at,
                completed_at=job.completed_at,
                check_suite_id=suite,
                title=summary,
                summary=summary,
            )
        return run

    def add_deployment(
        self,
        full_name: str,
        *,
        environment: str = "production",
        ref: str | None = None,
        sha: str | None = None,
        creator: str = "deploy-bot",
        created_at: datetime | None = None,
        states: Sequence[str] = ("in_progress", "success"),
        description: str = "",
        log_url: str = "",
    ) -> Deployment:
        """A deployment of ``ref`` (default branch unless given; ``sha`` defaults to its head) with one
        status per entry of ``states``, a minute apart, the last one current."""
        repo = self._repo(full_name)
        ref = ref or repo.default_branch
        head = repo.resolve(sha or ref)
        sha = head.sha if head is not None else (sha or fake_sha(full_name, ref))
        start = (created_at or utc_now() - timedelta(minutes=30)).astimezone(UTC).replace(microsecond=0)
        deployment = Deployment(
            id=next(self._deployment_ids),
            sha=sha,
            ref=ref,
            environment=environment,
            creator=self.user(creator),
            created_at=start,
            description=description,
            production_environment=environment in ("production", "prod"),
        )
        for offset, state in enumerate(states, start=1):
            deployment.statuses.append(
                DeploymentStatus(
                    id=next(self._deployment_ids),
                    state=state,
                    creator=self.user(creator),
                    created_at=start + timedelta(minutes=offset),
                    description=f"Deployment {state}",
                    log_url=log_url,
                )
            )
        repo.deployments[deployment.id] = deployment
        return deployment

    def add_release(
        self,
        full_name: str,
        tag_name: str,
        *,
        name: str | None = None,
        body: str = "",
        author: str = "octocat",
        published_at: datetime | None = None,
        draft: bool = False,
        prerelease: bool = False,
        target: str | None = None,
    ) -> Release:
        """A release of ``tag_name`` (pointing at ``target``, the default branch unless given)."""
        repo = self._repo(full_name)
        at = (published_at or utc_now()).astimezone(UTC).replace(microsecond=0)
        release = Release(
            id=next(self._release_ids),
            tag_name=tag_name,
            target_commitish=target or repo.default_branch,
            name=name if name is not None else tag_name,
            body=body,
            author=self.user(author),
            created_at=at - timedelta(minutes=5),
            published_at=None if draft else at,
            draft=draft,
            prerelease=prerelease,
        )
        repo.releases[release.id] = release
        return release
