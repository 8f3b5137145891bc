"""SRE agent sandboxes: how long a session takes to start, and what 20 at once cost.

One "session start" is what a user waits for before the agent's first answer: create a bubblewrap
sandbox, start the bundled Claude Code CLI inside it through the model proxy, and complete one turn
against the Anthropic emulator (a text answer, so the model's own time is ~0). Measured:

- ``--starts N`` sequential starts: p50 and p95 of the start, and of its two parts (sandbox create,
  first CLI turn);
- ``--concurrent C`` sessions started at once and held open: wall time until all answered, and the
  peak resident memory of this process plus every process it started (the CLIs inside sandboxes),
  sampled from /proc every 50 ms.

Run: ``.venv/bin/python -m bench.sandbox [--starts 20] [--concurrent 20]``; the figures go into
docs/performance.md by hand, with the machine and date printed here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

from claude_agent_sdk import ClaudeSDKClient, ResultMessage

from incidentfox.emulators.anthropic_api import AnthropicEmulator, ScriptStep
from incidentfox.sandboxes.agent_cli import sandboxed_cli_options
from incidentfox.sandboxes.backends.base import ProxyEndpoint, SandboxSpec
from incidentfox.sandboxes.backends.local import BubblewrapBackend, bubblewrap_problem
from incidentfox.sandboxes.model_proxy import ModelProxy
from incidentfox.sandboxes.session_tokens import SessionTokens

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and all its descendants (read from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            statm = (entry / "statm").read_text().split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(statm[1]) * PAGE
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


class Rig:
    def __init__(self, base: Path, emu: AnthropicEmulator, proxy: ModelProxy, tokens: SessionTokens) -> None:
        self.base, self.emu, self.proxy, self.tokens = base, emu, proxy, tokens
        self.backend = BubblewrapBackend(base / "sandboxes")
        self.count = 0

    async def start_session(self, stack: AsyncExitStack) -> tuple[float, float]:
        """Create a sandbox and complete the first turn; returns (create seconds, first turn seconds)."""
        self.count += 1
        session_id = f"sbx_bench_{self.count}"
        began = time.perf_counter()
        sandbox = await self.backend.create(
            SandboxSpec(
                session_id=session_id,
                org_id="bench",
                team_id="bench",
                run_id=session_id,
                thread_key=session_id,
                proxy=ProxyEndpoint(unix_socket=self.base / "proxy.sock"),
            )
        )
        stack.push_async_callback(self.backend.destroy, sandbox)
        created = time.perf_counter()
        options = await sandboxed_cli_options(
            self.backend,
            sandbox,
            session_token=self.tokens.issue(session_id),
            launcher_dir=self.base / "launchers",
            max_turns=2,
        )
        client = await stack.enter_async_context(ClaudeSDKClient(options=options))
        await client.query("hello")
        async for message in client.receive_response():
            if isinstance(message, ResultMessage) and message.is_error:
                raise RuntimeError(f"the first turn failed: {message.result}")
        return created - began, time.perf_counter() - created


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(starts: int, concurrent: int) -> None:
    problem = bubblewrap_problem()
    if problem is not None:
        raise SystemExit(f"bubblewrap sandboxes cannot run here: {problem}")
    with tempfile.TemporaryDirectory(prefix="ifx-bench-sbx-") as tmp:
        base = Path(tmp)
        tokens = SessionTokens()
        async with AnthropicEmulator() as emu:
            emu.responder = lambda _request: ScriptStep.text("ready")
            proxy = ModelProxy(tokens, api_key=emu.api_key, upstream=emu.base_url)
            await proxy.start(unix_path=base / "proxy.sock")
            rig = Rig(base, emu, proxy, tokens)
            try:
                await report_starts(rig, starts)
                await report_concurrent(rig, concurrent)
            finally:
                await proxy.stop()


async def report_starts(rig: Rig, starts: int) -> None:
    creates, turns, totals = [], [], []
    for _ in range(starts):
        async with AsyncExitStack() as stack:
            create_s, turn_s = await rig.start_session(stack)
        creates.append(create_s)
        turns.append(turn_s)
        totals.append(create_s + turn_s)
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"session start, {starts} sequential:")
    for name, values in (("total", totals), ("sandbox create", creates), ("first CLI turn", turns)):
        p50, p95 = statistics.median(values) * 1000, quantile(values, 0.95) * 1000
        print(f"  {name:15} p50 {p50:7.0f} ms   p95 {p95:7.0f} ms")


async def report_concurrent(rig: Rig, concurrent: int) -> None:
    peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, tree_rss_bytes(os.getpid()))
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    before = tree_rss_bytes(os.getpid())
    began = time.perf_counter()
    async with AsyncExitStack() as stack:
        await asyncio.gather(*(rig.start_session(stack) for _ in range(concurrent)))
        wall = time.perf_counter() - began
        peak = max(peak, tree_rss_bytes(os.getpid()))
    sampling = False
    await sampler
    print(f"{concurrent} concurrent sessions: all answered in {wall:.1f} s")
    mib = 2**20
    print(
        f"  peak RSS of this process and its sandboxes: {peak / mib:.0f} MB (before: {before / mib:.0f} MB)"
    )
    print(f"  per session: {(peak - before) / concurrent / 2**20:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--concurrent", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.starts, arguments.concurrent))
