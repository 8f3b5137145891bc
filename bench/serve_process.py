"""``incidentfox serve`` as a real child process, as an operator runs it: settings in the environment,
the log in a file, the HTTP port read from the log, SIGTERM to stop and SIGKILL to crash it.

Used by ``bench/drain.py`` and by the end-to-end tests of worker processes.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from incidentfox.config.permissions import Principal
from incidentfox.config.service import ConfigService

LISTENING = re.compile(r"IncidentFox listening on http://[^:]+:(\d+) role=(\w+)")


class ServeProcess:
    def __init__(self, env: dict[str, str], log: Path, args: Sequence[str] = ()) -> None:
        self.env, self.log, self.args = env, log, list(args)
        self.process: asyncio.subprocess.Process | None = None
        self.port: int | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def start(self, timeout: float = 90.0) -> None:
        """Start and wait for its "listening" line (appending to the log, so a restart keeps both)."""
        seen = len(LISTENING.findall(self.log_text()))
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "incidentfox.bot.cli",
                "serve",
                *self.args,
                env=self.env,
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.findall(self.log_text())
            if len(found) > seen:
                self.port = int(found[-1][0])
                return
            if self.process.returncode is not None:
                break
            await asyncio.sleep(0.1)
        raise RuntimeError(f"serve did not start; its log ends:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: a crash, nothing cleaned up."""
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    async def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM and wait; SIGKILL and raise if it does not stop within ``timeout``."""
        assert self.process is not None, "not started"
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return await asyncio.wait_for(self.process.wait(), timeout=timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
                raise RuntimeError("serve did not stop on SIGTERM") from None
        return self.process.returncode

    def children(self) -> dict[str, int]:
        """``WORKER_ID`` → pid of this process's live children (the workers of ``--workers N``)."""
        return child_pids(self.pid)


def child_pids(parent: int) -> dict[str, int]:
    """``WORKER_ID`` → pid of ``parent``'s live child processes (those with a ``WORKER_ID``)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) != parent or fields[0] == "Z":
            continue
        for item in environ:
            if item.startswith(b"WORKER_ID="):
                found[item.split(b"=", 1)[1].decode()] = int(entry.name)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def seed_checkout_team(
    config: ConfigService, *, workspace_id: str, channel: str, kubernetes_url: str, kubernetes_token: str
) -> None:
    """The org ``acme`` owning the Slack workspace, and its team ``checkout`` claiming ``channel`` with
    the Kubernetes cluster at ``kubernetes_url`` (namespace ``prod``), as the processes will find it."""
    admin = Principal(kind="admin")
    async with config.sessions.begin() as session:
        await config.create_org(session, org_id="acme", name="Acme", actor="bench")
    await config.create_node(admin, "acme", {"node_id": "checkout", "parent_id": "acme", "kind": "team"})
    ownership = {"slack": {"workspace_ids": [workspace_id]}}
    await config.write_config(admin, "acme", "acme", ownership, operation="put")
    cluster = {"api_url": kubernetes_url, "token": kubernetes_token, "namespace": "prod"}
    document = {"integrations": {"kubernetes": cluster}, "routing": {"slack_channel_ids": [channel]}}
    await config.write_config(admin, "acme", "checkout", document, operation="put")
