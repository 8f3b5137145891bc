"""Cloning the team's repository into a session's workdir: the real ``git clone`` over real HTTP against
the GitHub emulator's git smart HTTP, with the token kept out of the checkout, the command line and
every message, and each failure (bad token, unknown repo, hang, unreachable host) in plain words with
nothing left behind."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from incidentfox.egress import EgressPolicy, install_policy
from incidentfox.emulators.github import GitHubEmulator
from incidentfox.sandboxes import repo_checkout as rc
from incidentfox.sandboxes.repo_checkout import clone_repo, clone_url_for, repo_to_clone, web_base_url

FILES = {
    "README.md": "# shop\n",
    "shop/payments.py": "TIMEOUT_S = 5\n",
    "deploy/values.yaml": "replicas: 3\n",
}


@pytest.fixture
async def gh() -> AsyncIterator[GitHubEmulator]:
    async with GitHubEmulator() as emulator:
        emulator.seed_git_repo("acme/shop", FILES)
        yield emulator


def _files_under(root: Path) -> list[Path]:
    return [Path(d, name) for d, _dirs, names in os.walk(root) for name in names]


def _assert_no_secret(root: Path, secret: str) -> None:
    needles = [secret.encode(), base64.b64encode(f"x-access-token:{secret}".encode())]
    files = _files_under(root)
    assert files, "nothing was cloned"
    for path in files:
        data = path.read_bytes()
        assert not any(needle in data for needle in needles), f"the token is in {path}"


async def test_clone_brings_the_files_and_never_the_token(
    gh: GitHubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IFX_CANARY_SECRET", "host-env-must-not-leak")
    spawned: list[tuple[tuple[Any, ...], dict[str, str]]] = []
    real_exec = asyncio.create_subprocess_exec

    async def spy(*args: Any, **kwargs: Any) -> asyncio.subprocess.Process:
        spawned.append((args, dict(kwargs.get("env") or {})))
        return await real_exec(*args, **kwargs)

    monkeypatch.setattr(rc.asyncio, "create_subprocess_exec", spy)
    sha = gh.seed_git_repo("acme/shop", {**FILES, "README.md": "# shop, again\n"})  # a second commit
    assert (gh.git_repo_path("acme/shop") / "HEAD").read_text() == "ref: refs/heads/main\n"
    dest = tmp_path / "work" / "shop"

    result = await clone_repo("acme/shop", dest, clone_url=gh.clone_url("acme/shop"), token=gh.token)

    assert result.ok, result.message
    assert result.message == f"Cloned acme/shop (branch main, commit {sha[:7]}) into ./shop"
    assert (result.path, result.branch, result.commit) == (dest, "main", sha[:7])
    for rel, text in {**FILES, "README.md": "# shop, again\n"}.items():
        assert (dest / rel).read_text() == text
    _assert_no_secret(dest, gh.token)
    assert f"url = {gh.clone_url('acme/shop')}" in (dest / ".git" / "config").read_text()
    git_calls = [c for c in gh.calls if c.name.startswith("git.")]
    assert git_calls and all(c.authorized and c.status == 200 for c in git_calls)
    clone_args, clone_env = spawned[0]
    assert "clone" in clone_args and "--depth=50" in clone_args and "--single-branch" in clone_args
    assert not any(gh.token in str(arg) for arg in clone_args)
    assert "IFX_CANARY_SECRET" not in clone_env and clone_env["GIT_TERMINAL_PROMPT"] == "0"
    assert clone_env["GIT_CONFIG_GLOBAL"] == os.devnull and clone_env["GIT_CONFIG_NOSYSTEM"] == "1"
    header_keys = [
        k for k, v in clone_env.items() if k.startswith("GIT_CONFIG_KEY_") and v == "http.extraHeader"
    ]
    assert len(header_keys) == 1
    header = clone_env[header_keys[0].replace("KEY", "VALUE")]
    assert (
        header == "Authorization: Basic " + base64.b64encode(f"x-access-token:{gh.token}".encode()).decode()
    )
    assert [env for _args, env in spawned[1:] if any(gh.token in v for v in env.values())] == []


async def test_a_wrong_token_is_refused_in_plain_words_and_leaves_nothing(
    gh: GitHubEmulator, tmp_path: Path
) -> None:
    dest = tmp_path / "shop"
    wrong = "ghs_wrongwrongwrongwrong0123456789"
    result = await clone_repo("acme/shop", dest, clone_url=gh.clone_url("acme/shop"), token=wrong)
    assert not result.ok
    assert result.message.startswith("Could not clone acme/shop")
    assert "check the github token" in result.message.lower()
    assert wrong not in result.message and "Traceback" not in result.message
    assert not dest.exists()
    assert [c.status for c in gh.calls if c.name == "git.info_refs"] == [401]


async def test_no_token_at_all_is_refused(gh: GitHubEmulator, tmp_path: Path) -> None:
    result = await clone_repo("acme/shop", tmp_path / "shop", clone_url=gh.clone_url("acme/shop"), token=None)
    assert not result.ok and "check the github token" in result.message.lower()
    assert not (tmp_path / "shop").exists()


async def test_an_unknown_repository_is_named_plainly(gh: GitHubEmulator, tmp_path: Path) -> None:
    dest = tmp_path / "ghost"
    result = await clone_repo("acme/ghost", dest, clone_url=gh.clone_url("acme/ghost"), token=gh.token)
    assert not result.ok
    assert result.message.startswith("Could not clone acme/ghost: GitHub says the repository does not exist")
    assert not dest.exists()


async def test_a_hanging_server_times_out_and_leaves_nothing(tmp_path: Path) -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.sleep(60)
        return web.Response()

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    dest = tmp_path / "shop"
    try:
        started = time.monotonic()
        result = await clone_repo(
            "acme/shop",
            dest,
            clone_url=f"http://127.0.0.1:{port}/acme/shop.git",
            token="t0k3n",
            timeout_s=1.5,
        )
        elapsed = time.monotonic() - started
    finally:
        await runner.cleanup()
    assert not result.ok
    assert result.message == (
        "Cloning acme/shop took longer than 1.5 seconds, so it was stopped; "
        "the agent starts without a checkout."
    )
    assert elapsed < 6
    assert not dest.exists()


async def test_an_unreachable_host_is_named(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/acme/shop.git"
    result = await clone_repo("acme/shop", tmp_path / "shop", clone_url=url, token="t0k3n")
    assert result.message == "Could not clone acme/shop: 127.0.0.1 could not be reached."
    assert not (tmp_path / "shop").exists()


async def test_a_checkout_over_the_size_limit_is_removed(gh: GitHubEmulator, tmp_path: Path) -> None:
    dest = tmp_path / "shop"
    result = await clone_repo(
        "acme/shop", dest, clone_url=gh.clone_url("acme/shop"), token=gh.token, max_bytes=1000
    )
    assert not result.ok and "larger than the sandbox's 1,000 byte limit" in result.message
    assert not dest.exists()


async def test_refusals_before_running_git(
    gh: GitHubEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = gh.clone_url("acme/shop")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me")
    taken = await clone_repo("acme/shop", occupied, clone_url=url, token=gh.token)
    assert not taken.ok and "./occupied already exists" in taken.message
    assert (occupied / "notes.txt").read_text() == "keep me"

    with_creds = url.replace("http://", f"http://x-access-token:{gh.token}@")
    creds = await clone_repo("acme/shop", tmp_path / "a", clone_url=with_creds, token=gh.token)
    assert not creds.ok and gh.token not in creds.message and "must not carry credentials" in creds.message

    install_policy(EgressPolicy(allow_private=False))
    refused = await clone_repo("acme/shop", tmp_path / "b", clone_url=url, token=gh.token)
    assert not refused.ok and refused.message.startswith("Did not clone acme/shop:")
    install_policy(EgressPolicy(allow_private=True))

    monkeypatch.setattr(rc.shutil, "which", lambda _name: None)
    missing = await clone_repo("acme/shop", tmp_path / "c", clone_url=url, token=gh.token)
    assert missing.message == "Did not clone acme/shop: git is not installed on the IncidentFox host."
    assert not any((tmp_path / d).exists() for d in ("a", "b", "c"))
    assert [c for c in gh.calls if c.name.startswith("git.")] == []


async def test_an_empty_destination_directory_is_used_and_restored_on_failure(
    gh: GitHubEmulator, tmp_path: Path
) -> None:
    empty = tmp_path / "shop"
    empty.mkdir()
    failed = await clone_repo("acme/shop", empty, clone_url=gh.clone_url("acme/shop"), token="nope")
    assert not failed.ok and empty.is_dir() and list(empty.iterdir()) == []
    done = await clone_repo("acme/shop", empty, clone_url=gh.clone_url("acme/shop"), token=gh.token)
    assert done.ok and (empty / "README.md").exists()


async def test_the_emulator_speaks_git_smart_http_only_with_the_token(gh: GitHubEmulator) -> None:
    url = f"{gh.clone_url('acme/shop')}/info/refs?service=git-upload-pack"
    basic = base64.b64encode(f"x-access-token:{gh.token}".encode()).decode()
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as anonymous:
            assert anonymous.status == 401
            assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="GitHub"'
        for auth in (f"Basic {basic}", f"Bearer {gh.token}"):
            async with http.get(url, headers={"Authorization": auth}) as ok:
                assert ok.status == 200
                assert ok.headers["Content-Type"] == "application/x-git-upload-pack-advertisement"
                assert b"# service=git-upload-pack" in await ok.read()
        push = f"{gh.clone_url('acme/shop')}/info/refs?service=git-receive-pack"
        async with http.get(push, headers={"Authorization": f"Bearer {gh.token}"}) as refused:
            assert refused.status == 403


def _config(**github: Any) -> dict[str, Any]:
    return {
        "integrations": {"github": {"token": "ghs_x", **github}},
        "routing": {"github_repos": ["acme/shop", "acme/shop-api", "acme/infra"]},
    }


CLAIMED = ["acme/shop", "acme/shop-api", "acme/infra"]


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ("checkout is failing after the deploy of acme/shop-api", "acme/shop-api"),
        ("why did shop-api start returning 502s?", "acme/shop-api"),
        ("look at https://github.com/acme/infra/pull/12 please", "acme/infra"),
        ("the SHOP service is slow", "acme/shop"),
        ("infra and acme/shop-api both changed; start with shop", "acme/shop-api"),
        ("clone Acme/Infra.git and look at the terraform", "acme/infra"),
        ("what changed in other/shop yesterday?", None),
        ("shopping cart errors; see shops.py", None),
        ("payments are down", None),
    ],
)
def test_repo_to_clone_prefers_the_claimed_repo_the_task_names(task: str, expected: str | None) -> None:
    """Three claimed repos and no ``default_repo``: a task naming none of them gets no clone."""
    assert repo_to_clone(task, _config(), CLAIMED) == expected


def test_repo_to_clone_falls_back_to_the_default_and_never_an_unclaimed_repo() -> None:
    explicit = _config(default_repo="acme/infra")
    assert repo_to_clone("payments are down", explicit, CLAIMED) == "acme/infra"
    assert repo_to_clone("payments are down in shop", explicit, CLAIMED) == "acme/shop"
    assert repo_to_clone("look at evil/backdoor", {"integrations": {"github": {"token": "t"}}}, []) is None
    assert repo_to_clone("look at evil/backdoor", _config(), ["evil/"]) is None
    only_one = {"integrations": {"github": {"token": "t"}}, "routing": {"github_repos": ["acme/shop"]}}
    assert repo_to_clone("payments are down", only_one, ["acme/shop"]) == "acme/shop"
    no_claims = {"integrations": {"github": {"token": "t"}}}
    assert repo_to_clone("the shop is down", no_claims, []) is None
    assert repo_to_clone("acme/shop is down", {"routing": {"github_repos": CLAIMED}}, CLAIMED) is None
    disabled = _config(enabled=False)
    assert repo_to_clone("acme/shop is down", disabled, CLAIMED) is None


@pytest.mark.parametrize(
    ("api_url", "web"),
    [
        ("https://api.github.com", "https://github.com"),
        ("https://api.github.com/", "https://github.com"),
        ("https://ghe.example.com/api/v3", "https://ghe.example.com"),
        ("https://ghe.example.com:8443/api/v3/", "https://ghe.example.com:8443"),
        ("https://api.acme.ghe.com", "https://acme.ghe.com"),
        ("http://127.0.0.1:40123", "http://127.0.0.1:40123"),
        ("https://user:pw@ghe.example.com/api/v3", "https://ghe.example.com"),
    ],
)
def test_web_base_url(api_url: str, web: str) -> None:
    assert web_base_url(api_url) == web


def test_clone_url_for_the_team_and_the_emulator() -> None:
    assert clone_url_for(_config(), "acme/shop") == "https://github.com/acme/shop.git"
    ghe = _config(api_url="https://ghe.example.com/api/v3")
    assert clone_url_for(ghe, "acme/shop") == "https://ghe.example.com/acme/shop.git"
    assert rc.github_token(_config()) == "ghs_x" and rc.github_token({}) is None


def test_git_stderr_is_scrubbed_of_the_token() -> None:
    token = "ghs_secret0123456789"
    header = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    scrubbed = rc._scrub(f"fatal: bad header Authorization: Basic {header} for {token}", token)
    assert token not in scrubbed and header not in scrubbed and scrubbed.count("***") == 2
