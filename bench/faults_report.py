"""What a fault trial left in Slack, and the report of all of them (see ``bench/faults.py``).

A thread's outcome is read from the Slack emulator, which runs in the benchmark process and so
survives every SIGKILL of IncidentFox: the bot's messages in the thread as they stand now (edits
applied), and every accepted call that showed a final state in it. A final message is an RCA
(``🔎 Root cause…``) or a plain failure (``❌ The investigation could not finish…``); a message still
reading ``🔍 Investigating…`` after its run settled is a stranded progress message.
"""

from __future__ import annotations

import json
import platform
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from incidentfox.emulators.slack import SlackEmulator

RCA_PREFIX = "🔎"
FAILURE_PREFIX = "❌"
PROGRESS_PREFIX = "🔍"


def is_final_text(text: str) -> bool:
    return text.startswith((RCA_PREFIX, FAILURE_PREFIX))


@dataclass(frozen=True, slots=True)
class ThreadOutcome:
    """The bot's messages in one thread: finals now showing, stranded progress, final deliveries."""

    finals: int
    rca: int
    failures: int
    stranded_progress: int
    final_deliveries: int
    """Accepted calls that put a final state into the thread (2 = the final was shown twice)."""

    @property
    def verdict(self) -> str:
        if self.finals == 0:
            return "lost"
        return "ok" if self.finals == 1 else "duplicated"


def finals_showing(slack: SlackEmulator, channel: str, thread_ts: str) -> int:
    """``thread_outcome(...).finals`` without reading every recorded call: cheap enough to poll."""
    return sum(
        1 for m in slack.messages(channel, thread_ts) if m.bot_id is not None and is_final_text(m.text)
    )


def thread_outcome(slack: SlackEmulator, channel: str, thread_ts: str) -> ThreadOutcome:
    mine = [m for m in slack.messages(channel, thread_ts) if m.bot_id is not None]
    texts = [m.text for m in mine]
    ours = {m.ts for m in mine}
    deliveries = 0
    for call in slack.calls(ok=True):
        text = str(call.args.get("text") or "")
        if not is_final_text(text) or call.args.get("channel") != channel:
            continue
        posted = call.method == "chat.postMessage" and call.args.get("thread_ts") == thread_ts
        edited = call.method == "chat.update" and call.args.get("ts") in ours
        deliveries += posted or edited
    return ThreadOutcome(
        finals=sum(1 for t in texts if is_final_text(t)),
        rca=sum(1 for t in texts if t.startswith(RCA_PREFIX)),
        failures=sum(1 for t in texts if t.startswith(FAILURE_PREFIX)),
        stranded_progress=sum(1 for t in texts if t.startswith(PROGRESS_PREFIX)),
        final_deliveries=deliveries,
    )


@dataclass(slots=True)
class Trial:
    """One trigger: where its process was killed (if it was), and how its thread ended.

    Kill trials run in batches: ``batch`` runs on one child, killed once (kill number ``kill``).
    ``killed`` says the child was SIGKILLed while this run was in flight; ``held_at_step`` that this
    run's call was held at the trial's step at that moment (only then was it killed at the step)."""

    phase: str
    database: str
    step: str
    index: int
    thread_ts: str
    killed: bool = False
    kill_detail: str = ""
    kill: int = 0
    batch: int = 1
    held_at_step: bool = False
    outcome: ThreadOutcome | None = None
    run_status: str = ""
    run_attempts: int = 0
    pending_final: bool = False
    restart_to_final_s: float | None = None
    trial_s: float = 0.0
    note: str = ""

    @property
    def verdict(self) -> str:
        return self.outcome.verdict if self.outcome is not None else "lost"


@dataclass(slots=True)
class Report:
    started: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    machine: str = field(
        default_factory=lambda: f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}"
    )
    command: str = ""
    trials: list[Trial] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    phase_s: dict[str, float] = field(default_factory=dict)
    total_s: float = 0.0

    def failures(self) -> list[Trial]:
        return [t for t in self.trials if t.verdict != "ok" or (t.phase == "kill" and not t.held_at_step)]


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def _pct(values: Sequence[float], q: float) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]:.1f}"


def _row(group: Sequence[Trial]) -> str:
    verdicts = Counter(t.verdict for t in group)
    stranded = sum(t.outcome.stranded_progress for t in group if t.outcome)
    redelivered = sum(1 for t in group if t.outcome and t.outcome.final_deliveries > 1)
    rca = sum(1 for t in group if t.outcome and t.outcome.rca == 1 and t.outcome.finals == 1)
    recover = [t.restart_to_final_s for t in group if t.restart_to_final_s is not None]
    kills = {t.kill for t in group if t.killed}
    wall = {t.kill: t.trial_s for t in group if t.trial_s > 0}
    per_kill = f"{statistics.fmean(wall.values()):.1f}" if wall else "–"
    is_kill = group[0].phase == "kill"
    batch = str(max(t.batch for t in group)) if is_kill else "–"
    held = str(sum(1 for t in group if t.held_at_step)) if is_kill else "–"
    return (
        f"| {batch} | {len(group)} | {len(kills)} | {held} | {verdicts['ok']} | {verdicts['lost']} "
        f"| {verdicts['duplicated']} | {_pct(recover, 0.5)} / {_pct(recover, 0.95)} "
        f"| {rca}/{len(group) - rca} | {stranded} | {redelivered} | {per_kill} |"
    )


HEADER = (
    "| phase | database | step | batch | triggers | kills | held at step | exactly one final | lost | dup "
    "| restart→final p50/p95 s | RCA/failure msg | stranded progress msgs | final shown twice | s/kill |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def render(report: Report) -> str:
    lines = [
        f"Fault trials, {report.started}, {report.machine}",
        f"command: {report.command}",
        "",
        HEADER,
    ]
    groups: dict[tuple[str, str, str], list[Trial]] = {}
    for trial in report.trials:
        groups.setdefault((trial.phase, trial.database, trial.step), []).append(trial)
    for (phase, database, step), group in groups.items():
        lines.append(f"| {phase} | {database} | {step} " + _row(group))
    total = Counter(t.verdict for t in report.trials)
    kill_trials = [t for t in report.trials if t.phase == "kill"]
    lines += [
        "",
        f"triggers: {len(report.trials)}; exactly one final: {total['ok']}; lost: {total['lost']}; "
        f"duplicated: {total['duplicated']}",
    ]
    if kill_trials:
        kills = {(t.database, t.step, t.kill) for t in kill_trials if t.killed}
        held = sum(1 for t in kill_trials if t.held_at_step)
        lines.append(
            f"kill trials: {len(kill_trials)} runs, {len(kills)} kills, "
            f"{held} runs held at their step when killed"
        )
    lines += [
        "phase wall times: " + ", ".join(f"{k} {v:.0f} s" for k, v in report.phase_s.items()),
        f"total wall time: {report.total_s:.0f} s",
    ]
    bad = report.failures()
    if bad:
        lines.append("")
        lines.append(
            "Trials that did not end with exactly one final message (or were not killed at their step):"
        )
        for trial in bad[:50]:
            lines.append(
                f"- {trial.phase}/{trial.database}/{trial.step} #{trial.index} (kill {trial.kill}, batch "
                f"{trial.batch}) thread {trial.thread_ts}: {trial.verdict}, killed={trial.killed} "
                f"held_at_step={trial.held_at_step} ({trial.kill_detail}), run {trial.run_status} "
                f"attempts={trial.run_attempts} pending_final={trial.pending_final}, outcome={trial.outcome} "
                f"{trial.note}"
            )
    if report.notes:
        lines.append("")
        lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


def to_json(report: Report) -> str:
    def trial(t: Trial) -> dict[str, Any]:
        body = asdict(t)
        body["verdict"] = t.verdict
        return body

    return json.dumps(
        {
            "started": report.started,
            "machine": report.machine,
            "command": report.command,
            "phase_s": report.phase_s,
            "total_s": report.total_s,
            "notes": report.notes,
            "trials": [trial(t) for t in report.trials],
        },
        indent=1,
    )
