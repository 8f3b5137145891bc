"""The local sandbox confines what runs in it: host files, host environment, writes, network and
resources are out of reach; the model proxy is the one thing it can reach.

The bubblewrap cases skip only when bubblewrap is missing or the kernel forbids unprivileged user
namespaces, and say why; with ``INCIDENTFOX_REQUIRE_SANDBOX=1`` (CI) they fail instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import socket
import stat
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from incidentfox.sandboxes.backends.base import (
    MIB,
    ProxyEndpoint,
    Sandbox,
    SandboxLimitExceeded,
    SandboxSpec,
    SandboxUnavailable,
)
from incidentfox.sandboxes.backends.local import (
    BWRAP_MISSING,
    BubblewrapBackend,
    bubblewrap_problem,
    bundled_cli_dir,
)
from incidentfox.sandboxes.backends.unsafe_local import UnsafeLocalBackend

USERNS_WORDS = "the kernel forbids unprivileged user namespaces"


def _spec(**changes: object) -> SandboxSpec:
    fields: dict[str, object] = {
        "session_id": "sess-1",
        "org_id": "acme",
        "team_id": "payments",
        "run_id": "run-1",
        "thread_key": "C0123:1712345678.000100",
        "env": {"SANDBOX_GREETING": "hello from the spec"},
    }
    fields.update(changes)
    return SandboxSpec(**fields)  # type: ignore[arg-type]


def _require_bubblewrap() -> None:
    problem = bubblewrap_problem()
    if problem is None:
        return
    environment_limit = problem == BWRAP_MISSING or problem.startswith(USERNS_WORDS)
    if os.environ.get("INCIDENTFOX_REQUIRE_SANDBOX") == "1" or not environment_limit:
        pytest.fail(f"bubblewrap sandboxes are required but cannot run here: {problem}")
    print(f"skipping: {problem}", file=sys.stderr)
    pytest.skip(f"bubblewrap sandboxes cannot run here: {problem}")


@pytest.fixture
def backend(tmp_path: Path) -> BubblewrapBackend:
    _require_bubblewrap()
    return BubblewrapBackend(tmp_path / "sandboxes")


async def _http_proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await reader.readuntil(b"\r\n\r\n")
    body = b"proxy saw " + request.split(b" ")[1]
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    writer.close()


@pytest.fixture
async def unix_proxy(tmp_path: Path) -> AsyncIterator[Path]:
    """A tiny HTTP server on a Unix socket standing in for IncidentFox's model proxy."""
    path = tmp_path / "proxy.sock"
    server = await asyncio.start_unix_server(_http_proxy, str(path))
    yield path
    server.close()


@pytest.fixture
async def tcp_proxy() -> AsyncIterator[int]:
    server = await asyncio.start_server(_http_proxy, "127.0.0.1", 0)
    yield int(server.sockets[0].getsockname()[1])
    server.close()


@pytest.fixture
async def sandbox(backend: BubblewrapBackend, unix_proxy: Path) -> AsyncIterator[Sandbox]:
    created = await backend.create(_spec(proxy=ProxyEndpoint(unix_socket=unix_proxy)))
    yield created
    await backend.destroy(created)


@pytest.fixture
def home_canary() -> Iterator[tuple[Path, str]]:
    """A secret file in the host user's home, where credentials usually live."""
    secret = "home-canary-" + secrets.token_hex(8)
    path = Path.home() / f".incidentfox-canary-{secrets.token_hex(4)}"
    path.write_text(secret, encoding="utf-8")
    yield path, secret
    path.unlink(missing_ok=True)


def _host_processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return [pid for pid in found if pid != os.getpid()]


def _exists(path: str | Path) -> bool:
    return Path(path).exists()


def _outbound_address() -> str | None:
    """The host's own non-loopback address (no packet is sent)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address


async def test_a_command_cannot_read_host_canary_files(
    backend: BubblewrapBackend, sandbox: Sandbox, tmp_path: Path, home_canary: tuple[Path, str]
) -> None:
    outside_secret = "tmp-canary-" + secrets.token_hex(8)
    outside = tmp_path / "outside" / "canary.txt"
    outside.parent.mkdir()
    outside.write_text(outside_secret, encoding="utf-8")
    home_path, home_secret = home_canary
    script = (
        f"cat {outside} {home_path}; ls -a {Path.home()} {tmp_path}; "
        "grep -rs -e tmp-canary- -e home-canary- / --exclude-dir=proc --exclude-dir=sys "
        "--exclude-dir=usr --exclude-dir=dev; echo done"
    )
    result = await backend.exec(sandbox, ["/bin/sh", "-c", script], timeout_s=60)
    assert "done" in result.stdout
    assert "No such file or directory" in result.stderr
    for secret in (outside_secret, home_secret):
        assert secret not in result.stdout + result.stderr


async def test_a_command_cannot_see_the_host_environment(
    backend: BubblewrapBackend, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = "env-canary-" + secrets.token_hex(8)
    monkeypatch.setenv("INCIDENTFOX_CANARY_TOKEN", canary)
    script = "env; cat /proc/*/environ /proc/*/cmdline 2>/dev/null | tr '\\0' '\\n'"
    result = await backend.exec(sandbox, ["/bin/sh", "-c", script], timeout_s=20)
    assert "SANDBOX_GREETING=hello from the spec" in result.stdout
    assert "HOME=/work/.home" in result.stdout
    assert canary not in result.stdout
    assert "INCIDENTFOX_CANARY_TOKEN" not in result.stdout


async def test_a_command_cannot_write_outside_the_workdir(
    backend: BubblewrapBackend, sandbox: Sandbox, tmp_path: Path
) -> None:
    marker = "written-" + secrets.token_hex(6)
    targets = ["/usr", "/etc", "/", "/opt/claude", "/run/incidentfox", str(tmp_path), str(Path.home())]
    attempts = "; ".join(f"echo x > {t.rstrip('/')}/{marker} && echo WROTE {t}" for t in targets)
    script = f"{attempts}; echo x > /tmp/{marker} && echo tmp-ok; echo kept > /work/{marker} && echo work-ok"
    result = await backend.exec(sandbox, ["/bin/sh", "-c", script], timeout_s=20)
    assert "WROTE" not in result.stdout
    assert "tmp-ok" in result.stdout
    assert "work-ok" in result.stdout
    assert (Path(sandbox.workdir) / marker).read_text() == "kept\n"
    assert not (tmp_path / marker).exists()
    assert not (Path.home() / marker).exists()
    assert not (Path("/tmp") / marker).exists()


@pytest.mark.parametrize("proxy_kind", ["unix socket", "tcp"])
async def test_the_network_reaches_the_proxy_and_nothing_else(
    backend: BubblewrapBackend, unix_proxy: Path, tcp_proxy: int, proxy_kind: str
) -> None:
    touched: list[str] = []

    async def host_service(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        touched.append("connected")
        writer.close()

    listener = await asyncio.start_server(host_service, "0.0.0.0", 0)
    port = int(listener.sockets[0].getsockname()[1])
    proxy = (
        ProxyEndpoint(unix_socket=unix_proxy)
        if proxy_kind == "unix socket"
        else ProxyEndpoint(host="127.0.0.1", port=tcp_proxy)
    )
    created = await backend.create(_spec(proxy=proxy))
    addresses = [("127.0.0.1", port), ("127.0.0.1", tcp_proxy), ("1.1.1.1", 443), ("8.8.8.8", 53)]
    if (own := _outbound_address()) is not None:
        addresses.append((own, port))
    script = f"""
import os, socket, urllib.request
print(urllib.request.urlopen(os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", timeout=5).read().decode())
for address in {addresses!r}:
    probe = socket.socket()
    probe.settimeout(3)
    try:
        probe.connect(address)
        print("REACHED", address)
    except OSError as exc:
        print("blocked", address, exc.errno)
"""
    try:
        result = await backend.exec(
            created,
            ["/usr/bin/python3", "-c", script],
            timeout_s=30,
            env={"ANTHROPIC_BASE_URL": str(created.proxy_url)},
        )
    finally:
        await backend.destroy(created)
        listener.close()
    assert created.proxy_url == "http://127.0.0.1:8787"
    assert "proxy saw /v1/messages" in result.stdout, result.stderr
    assert "REACHED" not in result.stdout
    assert result.stdout.count("blocked") == len(addresses)
    assert touched == []


async def test_a_command_is_killed_at_its_timeout(backend: BubblewrapBackend, sandbox: Sandbox) -> None:
    marker = f"98{secrets.randbelow(10**6)}.5"
    started = time.monotonic()
    result = await backend.exec(
        sandbox, ["/bin/sh", "-c", f"sleep {marker} & sleep {marker}; echo finished"], timeout_s=1.5
    )
    assert result.timed_out
    assert "finished" not in result.stdout
    assert time.monotonic() - started < 6
    await asyncio.sleep(0.2)
    assert _host_processes_with(f"sleep {marker}") == []


async def test_a_fork_bomb_is_contained(backend: BubblewrapBackend) -> None:
    created = await backend.create(_spec(pids=64))
    counting = (
        "import os, time\nforks = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
        "            time.sleep(30)\n            os._exit(0)\n        forks += 1\n"
        "except OSError as exc:\n    print('stopped after', forks, exc.strerror)\n"
    )
    bomb = "bomb_fn() { bomb_fn | bomb_fn & }; bomb_fn; sleep 3; echo still-here"
    try:
        counted = await backend.exec(created, ["/usr/bin/python3", "-c", counting], timeout_s=20)
        started = time.monotonic()
        bombed = await backend.exec(created, ["/bin/sh", "-c", bomb], timeout_s=8)
        elapsed = time.monotonic() - started
    finally:
        await backend.destroy(created)
    forks = int(counted.stdout.split()[2])
    assert 0 < forks < 64, counted
    assert elapsed < 15
    # The pids limit, not the host, stops the bomb: either the shell survives to
    # finish, the timeout kills the tree, or the shell itself is refused a fork.
    refused = "Cannot fork" in bombed.stderr or "Resource temporarily unavailable" in bombed.stderr
    assert (bombed.exit_code == 0 and "still-here" in bombed.stdout) or bombed.timed_out or refused, bombed
    await asyncio.sleep(0.2)
    assert _host_processes_with("bomb_fn") == []


async def test_a_command_over_its_memory_limit_is_stopped(backend: BubblewrapBackend) -> None:
    created = await backend.create(_spec(memory_bytes=128 * MIB))
    hog = "blocks = [bytearray(16 * 1024 * 1024) for _ in range(32)]\nprint('survived')"
    try:
        result = await backend.exec(created, ["/usr/bin/python3", "-c", hog], timeout_s=30)
    finally:
        await backend.destroy(created)
    assert "survived" not in result.stdout
    assert result.exit_code != 0


async def test_files_and_the_workdir_are_bounded_by_its_size_limit(backend: BubblewrapBackend) -> None:
    created = await backend.create(_spec(workdir_bytes=2 * MIB))
    write = "import sys\nopen(sys.argv[1], 'wb').write(b'x' * int(sys.argv[2]))\nprint('wrote')"
    try:
        too_big = await backend.exec(
            created, ["/usr/bin/python3", "-c", write, "big", str(3 * MIB)], timeout_s=10
        )
        await backend.exec(created, ["rm", "-f", "big"], timeout_s=10)
        for name in ("a", "b", "c"):
            await backend.exec(created, ["/usr/bin/python3", "-c", write, name, str(MIB)], timeout_s=10)
        with pytest.raises(SandboxLimitExceeded, match="over this team's limit of 2 MB"):
            await backend.exec(created, ["true"], timeout_s=10)
    finally:
        await backend.destroy(created)
    assert "wrote" not in too_big.stdout
    assert "File too large" in too_big.stderr or too_big.exit_code != 0


async def test_the_workdir_persists_between_execs_and_is_gone_after_destroy(
    backend: BubblewrapBackend,
) -> None:
    created = await backend.create(_spec())
    await backend.exec(
        created, ["/bin/sh", "-c", "mkdir -p notes && echo remembered > notes/a"], timeout_s=10
    )
    again = await backend.exec(created, ["cat", "notes/a"], timeout_s=10)
    workdir = Path(created.workdir)
    assert again.stdout == "remembered\n"
    assert _exists(workdir / "notes" / "a")
    await backend.destroy(created)
    assert not _exists(workdir)
    assert not _exists(created.details["state_dir"])
    with pytest.raises(SandboxUnavailable, match="destroyed"):
        await backend.exec(created, ["true"], timeout_s=5)
    await backend.destroy(created)


async def test_touch_records_activity_for_the_ttl(backend: BubblewrapBackend, sandbox: Sandbox) -> None:
    before = sandbox.last_active_at
    await asyncio.sleep(0.01)
    await backend.touch(sandbox)
    marker = Path(sandbox.details["state_dir"]) / "last-active"
    assert sandbox.last_active_at > before
    assert abs(marker.stat().st_mtime - sandbox.last_active_at.timestamp()) < 1


async def test_wrap_runs_a_long_running_program_with_its_stdio_piped_through(
    backend: BubblewrapBackend, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "session-token-" + secrets.token_hex(8)
    monkeypatch.setenv("INCIDENTFOX_CANARY_TOKEN", "host-only")
    echo_upper = (
        "import hashlib, os, sys\ntoken = os.environ.get('PROXY_TOKEN', '').encode()\n"
        "print('ready', hashlib.sha256(token).hexdigest() == sys.argv[1], "
        "'INCIDENTFOX_CANARY_TOKEN' in os.environ, os.getcwd(), flush=True)\n"
        "for line in sys.stdin:\n    print(line.strip().upper(), flush=True)\nprint('bye', flush=True)\n"
    )
    command = await backend.wrap(sandbox, ["/usr/bin/python3", "-c", echo_upper], {"PROXY_TOKEN": token})
    launcher = command.write_launcher(tmp_path / "launch-cli")
    process = await asyncio.create_subprocess_exec(
        str(launcher),
        hashlib.sha256(token.encode()).hexdigest(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    assert process.stdin is not None and process.stdout is not None
    greeting = await asyncio.wait_for(process.stdout.readline(), 10)
    host_view = [pid for pid in _host_processes_with(token) if pid != process.pid]
    process.stdin.write(b"ping\n")
    await process.stdin.drain()
    answer = await asyncio.wait_for(process.stdout.readline(), 10)
    process.stdin.write(b"second\n")
    process.stdin.close()
    rest = await asyncio.wait_for(process.stdout.read(), 10)
    assert await process.wait() == 0
    assert greeting.decode().split() == ["ready", "True", "False", "/work"]
    assert answer == b"PING\n"
    assert rest == b"SECOND\nbye\n"
    assert host_view == [], "the session token must not show in the host's process list"
    assert stat.S_IMODE(launcher.stat().st_mode) == 0o700


async def test_terminating_a_wrapped_program_leaves_nothing_running(
    backend: BubblewrapBackend, sandbox: Sandbox
) -> None:
    marker = f"97{secrets.randbelow(10**6)}.25"
    command = await backend.wrap(sandbox, ["/bin/sh", "-c", f"sleep {marker} & sleep {marker}"])
    process = await asyncio.create_subprocess_exec(*command.argv, env=dict(command.env))
    for _ in range(50):
        if len(_host_processes_with(f"sleep\0{marker}")) == 2:
            break
        await asyncio.sleep(0.1)
    assert len(_host_processes_with(f"sleep\0{marker}")) == 2
    process.terminate()
    await asyncio.wait_for(process.wait(), 10)
    await asyncio.sleep(0.3)
    assert _host_processes_with(f"sleep\0{marker}") == []


async def test_wrap_runs_the_bundled_claude_cli_inside(backend: BubblewrapBackend, sandbox: Sandbox) -> None:
    cli_dir = bundled_cli_dir()
    if cli_dir is None:
        pytest.fail("claude-agent-sdk's bundled CLI is not installed in this environment")
    command = await backend.wrap(sandbox, [str(cli_dir / "claude"), "--version"])
    process = await asyncio.create_subprocess_exec(
        *command.argv, env=dict(command.env), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err
    assert "Claude Code" in out.decode()
    assert "/opt/claude/claude" in command.argv


async def test_a_missing_bubblewrap_is_refused_in_plain_words(tmp_path: Path) -> None:
    backend = BubblewrapBackend(tmp_path / "sandboxes", bwrap=str(tmp_path / "no-such-bwrap"))
    with pytest.raises(SandboxUnavailable) as refused:
        await backend.create(_spec())
    assert refused.value.message.startswith("bubblewrap is not installed")
    assert "apt-get install bubblewrap" in refused.value.message
    assert not (tmp_path / "sandboxes").exists()


async def test_a_kernel_without_user_namespaces_is_refused_in_plain_words(tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    message = "bwrap: No permissions to creating new namespace, likely because the kernel does not allow"
    fake.write_text(f"#!/bin/sh\necho '{message} non-privileged user namespaces.' >&2\nexit 1\n")
    fake.chmod(0o755)
    backend = BubblewrapBackend(tmp_path / "sandboxes", bwrap=str(fake))
    with pytest.raises(SandboxUnavailable) as refused:
        await backend.create(_spec())
    assert refused.value.message.startswith(USERNS_WORDS)
    assert "No permissions to creating new namespace" in refused.value.message
    assert "kubernetes" in refused.value.message


async def test_unsafe_local_runs_unconfined_in_its_workdir_with_only_the_spec_environment(
    tmp_path: Path, unix_proxy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INCIDENTFOX_CANARY_TOKEN", "host-only")
    backend = UnsafeLocalBackend(tmp_path / "unsafe")
    created = await backend.create(_spec(proxy=ProxyEndpoint(unix_socket=unix_proxy)))
    script = (
        "import os, urllib.request\n"
        "print(os.getcwd(), os.environ['HOME'], 'INCIDENTFOX_CANARY_TOKEN' in os.environ)\n"
        "print(urllib.request.urlopen(os.environ['BASE'] + '/ping', timeout=5).read().decode())\n"
    )
    try:
        result = await backend.exec(
            created, ["/usr/bin/python3", "-c", script], timeout_s=10, env={"BASE": str(created.proxy_url)}
        )
        slow = await backend.exec(created, ["sleep", "30"], timeout_s=0.5)
    finally:
        await backend.destroy(created)
    cwd, home, leaked = result.stdout.splitlines()[0].split()
    assert not created.confined
    assert (cwd, home, leaked) == (created.workdir, f"{created.workdir}/.home", "False")
    assert "proxy saw /ping" in result.stdout
    assert slow.timed_out
    assert not _exists(created.workdir)


async def test_unsafe_local_reaches_the_proxy_again_after_a_restart(tmp_path: Path, unix_proxy: Path) -> None:
    before = UnsafeLocalBackend(tmp_path / "unsafe")
    created = await before.create(_spec(proxy=ProxyEndpoint(unix_socket=unix_proxy)))
    old_url = created.proxy_url
    await before._relays.pop(created.id).close()
    after = UnsafeLocalBackend(tmp_path / "unsafe")
    ping = (
        "import os, urllib.request\n"
        "print(urllib.request.urlopen(os.environ['BASE'] + '/ping', timeout=5).read())"
    )
    try:
        await after.adopt(created)
        result = await after.exec(
            created, ["/usr/bin/python3", "-c", ping], timeout_s=10, env={"BASE": str(created.proxy_url)}
        )
    finally:
        await after.destroy(created)
    assert created.proxy_url != old_url
    assert "proxy saw /ping" in result.stdout
