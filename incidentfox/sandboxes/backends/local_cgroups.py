"""Per-sandbox cgroups for the local backend, when the host lets IncidentFox make them.

Resource limits set with ``setrlimit`` are per process (memory, CPU time) or, for the process count,
per user namespace, and Linux does not apply ``RLIMIT_NPROC`` to processes of the host's root user
at all. A cgroup bounds the sandbox as a whole: ``pids.max`` (the fork bomb stops there, whoever
IncidentFox runs as), the memory of all its processes together, and a CPU quota in cores.

A sandbox's cgroup is ``incidentfox-<sandbox id>`` under IncidentFox's own cgroup (or under each of
``parents`` when given), in every hierarchy that has the controller: the cgroup v1 ``pids``,
``memory`` and ``cpu`` hierarchies, or the one cgroup v2 tree. On cgroup v2 a child only gets
controllers its parent lists in ``cgroup.subtree_control``, which Linux refuses to change while the
parent itself holds processes: there, give IncidentFox a delegated cgroup with ``pids`` (and
``memory``, ``cpu``) enabled for its children and pass it in ``parents``. Without a writable cgroup
the sandbox keeps its rlimits only (``available`` says whether it got one).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("pids", "memory", "cpu")
_CPU_PERIOD_US = 100_000


@dataclass(frozen=True, slots=True)
class CgroupLimits:
    pids: int
    memory_bytes: int
    cpus: float


@dataclass(frozen=True, slots=True)
class Hierarchy:
    controllers: frozenset[str]
    parent: Path
    """Where sandbox cgroups are made: IncidentFox's own cgroup in this hierarchy."""
    v2: bool


def _mounts() -> list[tuple[str, Path, str, set[str]]]:
    """(fstype, mount point, mount root, super options) of every cgroup mount this process sees."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                found.append((tail[0], Path(fields[4]), fields[3], set(tail[2].split(","))))
    return found


def _own_paths() -> dict[str, str]:
    """Controller (``""`` for v2) -> this process's cgroup path, from ``/proc/self/cgroup``."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _under(mount: Path, root: str, own: str) -> Path:
    relative = own[len(root) :] if root != "/" and own.startswith(root) else own
    return mount / relative.lstrip("/")


def _writable(directory: Path) -> bool:
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)


def _v2_controllers(directory: Path) -> frozenset[str]:
    """Controllers children of ``directory`` get, enabling them there if Linux allows it."""
    control = directory / "cgroup.subtree_control"
    try:
        enabled = set(control.read_text().split())
        offered = set((directory / "cgroup.controllers").read_text().split())
    except OSError:
        return frozenset()
    for name in (c for c in CONTROLLERS if c in offered and c not in enabled):
        with contextlib.suppress(OSError):
            control.write_text(f"+{name}")
            enabled.add(name)
    return frozenset(c for c in CONTROLLERS if c in enabled)


_V1_MARKERS = {"pids": "pids.max", "memory": "memory.limit_in_bytes", "cpu": "cpu.cfs_quota_us"}


def _given(directory: Path) -> Hierarchy | None:
    if not _writable(directory):
        return None
    if (directory / "cgroup.subtree_control").exists():
        return Hierarchy(_v2_controllers(directory), directory, True)
    names = frozenset(c for c, marker in _V1_MARKERS.items() if (directory / marker).exists())
    return Hierarchy(names, directory, False)


def detect_hierarchies(parents: Sequence[Path] = ()) -> tuple[Hierarchy, ...]:
    """Where sandbox cgroups can be made on this host (empty when nowhere); detect once and reuse."""
    return tuple(_hierarchies(parents))


def _hierarchies(parents: Sequence[Path]) -> list[Hierarchy]:
    if parents:
        return [h for h in map(_given, parents) if h is not None]
    own = _own_paths()
    found: list[Hierarchy] = []
    for fstype, mount, root, options in _mounts():
        if fstype == "cgroup2" and "" in own:
            directory = _under(mount, root, own[""])
            if _writable(directory):
                controllers = _v2_controllers(directory)
                if controllers:
                    found.append(Hierarchy(controllers, directory, True))
        elif fstype == "cgroup":
            names = frozenset(c for c in CONTROLLERS if c in options)
            path = next((own[c] for c in names if c in own), None)
            if names and path is not None and _writable(_under(mount, root, path)):
                found.append(Hierarchy(names, _under(mount, root, path), False))
    return found


class SandboxCgroups:
    """The cgroups of one sandbox, found again from its id (nothing to remember across restarts)."""

    def __init__(self, sandbox_id: str, hierarchies: Sequence[Hierarchy]) -> None:
        self.name = f"incidentfox-{sandbox_id}"
        self._hierarchies = tuple(hierarchies)

    @property
    def controllers(self) -> frozenset[str]:
        """What a cgroup can bound here: a subset of ``pids``, ``memory``, ``cpu``."""
        return frozenset().union(*(h.controllers for h in self._hierarchies))

    @property
    def directories(self) -> list[Path]:
        return [h.parent / self.name for h in self._hierarchies if h.controllers]

    def create(self, limits: CgroupLimits) -> None:
        """Make the cgroups and write their limits; an error leaves nothing behind."""
        try:
            for hierarchy in self._hierarchies:
                if hierarchy.controllers:
                    directory = hierarchy.parent / self.name
                    directory.mkdir(exist_ok=True)
                    _write_limits(directory, hierarchy, limits)
        except OSError:
            self.remove()
            raise

    def ensure(self, limits: CgroupLimits) -> None:
        """``create`` the cgroups if any is missing (cgroups do not survive a reboot; the workdir does)."""
        if any(not d.is_dir() for d in self.directories):
            self.create(limits)

    def procs_files(self) -> list[Path]:
        """The files a process writes its PID to, to enter every one of the sandbox's cgroups."""
        return [d / "cgroup.procs" for d in self.directories if d.is_dir()]

    def remove(self) -> None:
        """Kill whatever is still in the cgroups, then delete them."""
        for directory in self.directories:
            if not directory.is_dir():
                continue
            for _ in range(50):
                if not _kill_members(directory):
                    break
                time.sleep(0.02)
            with contextlib.suppress(OSError):
                directory.rmdir()


def _write_limits(directory: Path, hierarchy: Hierarchy, limits: CgroupLimits) -> None:
    quota = max(int(limits.cpus * _CPU_PERIOD_US), 1000)
    if hierarchy.v2:
        wanted = {
            "pids": {"pids.max": str(limits.pids)},
            "memory": {"memory.max": str(limits.memory_bytes), "memory.swap.max": "0"},
            "cpu": {"cpu.max": f"{quota} {_CPU_PERIOD_US}"},
        }
    else:
        wanted = {
            "pids": {"pids.max": str(limits.pids)},
            "memory": {"memory.limit_in_bytes": str(limits.memory_bytes)},
            "cpu": {"cpu.cfs_period_us": str(_CPU_PERIOD_US), "cpu.cfs_quota_us": str(quota)},
        }
    for controller in hierarchy.controllers:
        for filename, value in wanted[controller].items():
            target = directory / filename
            if target.exists():
                target.write_text(value)


def _kill_members(directory: Path) -> bool:
    """SIGKILL every process in the cgroup; whether there were any."""
    kill_switch = directory / "cgroup.kill"
    try:
        pids = [int(p) for p in (directory / "cgroup.procs").read_text().split()]
    except OSError:
        return False
    if pids and kill_switch.exists():
        with contextlib.suppress(OSError):
            kill_switch.write_text("1")
            return True
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return bool(pids)
