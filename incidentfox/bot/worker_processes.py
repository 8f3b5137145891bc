"""``serve --workers N``: N ``serve --role worker`` processes beside the bot, kept running.

The bot process then only acks, routes and queues, so a burst of investigations never delays an ack
on its event loop, and a multi-core host is used. The workers share the bot's Redis run queue and
database; each gets the bot's settings (including what the local workspace filled in at start, such
as the in-process Slack's URL and tokens), its own HTTP port for ``/metrics`` and a stable
``WORKER_ID``, so a worker restarted after a crash takes its own runs back at once.

A worker that exits is started again, after a pause that grows while it keeps dying young.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

from incidentfox.bot.settings import Settings

log = logging.getLogger(__name__)

RESTART_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
HEALTHY_AFTER_S = 30.0
"""A worker that ran this long before exiting is restarted at once, not after a growing pause."""
PR_SET_PDEATHSIG = 1
WORKER_NICENESS = 10
"""Investigations yield the CPU to acks: Slack retries an event it has not seen acked within 3 s."""


def settings_environment(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings (secrets included: it is
    the same installation, and environment variables are how it gets them anyway)."""
    env: dict[str, str] = {}
    values = settings.model_dump()
    for name, field in Settings.model_fields.items():
        value = values.get(name)
        if value is None:
            continue
        key = field.validation_alias if isinstance(field.validation_alias, str) else name.upper()
        if isinstance(value, SecretStr):
            env[key] = value.get_secret_value()
        elif isinstance(value, bool):
            env[key] = "1" if value else "0"
        elif isinstance(value, Path | int | float | str):
            env[key] = str(value)
    return env


def _prepare_child() -> None:
    """In the child, before exec: SIGTERM it when the bot dies, even by SIGKILL (Linux only), and give
    it a lower CPU priority than the bot, so on a busy host the kernel runs the ack path first."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


class WorkerProcesses:
    def __init__(
        self, count: int, settings: Settings, *, base_id: str, extra_env: Mapping[str, str] | None = None
    ):
        self.count = count
        self._settings = settings
        self._base_id = base_id
        self._extra_env = dict(extra_env or {})
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    def worker_id(self, index: int) -> str:
        return f"{self._base_id}-worker-{index + 1}"

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes.values() if process.returncode is None]

    async def start(self) -> None:
        for index in range(self.count):
            await self._spawn(index)
            self._watchers.append(asyncio.create_task(self._watch(index)))
        log.info("started %d worker processes: %s", self.count, ", ".join(map(str, self.pids)))

    async def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM every worker (each finishes or hands back its runs), SIGKILL any still there after
        ``grace_s``."""
        self._stopping = True
        for watcher in self._watchers:
            watcher.cancel()
        for watcher in self._watchers:
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        self._watchers.clear()
        running = [p for p in self._processes.values() if p.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(process.wait()) for process in running]
        if waits:
            _, stuck = await asyncio.wait(waits, timeout=grace_s)
            for wait in stuck:
                wait.cancel()
            for process in running:
                if process.returncode is None:
                    log.error("worker process %d did not stop in %.0f s; killing it", process.pid, grace_s)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        self._processes.clear()

    def _environment(self, index: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(settings_environment(self._settings))
        port = self._settings.port
        env.update(
            {
                "WORKER_ID": self.worker_id(index),
                "WORKER_PROCESSES": "0",
                "PORT": str(port + 1 + index) if port else "0",
                "LOCAL_WORKSPACE": "0",
                "INCIDENTFOX_DEMO": "0",
            }
        )
        env.update(self._extra_env)
        return env

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "incidentfox.bot.cli",
            "serve",
            "--role",
            "worker",
            env=self._environment(index),
            preexec_fn=_prepare_child,
        )
        self._processes[index] = process
        return process

    async def _watch(self, index: int) -> None:
        failures = 0
        while not self._stopping:
            process = self._processes[index]
            started = time.monotonic()
            code = await process.wait()
            if self._stopping:
                return
            failures = 0 if time.monotonic() - started >= HEALTHY_AFTER_S else failures + 1
            delay = RESTART_DELAYS_S[min(failures, len(RESTART_DELAYS_S) - 1)] if failures else 0.0
            log.error(
                "worker process %s (pid %d) exited with %s; starting it again in %.1f s",
                self.worker_id(index),
                process.pid,
                code,
                delay,
            )
            await asyncio.sleep(delay)
            if self._stopping:
                return
            await self._spawn(index)
