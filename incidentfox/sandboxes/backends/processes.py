"""Run one host command to completion with a deadline, bounded output, and its whole process group
killed when the deadline passes. The local backends run every ``exec`` through here."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence

from incidentfox.sandboxes.backends.base import ExecResult

MAX_OUTPUT_BYTES = 1024 * 1024
"""Per stream: a command printing more keeps running, but only this much of its output is kept."""
_DRAIN_AFTER_KILL_S = 2.0


class _Capped:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.data = bytearray()
        self.dropped = False

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            room = self.limit - len(self.data)
            if len(chunk) > room:
                self.dropped = True
            self.data += chunk[: max(room, 0)]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


async def _feed(process: asyncio.subprocess.Process, data: bytes | None) -> None:
    if process.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        if data:
            process.stdin.write(data)
            await process.stdin.drain()
        process.stdin.close()


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def run_captured(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    stdin: bytes | None,
    timeout_s: float,
    max_output: int = MAX_OUTPUT_BYTES,
    pass_fds: Sequence[int] = (),
) -> ExecResult:
    """Run ``argv`` with exactly ``env`` in a new session; SIGKILL its process group at ``timeout_s``."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = _Capped(max_output), _Capped(max_output)
    readers = [
        asyncio.ensure_future(out.drain(process.stdout)),
        asyncio.ensure_future(err.drain(process.stderr)),
    ]
    feeder = asyncio.ensure_future(_feed(process, stdin))
    timed_out = False
    try:
        await asyncio.wait_for(process.wait(), timeout_s)
    except TimeoutError:
        timed_out = True
        _kill_group(process)
        await process.wait()
    finally:
        if process.returncode is None:
            _kill_group(process)
    # A child that left the process group may still hold the pipes open: wait a little, then give up.
    _done, pending = await asyncio.wait([*readers, feeder], timeout=_DRAIN_AFTER_KILL_S)
    for task in pending:
        task.cancel()
    return ExecResult(
        exit_code=int(process.returncode if process.returncode is not None else -signal.SIGKILL),
        stdout=out.text(),
        stderr=err.text(),
        timed_out=timed_out,
        truncated=out.dropped or err.dropped,
    )
