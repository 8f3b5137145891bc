"""The SQLite write gate: one writer at a time, FIFO, ack-path writes first, cancellation-safe."""

from __future__ import annotations

import asyncio

import pytest

from incidentfox.db.write_gate import WriteGate


async def test_writers_take_turns_and_urgent_ones_go_first() -> None:
    gate = WriteGate()
    order: list[str] = []
    inside = 0

    async def write(name: str, *, urgent: bool = False) -> None:
        nonlocal inside
        async with gate.hold(urgent=urgent):
            inside += 1
            assert inside == 1, "two writers inside the gate"
            order.append(name)
            await asyncio.sleep(0.01)
            inside -= 1

    first = asyncio.create_task(write("worker-1"))
    await asyncio.sleep(0)
    tasks = [asyncio.create_task(write("worker-2")), asyncio.create_task(write("worker-3"))]
    await asyncio.sleep(0)
    tasks.append(asyncio.create_task(write("ack", urgent=True)))
    await asyncio.gather(first, *tasks)
    assert order == ["worker-1", "ack", "worker-2", "worker-3"]


async def test_a_cancelled_waiter_neither_blocks_the_gate_nor_skips_anyone() -> None:
    gate = WriteGate()
    order: list[str] = []
    release = asyncio.Event()

    async def write(name: str) -> None:
        async with gate.hold():
            order.append(name)
            if name == "first":
                await release.wait()

    first = asyncio.create_task(write("first"))
    await asyncio.sleep(0)
    doomed = asyncio.create_task(write("doomed"))
    last = asyncio.create_task(write("last"))
    await asyncio.sleep(0)
    doomed.cancel()
    release.set()
    await asyncio.gather(first, last)
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert order == ["first", "last"]
    async with asyncio.timeout(1):
        async with gate.hold():
            order.append("free")
    assert order[-1] == "free"
