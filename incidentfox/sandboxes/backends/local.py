"""The ``local`` sandbox: bubblewrap on the IncidentFox host.

Every ``exec`` and every ``wrap``-ped program gets a fresh set of namespaces (user, mount, PID,
network, IPC, UTS, cgroup) around the same persistent workdir:

* the root is an empty tmpfs, remounted read-only once built; ``/usr`` and the ``/lib``, ``/bin`` and
  ``/sbin`` links are bound read-only, and of ``/etc`` only what programs need to start (certificates,
  the loader cache, ``alternatives``, time zone, ``protocols``/``services``) plus a generated
  ``passwd``/``group``/``hosts`` naming the one sandbox user. No host home, no ``/etc/ssl/private``;
* the workdir, a host directory under the backend's state root, is bound writable at ``/work``
  (``HOME`` is ``/work/.home``); ``/tmp`` is a private size-limited tmpfs; ``/proc`` and ``/dev`` are
  the sandbox's own;
* the user is uid 1000 inside a user namespace with every capability dropped and no further user
  namespaces allowed (``--disable-userns``); a new session (no terminal injection); killed with its
  parent;
* the environment is cleared and set to the spec's, passed through a file descriptor so that no
  value shows in the host's process list;
* the network namespace has only loopback. With a proxy, ``sandbox_init`` listens on
  ``127.0.0.1:<sandbox_port>`` inside and relays to the proxy's Unix socket bound at
  ``/run/incidentfox/proxy.sock``: the one thing reachable;
* limits: ``RLIMIT_NPROC`` (per sandbox user namespace), ``RLIMIT_FSIZE`` (the workdir limit),
  ``RLIMIT_CORE`` 0, ``RLIMIT_CPU`` (an ``exec``'s timeout), and either a cgroup (``local_cgroups``:
  pids, total memory, CPU quota) or, without one, ``RLIMIT_AS`` per process. Linux ignores
  ``RLIMIT_NPROC`` for the host's root user, so as root a ``pids`` cgroup is required. The workdir's
  total size is checked before each ``exec``; nothing in the kernel enforces it mid-command.

Not done here: a seccomp filter (the Kubernetes backend gets ``RuntimeDefault``); the jail shares the
host kernel, so a kernel bug reachable from an unprivileged user namespace is an escape.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import math
import os
import secrets
import shlex
import shutil
import stat
import subprocess
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from incidentfox.sandboxes.backends import sandbox_init
from incidentfox.sandboxes.backends.base import (
    MIB,
    ExecResult,
    LaunchCommand,
    Sandbox,
    SandboxBackend,
    SandboxLimitExceeded,
    SandboxSpec,
    SandboxUnavailable,
    checked_env,
    now_utc,
)
from incidentfox.sandboxes.backends.local_cgroups import (
    CgroupLimits,
    Hierarchy,
    SandboxCgroups,
    detect_hierarchies,
)
from incidentfox.sandboxes.backends.local_relay import ProxyRelay, proxy_connector
from incidentfox.sandboxes.backends.processes import run_captured

SANDBOX_WORKDIR = "/work"
SANDBOX_HOME = "/work/.home"
CLI_MOUNT = "/opt/claude"
INIT_MOUNT = "/run/incidentfox/init.py"
PROXY_MOUNT = "/run/incidentfox/proxy.sock"
SANDBOX_UID = 1000
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
_SYSTEM_LINKS = ("bin", "sbin", "lib", "lib64", "lib32", "libx32")
_ETC = (
    "alternatives",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "nsswitch.conf",
    "protocols",
    "services",
)
_GENERATED_ETC = {
    "passwd": f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:sandbox:{SANDBOX_HOME}:/bin/sh\n",
    "group": f"sandbox:x:{SANDBOX_UID}:\n",
    "hosts": "127.0.0.1 localhost sandbox\n::1 localhost\n",
    "hostname": "sandbox\n",
}
_PROBE_TIMEOUT_S = 15

BWRAP_MISSING = (
    "bubblewrap is not installed on the IncidentFox host, so the SRE agent cannot get a local sandbox. "
    "Install it (Debian and Ubuntu: `apt-get install bubblewrap`) or set `sandbox.backend` to `kubernetes`."
)
USERNS_FORBIDDEN = (
    "the kernel forbids unprivileged user namespaces, which bubblewrap needs to build the sandbox "
    "(bubblewrap said: {detail}). Allow them on the host (`sysctl kernel.unprivileged_userns_clone=1`, "
    "`user.max_user_namespaces`, or Ubuntu's AppArmor user-namespace restriction; in a container, a "
    "seccomp profile that permits them) or set `sandbox.backend` to `kubernetes`."
)
BWRAP_FAILED = "bubblewrap could not start a sandbox on this host (it said: {detail})."
NO_SYSTEM_PYTHON = (
    "the local sandbox needs the system's python3 under /usr (Debian: `apt-get install python3`) to run "
    "its proxy forwarder; none was found."
)
ROOT_WITHOUT_CGROUP = (
    "IncidentFox runs as root and cannot create a cgroup with a process limit, and Linux does not apply "
    "per-user process limits to root, so a sandboxed fork bomb could take the host down. Run IncidentFox "
    "as an unprivileged user, or give it a writable cgroup with the pids controller."
)


def bundled_cli_dir() -> Path | None:
    """Where claude-agent-sdk keeps its bundled Claude Code CLI, without importing the SDK."""
    spec = importlib.util.find_spec("claude_agent_sdk")
    if spec is None or spec.origin is None:
        return None
    directory = Path(spec.origin).parent / "_bundled"
    return directory if (directory / "claude").is_file() else None


def system_python() -> str | None:
    """A python3 under ``/usr``: the only interpreter the sandbox can see."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in _SYSTEM_LINKS:
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _classify(stderr: str) -> str:
    detail = next((line for line in stderr.strip().splitlines() if line.strip()), "no output").strip()
    lowered = detail.lower()
    if "namespace" in lowered or "uid map" in lowered or "setting up uid" in lowered:
        return USERNS_FORBIDDEN.format(detail=detail)
    return BWRAP_FAILED.format(detail=detail)


@lru_cache(maxsize=8)
def bubblewrap_problem(bwrap: str = "bwrap") -> str | None:
    """Why bubblewrap sandboxes cannot run on this host, or ``None`` when they can. Checked once per
    process by starting a throwaway sandbox with the namespaces a real one uses."""
    path = shutil.which(bwrap)
    if path is None:
        return BWRAP_MISSING
    if system_python() is None:
        return NO_SYSTEM_PYTHON
    probe = [path, *_system_mounts(), "--proc", "/proc", "--dev", "/dev", "--unshare-all"]
    probe += ["--unshare-user", "--disable-userns", "--die-with-parent", "--", "/usr/bin/true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return BWRAP_FAILED.format(detail=str(exc))
    return None if done.returncode == 0 else _classify(done.stderr)


def remove_tree(path: Path) -> None:
    """Delete ``path`` and everything in it, unlocking directories a sandbox made unwritable."""

    def unlock(function: Any, target: str, _exc: object) -> None:
        parent = os.path.dirname(target)
        with contextlib.suppress(OSError):
            os.chmod(parent, stat.S_IRWXU)
            os.chmod(target, stat.S_IRWXU)
        with contextlib.suppress(OSError):
            function(target)

    if path.exists():
        shutil.rmtree(path, onerror=unlock)


def _tree_bytes(root: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total


def _cgroup_limits(spec: SandboxSpec) -> CgroupLimits:
    return CgroupLimits(pids=spec.pids, memory_bytes=spec.memory_bytes, cpus=spec.cpus)


def _write_options(state: Path, options: Sequence[str]) -> Path:
    """bubblewrap's options as the NUL-separated file it reads with ``--args``, private to IncidentFox."""
    if not state.is_dir():
        raise SandboxUnavailable("this sandbox was destroyed; start a new session to get a fresh one.")
    path = state / "launch" / f"{secrets.token_hex(8)}.args"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(b"".join(option.encode() + b"\0" for option in options))
    return path


class BubblewrapBackend(SandboxBackend):
    """Sandboxes as bubblewrap jails; their files live under ``state_root/<sandbox id>/``."""

    name = "local"

    def __init__(
        self,
        state_root: Path,
        *,
        bwrap: str = "bwrap",
        ro_binds: Mapping[Path, str] | None = None,
        cgroup_parents: Sequence[Path] = (),
    ) -> None:
        """``ro_binds`` maps host directories to where they appear read-only inside (by default the
        bundled Claude Code CLI at ``/opt/claude``); ``wrap`` and ``exec`` translate a host path
        under one of them in ``argv[0]``. ``cgroup_parents``: see ``local_cgroups``."""
        self.state_root = state_root
        self.bwrap = bwrap
        if ro_binds is None:
            cli = bundled_cli_dir()
            ro_binds = {cli: CLI_MOUNT} if cli else {}
        self.ro_binds = dict(ro_binds)
        self.cgroup_parents = tuple(cgroup_parents)
        self._hierarchies: tuple[Hierarchy, ...] | None = None
        self._relays: dict[str, ProxyRelay] = {}

    async def _cgroups(self, sandbox_id: str) -> SandboxCgroups:
        if self._hierarchies is None:
            self._hierarchies = await asyncio.to_thread(detect_hierarchies, self.cgroup_parents)
        return SandboxCgroups(sandbox_id, self._hierarchies)

    async def create(self, spec: SandboxSpec) -> Sandbox:
        problem = await asyncio.to_thread(bubblewrap_problem, self.bwrap)
        if problem:
            raise SandboxUnavailable(problem)
        sandbox_id = "sbx-" + secrets.token_hex(6)
        state = self.state_root / sandbox_id
        cgroups = await self._cgroups(sandbox_id)
        if "pids" not in cgroups.controllers and os.geteuid() == 0:
            raise SandboxUnavailable(ROOT_WITHOUT_CGROUP)
        try:
            await asyncio.to_thread(self._make_state, state)
            await asyncio.to_thread(cgroups.create, _cgroup_limits(spec))
        except OSError as exc:
            await asyncio.to_thread(remove_tree, state)
            raise SandboxUnavailable(f"the local sandbox could not be set up: {exc.strerror or exc}") from exc
        now = now_utc()
        sandbox = Sandbox(
            id=sandbox_id,
            backend=self.name,
            workdir=str(state / "work"),
            cwd=SANDBOX_WORKDIR,
            created_at=now,
            last_active_at=now,
            labels={"org": spec.org_id, "team": spec.team_id, "run": spec.run_id, "session": spec.session_id},
            spec=spec,
            proxy_url=f"http://127.0.0.1:{spec.proxy.sandbox_port}" if spec.proxy else None,
            details={"state_dir": str(state), "cgroup": cgroups.name},
        )
        try:
            await self._proxy_socket(sandbox)
        except (OSError, ValueError) as exc:
            await self.destroy(sandbox)
            raise SandboxUnavailable(f"the sandbox cannot reach the model proxy: {exc}") from exc
        return sandbox

    def _make_state(self, state: Path) -> None:
        self.state_root.mkdir(parents=True, exist_ok=True)
        state.mkdir(mode=0o700)
        for sub in ("work", "work/.home", "etc", "launch"):
            (state / sub).mkdir(mode=0o700)
        for name, text in _GENERATED_ETC.items():
            (state / "etc" / name).write_text(text, encoding="utf-8")
        (state / "last-active").touch()

    async def _proxy_socket(self, sandbox: Sandbox) -> Path | None:
        """The host Unix socket to bind into the sandbox: the proxy's own, or a relay to it."""
        proxy = sandbox.spec.proxy
        if proxy is None:
            return None
        if proxy.unix_socket is not None:
            if not await asyncio.to_thread(proxy.unix_socket.is_socket):
                raise ValueError(f"nothing listens on {proxy.unix_socket}")
            return proxy.unix_socket
        path = Path(sandbox.details["state_dir"]) / "proxy.sock"
        if sandbox.id not in self._relays:
            relay = ProxyRelay(proxy_connector(proxy))
            await relay.listen_unix(path)
            self._relays[sandbox.id] = relay
        return path

    def _host_to_sandbox(self, program: str) -> str:
        for host_dir, inside in self.ro_binds.items():
            with contextlib.suppress(ValueError):
                return str(Path(inside) / Path(program).relative_to(host_dir))
        return program

    def _bwrap_options(
        self, sandbox: Sandbox, env: Mapping[str, str], proxy_socket: Path | None
    ) -> list[str]:
        state, spec = Path(sandbox.details["state_dir"]), sandbox.spec
        args = ["--unshare-all", "--unshare-user", "--disable-userns"]
        args += ["--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox"]
        args += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
        for name, value in env.items():
            args += ["--setenv", name, value]
        args += _system_mounts()
        for entry in _ETC:
            if os.path.exists(f"/etc/{entry}"):
                args += ["--ro-bind", f"/etc/{entry}", f"/etc/{entry}"]
        for name in _GENERATED_ETC:
            args += ["--ro-bind", str(state / "etc" / name), f"/etc/{name}"]
        for host_dir, inside in self.ro_binds.items():
            args += ["--ro-bind", str(host_dir), inside]
        args += ["--ro-bind", sandbox_init.__file__, INIT_MOUNT]
        if proxy_socket is not None:
            args += ["--ro-bind", str(proxy_socket), PROXY_MOUNT]
        args += ["--bind", str(state / "work"), SANDBOX_WORKDIR]
        args += ["--size", str(spec.tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp"]
        args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/", "--chdir", SANDBOX_WORKDIR]
        return args

    def _init_settings(
        self, sandbox: Sandbox, cgroups: SandboxCgroups, proxy_socket: Path | None, cpu_s: int | None
    ) -> str:
        spec = sandbox.spec
        rlimits = {"NPROC": spec.pids, "FSIZE": spec.workdir_bytes, "CORE": 0}
        if "memory" not in cgroups.controllers:
            rlimits["AS"] = spec.memory_bytes
        if cpu_s is not None:
            rlimits["CPU"] = cpu_s
        settings: dict[str, Any] = {"rlimits": rlimits}
        if proxy_socket is not None and spec.proxy is not None:
            settings.update(listen_port=spec.proxy.sandbox_port, proxy_socket=PROXY_MOUNT)
        return json.dumps(settings, separators=(",", ":"))

    async def _command(
        self,
        sandbox: Sandbox,
        argv: Sequence[str],
        env: Mapping[str, str] | None,
        cpu_s: int | None,
    ) -> tuple[LaunchCommand, Path]:
        """The host command for ``argv`` and the options file it reads (delete it once done)."""
        if not argv:
            raise ValueError("an empty command cannot be run in a sandbox")
        base = {"HOME": SANDBOX_HOME, "PATH": SANDBOX_PATH, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
        base |= {"USER": "sandbox", "LOGNAME": "sandbox"}
        full_env = checked_env(base, sandbox.spec.env, env)
        proxy_socket = await self._proxy_socket(sandbox)
        cgroups = await self._cgroups(sandbox.id)
        await asyncio.to_thread(cgroups.ensure, _cgroup_limits(sandbox.spec))
        options = self._bwrap_options(sandbox, full_env, proxy_socket)
        options_file = await asyncio.to_thread(_write_options, Path(sandbox.details["state_dir"]), options)
        enter = "".join(f"echo $$ > {shlex.quote(str(p))} || exit 125; " for p in cgroups.procs_files())
        python = system_python() or "/usr/bin/python3"
        program = [self._host_to_sandbox(argv[0]), *argv[1:]]
        settings = self._init_settings(sandbox, cgroups, proxy_socket, cpu_s)
        command = (
            "/bin/sh",
            "-c",
            enter + 'exec "$@" 3<"$0"',
            str(options_file),
            shutil.which(self.bwrap) or self.bwrap,
            "--args",
            "3",
            "--",
            python,
            "-I",
            "-S",
            INIT_MOUNT,
            settings,
            "--",
            *program,
        )
        return LaunchCommand(argv=command, env={"PATH": "/usr/bin:/bin"}), options_file

    async def workdir_usage(self, sandbox: Sandbox) -> int:
        """Bytes the workdir's files take on disk."""
        return await asyncio.to_thread(_tree_bytes, Path(sandbox.workdir))

    async def exec(
        self,
        sandbox: Sandbox,
        argv: Sequence[str],
        *,
        timeout_s: float,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ExecResult:
        used = await self.workdir_usage(sandbox)
        if used > sandbox.spec.workdir_bytes:
            raise SandboxLimitExceeded(
                f"The sandbox's files take {used // MIB} MB, over this team's limit of "
                f"{sandbox.spec.workdir_bytes // MIB} MB, so no more commands run in it. "
                "Start a new session for a fresh sandbox."
            )
        command, options_file = await self._command(sandbox, argv, env, math.ceil(timeout_s) + 1)
        try:
            result = await run_captured(
                command.argv, env=command.env, cwd=None, stdin=stdin, timeout_s=timeout_s
            )
        finally:
            await asyncio.to_thread(options_file.unlink, missing_ok=True)
        return result

    async def wrap(
        self, sandbox: Sandbox, argv: Sequence[str], env: Mapping[str, str] | None = None
    ) -> LaunchCommand:
        command, _options_file = await self._command(sandbox, argv, env, None)
        return command

    async def touch(self, sandbox: Sandbox) -> None:
        sandbox.last_active_at = now_utc()
        marker = Path(sandbox.details["state_dir"]) / "last-active"
        with contextlib.suppress(OSError):
            stamp = sandbox.last_active_at.timestamp()
            os.utime(marker, (stamp, stamp))

    async def destroy(self, sandbox: Sandbox) -> None:
        relay = self._relays.pop(sandbox.id, None)
        if relay is not None:
            await relay.close()
        await asyncio.to_thread((await self._cgroups(sandbox.id)).remove)
        await asyncio.to_thread(remove_tree, Path(sandbox.details["state_dir"]))
