"""The team's repository, checked out into a fresh sandbox before the agent's first turn (issue 10,
item 6), and what the agent is told about it.

The clone runs here, outside the sandbox, with the team's token (``repo_checkout``). A workdir on this
host gets the clone directly; a pod's workdir gets a tar of it through ``exec`` (the image needs
``tar``), so the token never reaches the pod either. The step shows in the live message like any tool
call, and a failure never stops the session: the agent starts without a checkout and is told why.
"""

from __future__ import annotations

import asyncio
import io
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from incidentfox.agents.events import ToolEnd, ToolStart
from incidentfox.sandboxes.backends.base import Sandbox, SandboxBackend, SandboxError
from incidentfox.sandboxes.repo_checkout import (
    CloneResult,
    claimed_repos,
    clone_repo,
    clone_url_for,
    github_token,
    repo_to_clone,
)
from incidentfox.sandboxes.session_stream import AGENT
from incidentfox.sandboxes.session_thread import Emit

TOOL = "git clone"
COPY_TIMEOUT_S = 300.0
CHECKED_OUT = (
    "IncidentFox checked out the repository {repo} for you in ./{directory} (branch {branch}, commit "
    "{commit}); you may read, build and change it there."
)
NOT_CHECKED_OUT = "IncidentFox tried to check out the repository {repo} for you, but could not: {why}"
NOT_COPIED = "Did not copy {repo} into the sandbox pod: {detail}"


async def check_out_repo(
    backend: SandboxBackend,
    sandbox: Sandbox,
    task: str,
    config: Mapping[str, Any],
    emit: Emit,
    *,
    max_bytes: int,
) -> str:
    """Clone the repo ``task`` names (or the team's default) into ``sandbox``; the note for the agent's
    prompt, or ``""`` when there is nothing to clone."""
    repo = repo_to_clone(task, config, claimed_repos(config))
    if repo is None:
        return ""
    call_id = f"checkout-{sandbox.id}"
    emit(ToolStart(call_id, TOOL, {"repo": repo}, agent=AGENT))
    directory = repo.split("/", 1)[1]
    url, token = clone_url_for(config, repo), github_token(config)
    if backend.files_on_host:
        result = await clone_repo(
            repo, Path(sandbox.workdir) / directory, clone_url=url, token=token, max_bytes=max_bytes
        )
    else:
        result = await _clone_into_pod(backend, sandbox, repo, directory, url, token, max_bytes)
    emit(ToolEnd(call_id, TOOL, "ok" if result.ok else "error", result.message, agent=AGENT))
    if not result.ok:
        return NOT_CHECKED_OUT.format(repo=repo, why=result.message)
    return CHECKED_OUT.format(
        repo=repo, directory=directory, branch=result.branch or "default", commit=result.commit or "?"
    )


async def _clone_into_pod(
    backend: SandboxBackend,
    sandbox: Sandbox,
    repo: str,
    directory: str,
    url: str,
    token: str | None,
    max_bytes: int,
) -> CloneResult:
    with tempfile.TemporaryDirectory(prefix="incidentfox-checkout-") as scratch:
        result = await clone_repo(
            repo, Path(scratch) / directory, clone_url=url, token=token, max_bytes=max_bytes
        )
        if not result.ok or result.path is None:
            return result
        archive = await asyncio.to_thread(_tar, result.path, directory)
    try:
        copied = await backend.exec(
            sandbox, ["tar", "-x", "-f", "-", "-C", sandbox.cwd], timeout_s=COPY_TIMEOUT_S, stdin=archive
        )
    except SandboxError as exc:
        return CloneResult(False, NOT_COPIED.format(repo=repo, detail=exc.message))
    if copied.exit_code != 0 or copied.timed_out:
        detail = "it took too long" if copied.timed_out else (copied.stderr.strip()[:200] or "tar failed")
        return CloneResult(False, NOT_COPIED.format(repo=repo, detail=detail))
    return result


def _tar(path: Path, directory: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(path, arcname=directory)
    return buffer.getvalue()
