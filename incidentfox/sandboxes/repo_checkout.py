"""Cloning the team's repository into a session's workdir before the agent's first turn.

The clone runs on the host, outside the sandbox, with the team's GitHub token; the token never enters
the sandbox. ``git`` gets a minimal environment (nothing of this process's own environment, a
throwaway ``HOME``, no system or global git config) and the token only as an ``http.extraHeader``
passed in ``GIT_CONFIG_*`` variables: never in the URL, on the command line or in ``.git/config``.
Redirects are not followed, and the host's address is checked against the egress policy and pinned
(``http.curloptResolve``) so that git connects to the address that was checked.

Which repository: ``repo_to_clone`` picks the one the task names among the team's claimed repos
(``routing.github_repos``), else the team's default repository: ``integrations.github.default_repo``
when set, else its only claimed repo.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import os
import re
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from incidentfox import egress
from incidentfox.agents.toolsets import github_api as gh
from incidentfox.agents.toolsets.base import lookup_dotted
from incidentfox.sandboxes.backends.processes import run_captured

FULL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
CLONE_DEPTH = 50
MIN_BARE_NAME = 3
"""A claimed repo is recognised by its bare name only from this length on ("ui" is too common a word)."""
_STDERR_CAP = 64 * 1024
_POLL_S = 0.5
_SETTING = "integrations.github.api_url"
_CONFIG_VAR = re.compile(r"GIT_CONFIG_(?:COUNT|KEY_\d+|VALUE_\d+)")
_HTTP_ERROR = re.compile(r"returned error: (\d{3})")


@dataclass(frozen=True, slots=True)
class CloneResult:
    """What happened, with ``message`` written for the Slack thread (no token, no stack trace)."""

    ok: bool
    message: str
    path: Path | None = None
    branch: str | None = None
    commit: str | None = None


# -- which repository -------------------------------------------------------------------------------


def team_default_repo(config: Mapping[str, Any]) -> str | None:
    """``integrations.github.default_repo`` when it is an ``owner/name``, else the team's only claimed
    repo. A team claiming several repos and naming none gets no clone for a task that names none: a
    checkout of the wrong repository costs time and misleads the agent."""
    explicit = lookup_dotted(config, "integrations.github.default_repo")
    if isinstance(explicit, str) and FULL_NAME.fullmatch(explicit.strip()):
        return explicit.strip()
    claimed = [r for r in claimed_repos(config) if FULL_NAME.fullmatch(r)]
    return claimed[0] if len(claimed) == 1 else None


def claimed_repos(config: Mapping[str, Any]) -> list[str]:
    """The team's ``routing.github_repos``, as ``owner/name`` strings."""
    raw = lookup_dotted(config, "routing.github_repos")
    return [r.strip() for r in raw if isinstance(r, str)] if isinstance(raw, list) else []


def _mention(name: str, *, full: bool) -> re.Pattern[str]:
    # A full name may sit in a URL (github.com/acme/shop/pull/3) or end in .git; a bare name must be a
    # word of its own, not part of another owner's full name (other/shop) or of a longer name.
    before = r"(?<![A-Za-z0-9_.-])" if full else r"(?<![A-Za-z0-9_./-])"
    after = (
        r"(?:\.git)?(?![A-Za-z0-9_-])(?!\.[A-Za-z0-9])" if full else r"(?![A-Za-z0-9_/-])(?!\.[A-Za-z0-9])"
    )
    return re.compile(before + re.escape(name) + after, re.IGNORECASE)


def repo_to_clone(task: str, config: Mapping[str, Any], claimed_repos: Sequence[str]) -> str | None:
    """The ``owner/name`` to clone for ``task``, or ``None`` (also when GitHub is not configured).

    A claimed repo named in the task by full name beats one named by its bare name; among those, the
    longest name wins, then the earliest mention. Names the team does not claim are never returned:
    with no claimed repo named, the answer is the team's default repository (``team_default_repo``).
    """
    if not gh.github_configured(config):
        return None
    best: tuple[bool, int, int] | None = None
    chosen: str | None = None
    for claimed in claimed_repos:
        if not isinstance(claimed, str) or not FULL_NAME.fullmatch(claimed.strip()):
            continue
        full_name = claimed.strip()
        bare = full_name.split("/", 1)[1]
        for name, full in ((full_name, True), (bare, False)):
            if not full and len(bare) < MIN_BARE_NAME:
                continue
            found = _mention(name, full=full).search(task)
            if found is not None:
                rank = (full, len(name), -found.start())
                if best is None or rank > best:
                    best, chosen = rank, full_name
                break
    return chosen or team_default_repo(config)


def web_base_url(api_url: str) -> str:
    """GitHub's web (and git) base for an API base: ``https://api.github.com`` → ``https://github.com``,
    GitHub Enterprise Server's ``https://host/api/v3`` → ``https://host``; any other URL (an emulator)
    is its own web base. User info is dropped."""
    parts = urlsplit(api_url.strip())
    netloc, path = parts.netloc.rpartition("@")[2], parts.path.rstrip("/")
    if path.lower().endswith("/api/v3"):
        path = path[: -len("/api/v3")]
    elif netloc.lower().startswith("api.") and not path:
        netloc = netloc[len("api.") :]
    return f"{parts.scheme}://{netloc}{path}"


def clone_url_for(config: Mapping[str, Any], full_name: str) -> str:
    """The HTTPS clone URL of ``full_name`` on the team's GitHub (``integrations.github.api_url``)."""
    api_url = str(gh.github_settings(config).get("api_url") or gh.DEFAULT_API_URL)
    return f"{web_base_url(api_url)}/{full_name}.git"


def github_token(config: Mapping[str, Any]) -> str | None:
    token = gh.github_settings(config).get("token")
    return token if isinstance(token, str) and token else None


# -- cloning ----------------------------------------------------------------------------------------


def _auth_header(token: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


def _scrub(text: str, token: str | None) -> str:
    if token:
        for secret in (_auth_header(token).split(" ", 2)[2], token):
            text = text.replace(secret, "***")
    return text


def _git_env(git: str, home: str, token: str | None, resolve: str | None) -> dict[str, str]:
    config = [("http.followRedirects", "false")]
    config += [("http.extraHeader", _auth_header(token))] if token else []
    config += [("http.curloptResolve", resolve)] if resolve else []
    env = {
        "PATH": os.pathsep.join(dict.fromkeys([os.path.dirname(git), "/usr/bin", "/bin"])),
        "HOME": home,
        "XDG_CONFIG_HOME": home,
        "LC_ALL": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ALLOW_PROTOCOL": "http:https",
        "GIT_CONFIG_COUNT": str(len(config)),
    }
    for i, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = key, value
    return env


async def _pinned_address(clone_url: str) -> str | None:
    """Check the clone host against the egress policy; ``host:port:address`` to pin git to (``None``
    for an IP literal). Raises ``egress.EgressRefused``."""
    parts = urlsplit(clone_url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise egress.EgressRefused(f"`{_SETTING}` must be an http(s) URL.")
    egress.refuse_metadata_name(host, _SETTING)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise egress.EgressRefused(f"`{_SETTING}` has an invalid port.") from exc
    addresses = await egress.resolve_host(host, port)
    if not addresses:
        raise egress.EgressRefused(f"the host in `{_SETTING}` could not be resolved.")
    egress.check_addresses(
        addresses, private_allowed=await egress.current_policy().private_allowed(), setting=_SETTING
    )
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return None
    address = addresses[0]
    return f"{host}:{port}:{f'[{address}]' if address.version == 6 else address}"


async def _tail(stream: asyncio.StreamReader) -> bytes:
    """The stream to its end, keeping only its last ``_STDERR_CAP`` bytes."""
    data = bytearray()
    while chunk := await stream.read(65536):
        data += chunk
        del data[:-_STDERR_CAP]
    return bytes(data)


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _dest_state(dest: Path) -> str:
    if not os.path.lexists(dest):
        return "absent"
    return "empty" if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()) else "occupied"


def _remove(dest: Path, state: str) -> None:
    """Leave ``dest`` as it was before the clone: absent, or an empty directory."""
    shutil.rmtree(dest, ignore_errors=True)
    if state == "empty":
        dest.mkdir(exist_ok=True)


def _config_leaks(dest: Path, token: str | None) -> bool:
    """Whether the clone's ``.git/config`` holds the token or a remote URL with credentials."""
    config = (dest / ".git" / "config").read_text("utf-8", "replace")
    urls = [urlsplit(u) for u in re.findall(r"^\s*url\s*=\s*(\S+)", config, re.MULTILINE)]
    return bool(token and token in config) or any(u.username or u.password for u in urls)


def _branch(dest: Path) -> str | None:
    head = (dest / ".git" / "HEAD").read_text("utf-8", "replace").strip()
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: refs/heads/") else None


def _failure(full_name: str, host: str, stderr: str) -> str:
    """Git's complaint in plain words (``LC_ALL=C`` keeps its messages in English)."""
    low = stderr.lower()
    status = {int(code) for code in _HTTP_ERROR.findall(low)}
    if status & {401, 403} or any(s in low for s in ("authentication failed", "could not read username")):
        return (
            f"Could not clone {full_name}: GitHub did not accept the token. Check the GitHub token "
            "(integrations.github.token) and that it can read this repository."
        )
    if 404 in status or "not found" in low:
        return (
            f"Could not clone {full_name}: GitHub says the repository does not exist or the token cannot "
            "see it. Check the name in routing.github_repos and the token's repository access."
        )
    if any(s in low for s in ("could not resolve", "connect", "timed out", "ssl")):
        return f"Could not clone {full_name}: {host} could not be reached."
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = f': git said "{lines[-1][:200]}"' if lines else ""
    return f"Could not clone {full_name}{said}."


async def clone_repo(
    full_name: str,
    dest: Path,
    *,
    clone_url: str,
    token: str | None,
    timeout_s: float = 120,
    max_bytes: int | None = None,
) -> CloneResult:
    """Shallow-clone ``full_name`` from ``clone_url`` into ``dest`` (e.g. ``<workdir>/<name>``).

    Never raises for a clone that fails: the result says why, and nothing is left at ``dest`` (a
    ``dest`` that already holds files is refused and left alone). Past ``timeout_s``, or once the
    checkout grows past ``max_bytes``, git's whole process group is killed.
    """
    host = urlsplit(clone_url).hostname or clone_url
    if not FULL_NAME.fullmatch(full_name):
        return CloneResult(False, f"Did not clone {full_name!r}: it is not a GitHub owner/name.")
    if "@" in urlsplit(clone_url).netloc:
        return CloneResult(False, f"Did not clone {full_name}: the clone URL must not carry credentials.")
    if (state := _dest_state(dest)) == "occupied":
        return CloneResult(False, f"Did not clone {full_name}: ./{dest.name} already exists in the workdir.")
    if (git := shutil.which("git")) is None:
        return CloneResult(False, f"Did not clone {full_name}: git is not installed on the IncidentFox host.")
    try:
        resolve = await _pinned_address(clone_url)
    except egress.EgressRefused as exc:
        return CloneResult(False, _scrub(f"Did not clone {full_name}: {exc}", token))
    try:
        with tempfile.TemporaryDirectory(prefix="ifx-clone-") as home:
            env = _git_env(git, home, token, resolve)
            stopped, stderr = await _run_clone(
                [git, "--", clone_url, str(dest)], env, home, timeout_s, max_bytes
            )
            if stopped is None and max_bytes is not None and _tree_bytes(dest) > max_bytes:
                stopped = "size"
            if stopped is None and not stderr and _config_leaks(dest, token):
                stopped = "leak"
            if stopped is None and not stderr:
                return await _cloned(full_name, dest, git, env)
    except BaseException:  # cancelled mid-clone: git is already killed; leave nothing behind
        _remove(dest, state)
        raise
    _remove(dest, state)
    messages = {
        "timeout": f"Cloning {full_name} took longer than {timeout_s:g} seconds, so it was stopped; "
        "the agent starts without a checkout.",
        "size": f"Did not clone {full_name}: it is larger than the sandbox's {max_bytes or 0:,} byte limit.",
        "leak": f"Did not keep the clone of {full_name}: its git config held credentials.",
    }
    return CloneResult(False, messages.get(stopped or "", _failure(full_name, host, _scrub(stderr, token))))


async def _run_clone(
    target: list[str], env: dict[str, str], home: str, timeout_s: float, max_bytes: int | None
) -> tuple[str | None, str]:
    """Run ``git clone ... -- <url> <dest>`` (``target``); why it was stopped (``timeout``/``size``),
    and git's stderr when it failed (empty on success)."""
    git, dest = target[0], Path(target[-1])
    argv = [git, "clone", f"--depth={CLONE_DEPTH}", "--no-tags", "--single-branch", "--quiet", *target[1:]]
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, env=env, cwd=home, start_new_session=True,
    )  # fmt: skip
    assert process.stderr is not None
    stderr_task = asyncio.ensure_future(_tail(process.stderr))
    loop = asyncio.get_running_loop()
    deadline, reason = loop.time() + timeout_s, None
    try:
        while process.returncode is None:
            if (left := deadline - loop.time()) <= 0:
                reason = "timeout"
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), min(_POLL_S, left))
            if process.returncode is None and max_bytes is not None and _tree_bytes(dest) > max_bytes:
                reason = "size"
                break
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        done, _ = await asyncio.wait([stderr_task], timeout=2.0)
        stderr_task.cancel()
    stderr = stderr_task.result().decode("utf-8", "replace") if done else ""
    return reason, "" if process.returncode == 0 else (stderr or f"git exited with {process.returncode}")


async def _cloned(full_name: str, dest: Path, git: str, env: Mapping[str, str]) -> CloneResult:
    plain = {k: v for k, v in env.items() if not _CONFIG_VAR.fullmatch(k)}
    head = [git, "-C", str(dest), "rev-parse", "--short=7", "HEAD"]
    commit = await run_captured(head, env=plain, cwd=None, stdin=None, timeout_s=10)
    sha = commit.stdout.strip() if commit.exit_code == 0 else None
    branch = _branch(dest)
    what = f"branch {branch}, commit {sha}" if sha else "an empty repository"
    return CloneResult(True, f"Cloned {full_name} ({what}) into ./{dest.name}", dest, branch, sha)
