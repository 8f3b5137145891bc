"""Git smart HTTP for the GitHub emulator: ``git clone``/``git fetch`` over real HTTP, served by the real
``git http-backend`` CGI from bare repositories the test seeds (``GitRepos.seed``).

Only the read side is served, as ``https://github.com/{owner}/{repo}.git`` serves it::

    GET  /{owner}/{repo}.git/info/refs?service=git-upload-pack
    POST /{owner}/{repo}.git/git-upload-pack

Pushing (``git-receive-pack``) answers 403. Authorization is the emulator's gate (``Basic`` with the
token as password, as git sends ``x-access-token:<token>``, or ``Bearer``); an unauthorized request gets
GitHub's ``401`` with ``WWW-Authenticate: Basic realm="GitHub"``, which is what makes git report
"Authentication failed". Request and response bodies are streamed through the CGI, which is killed
when it runs past ``timeout_s``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

INFO_REFS = "git.info_refs"
UPLOAD_PACK = "git.upload_pack"
GIT_OPERATIONS = frozenset({INFO_REFS, UPLOAD_PACK})
_AUTHOR = {
    "GIT_AUTHOR_NAME": "Octo Cat",
    "GIT_AUTHOR_EMAIL": "octocat@users.noreply.github.com",
    "GIT_AUTHOR_DATE": "2025-03-01T10:00:00Z",
    "GIT_COMMITTER_NAME": "Octo Cat",
    "GIT_COMMITTER_EMAIL": "octocat@users.noreply.github.com",
    "GIT_COMMITTER_DATE": "2025-03-01T10:00:00Z",
}
_PROTOCOL = re.compile(r"version=\d+(?::[A-Za-z0-9=._-]+)*")
_CHUNK = 64 * 1024


def basic_password(value: str) -> str | None:
    """The password of a ``Basic`` credential (the part after ``Basic ``), or ``None`` if unreadable."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return password if sep and user else None


def unauthorized() -> web.Response:
    """GitHub's answer to a git request without valid credentials."""
    return web.Response(
        status=401,
        text="Invalid username or token. Password authentication is not supported for Git operations.\n",
        headers={"WWW-Authenticate": 'Basic realm="GitHub"'},
    )


def _git_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }


class GitRepos:
    """Bare repositories under a temporary root, and the handlers that serve them."""

    def __init__(self, *, timeout_s: float = 30.0) -> None:
        self.timeout_s = timeout_s
        self._root: Path | None = None

    @property
    def root(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="ifx-gh-git-"))
        return self._root

    def path(self, full_name: str) -> Path:
        """Where the bare repository of ``full_name`` is (names are case-insensitive, as on GitHub)."""
        return self.root / f"{full_name.lower()}.git"

    def seed(self, full_name: str, files: Mapping[str, str], *, branch: str = "main") -> str:
        """Commit ``files`` (path → text) as the whole tree of ``branch``; the new commit's sha.

        The first call creates the bare repository; each later one adds a commit on top."""
        bare = self.path(full_name)
        env = {**_git_env(self.root), **_AUTHOR}
        if not bare.exists():
            bare.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["git", "init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare)],
                env=env, check=True, capture_output=True,
            )  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="ifx-gh-tree-") as tree:
            for rel, text in files.items():
                target = Path(tree, rel.strip("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            git = ["git", f"--git-dir={bare}", f"--work-tree={tree}"]
            subprocess.run([*git, "symbolic-ref", "HEAD", f"refs/heads/{branch}"], env=env, check=True)
            subprocess.run([*git, "add", "--all", "."], env=env, check=True, cwd=tree)
            subprocess.run(
                [*git, "commit", "--quiet", "--allow-empty", "-m", f"Seed {full_name}"],
                env=env, check=True, capture_output=True, cwd=tree,
            )  # fmt: skip
            head = subprocess.run(
                [*git, "rev-parse", "HEAD"], env=env, check=True, capture_output=True, text=True
            )
        return head.stdout.strip()

    def cleanup(self) -> None:
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
        self._root = None

    def register(self, app: web.Application) -> dict[AbstractRoute, str]:
        """Add the smart HTTP routes; the route → operation names for the emulator's gate."""
        base = "/{owner}/{repo}.git"
        return {
            app.router.add_route("GET", f"{base}/info/refs", self.info_refs): INFO_REFS,
            app.router.add_route("POST", f"{base}/git-upload-pack", self.upload_pack): UPLOAD_PACK,
        }

    # -- handlers -----------------------------------------------------------------------------------

    async def info_refs(self, request: web.Request) -> web.StreamResponse:
        service = request.query.get("service")
        if service != "git-upload-pack":
            return web.Response(status=403, text="Only git-upload-pack is served by this emulator.\n")
        return await self._backend(request, "info/refs", f"service={service}")

    async def upload_pack(self, request: web.Request) -> web.StreamResponse:
        return await self._backend(request, "git-upload-pack", "")

    async def _backend(self, request: web.Request, tail: str, query: str) -> web.StreamResponse:
        full_name = f"{request.match_info['owner']}/{request.match_info['repo']}"
        if self._root is None or not self.path(full_name).is_dir():
            return web.Response(status=404, text="Repository not found.\n")
        env = {
            **_git_env(self.root),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": f"/{full_name.lower()}.git/{tail}",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": query,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "REMOTE_ADDR": request.remote or "127.0.0.1",
        }
        # aiohttp has already inflated a gzip request body, so neither CONTENT_LENGTH nor the
        # encoding is passed on: http-backend reads the plain body to its end.
        protocol = request.headers.get("Git-Protocol", "")
        if _PROTOCOL.fullmatch(protocol):
            env["GIT_PROTOCOL"] = protocol
        process = await asyncio.create_subprocess_exec(
            "git", "http-backend",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env=env, start_new_session=True,
        )  # fmt: skip
        response: web.StreamResponse | None = None
        feeder = asyncio.ensure_future(self._feed(request, process))
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self._relay(request, process)
                await process.wait()
        except TimeoutError:
            if response is None:
                return web.Response(status=504, text="git http-backend timed out\n")
            if request.transport is not None:
                request.transport.abort()
        finally:
            feeder.cancel()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        return (
            response if response is not None else web.Response(status=502, text="git http-backend failed\n")
        )

    @staticmethod
    async def _feed(request: web.Request, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            async for chunk in request.content.iter_chunked(_CHUNK):
                process.stdin.write(chunk)
                await process.stdin.drain()
            process.stdin.close()

    @staticmethod
    async def _relay(request: web.Request, process: asyncio.subprocess.Process) -> web.StreamResponse:
        """Read the CGI headers (``Status:`` and the rest), then stream the body to the client."""
        assert process.stdout is not None
        status, headers = 200, {}
        while line := (await process.stdout.readline()).rstrip(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "status":
                status = int(value.split()[0])
            else:
                headers[name.strip()] = value.strip()
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        while chunk := await process.stdout.read(_CHUNK):
            await response.write(chunk)
        await response.write_eof()
        return response
