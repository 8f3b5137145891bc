"""Kill trials in batches: K runs held at one step, one SIGKILL, one restart, K threads settled.

``--batch 1`` is one run per kill: the child dies the moment that run's request reaches the step.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass

from bench.faults_processes import HOLD_MAX_S, TRAP_TIMEOUT_S, FoxProcess
from bench.faults_report import Report, Trial
from bench.faults_world import World, final_recount, settle
from bench.worker import STEPS


@dataclass
class Budget:
    deadline: float | None

    def spent(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline


async def kill_trials(
    w: World, steps: list[str], trials: int, batch: int, report: Report, budget: Budget, progress: bool
) -> None:
    """``trials`` runs killed at each step, ``batch`` runs per kill (the last kill may have fewer)."""
    fox = await w.start_fox(setup=True)
    try:
        for step in steps:
            done = 0
            kill = 0
            while done < trials:
                if budget.spent():
                    report.notes.append(f"deadline reached: {w.database}/{step} stopped after {done} trials")
                    break
                size = min(batch, trials - done)
                fox, group = await kill_batch(w, fox, step, kill, done, size, report)
                if progress:
                    verdicts = ", ".join(sorted({t.verdict for t in group}))
                    held = sum(1 for t in group if t.held_at_step)
                    print(
                        f"  {w.database} {step} kill {kill}: {size} runs, {held} held at the step, "
                        f"{verdicts}, {group[0].trial_s:.1f}s",
                        file=sys.stderr,
                        flush=True,
                    )
                done += size
                kill += 1
            else:
                continue
            break
    finally:
        await fox.stop()
    await final_recount(w, report, "kill")


async def kill_batch(
    w: World, fox: FoxProcess, step: str, kill: int, first: int, size: int, report: Report
) -> tuple[FoxProcess, list[Trial]]:
    """Send ``size`` mentions at once, hold each run at ``step``, SIGKILL the child once all are held
    (or at the timeout, if any is), restart it, and settle every thread concurrently."""
    started = time.monotonic()
    mentions = [w.new_mention() for _ in range(size)]
    trials = [
        Trial(
            phase="kill",
            database=w.database,
            step=step,
            index=first + i,
            thread_ts=thread_ts,
            kill=kill,
            batch=size,
        )
        for i, (thread_ts, _) in enumerate(mentions)
    ]
    report.trials.extend(trials)
    model_step = STEPS[kill % len(STEPS)] if step == "mid_model" else ""
    w.trap.arm(step, fox.pid, {w.run_of[t]: t for t, _ in mentions}, model_step)
    sending = [asyncio.create_task(w.send(fox, body)) for _, body in mentions]
    timed_out = not await wait_for_batch(w)
    if timed_out and w.trap.holds:
        w.trap.fire()
    w.trap.disarm()
    statuses = await asyncio.gather(*sending)
    fired = w.trap.fired.is_set()
    held = w.trap.held_at_kill
    for trial, status in zip(trials, statuses, strict=True):
        trial.killed = fired
        trial.held_at_step = fired and trial.thread_ts in held
        detail = held.get(trial.thread_ts, "")
        if fired and not trial.held_at_step:
            waited = time.monotonic() - started
            detail = f"not held at the step when killed (kill after {waited:.0f} s, {len(held)}/{size} held)"
        trial.kill_detail = detail + (f" (model {model_step})" if model_step else "") + f"; ack {status}"
    if fired:
        await fox.reap()
        fox = await w.start_fox()
    await asyncio.gather(*(settle(w, fox, t.thread_ts, t) for t in trials))
    elapsed = time.monotonic() - started
    for trial in trials:
        trial.trial_s = elapsed
    return fox, trials


async def wait_for_batch(w: World) -> bool:
    """Until every run of the batch is held (the trap fired): False after ``TRAP_TIMEOUT_S`` from the
    send, or ``HOLD_MAX_S`` after the first run was held, whichever comes first."""
    deadline = time.monotonic() + TRAP_TIMEOUT_S
    while not w.trap.fired.is_set():
        first = w.trap.first_held_at
        limit = deadline if first is None else min(deadline, first + HOLD_MAX_S)
        left = limit - time.monotonic()
        if left <= 0:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(w.trap.fired.wait(), min(left, 0.25))
    return True
