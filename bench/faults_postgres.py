"""A private PostgreSQL cluster and throwaway databases for the fault trials.

The shared server is never restarted: restarts happen on a private cluster on a free port.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import secrets
import shlex
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from bench.faults_processes import FoxProcess, die_with_parent


class PrivatePostgres:
    """A throwaway Postgres cluster in a temp dir on a free port, so that restarting it harms no one."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
        if not bins:
            raise RuntimeError("no /usr/lib/postgresql/*/bin (initdb, pg_ctl)")
        self.bin = Path(bins[-1])
        self.dir = Path(tempfile.mkdtemp(prefix="ifx-faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if os.geteuid() == 0:
            import pwd

            entry = pwd.getpwnam("postgres")
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def _pg(self, *argv: str, timeout: float = 60.0) -> None:
        process = await asyncio.create_subprocess_exec(
            *self.as_postgres,
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        try:
            output, _ = await asyncio.wait_for(process.communicate(), timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise RuntimeError(f"{shlex.join(argv[:2])} failed: {output.decode(errors='replace')[-400:]}")

    async def start(self) -> None:
        initdb = ["-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]
        await self._pg(str(self.bin / "initdb"), *initdb)
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.dir / "postgres.log")
        await self._pg(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", log, "-w", "-o", options, "start"
        )

    async def restart(self) -> None:
        log = str(self.dir / "postgres.log")
        pg_ctl = str(self.bin / "pg_ctl")
        await self._pg(pg_ctl, "-D", str(self.data), "-l", log, "-w", "-m", "fast", "restart")

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._pg(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop", timeout=20
            )
        shutil.rmtree(self.dir, ignore_errors=True)


@asynccontextmanager
async def postgres_database(admin_url: str) -> AsyncIterator[str]:
    """A new, migrated database on ``admin_url``'s server; dropped on exit."""
    from incidentfox.db.engine import create_engine
    from incidentfox.db.migrate import upgrade_to_head

    name = "ifx_faults_" + secrets.token_hex(4)
    connection = await asyncpg.connect(admin_url, timeout=5)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = admin_url.replace("postgresql://", "postgresql+asyncpg://", 1).rsplit("/", 1)[0] + f"/{name}"
    try:
        engine = create_engine(url)
        await upgrade_to_head(engine)
        await engine.dispose()
        yield url
    finally:
        FoxProcess.kill_all()
        connection = await asyncpg.connect(admin_url, timeout=5)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the command ------------------------------------------------------------------------------------------
