"""GitHub Actions jobs for the GitHub emulator: steps with times, logs in the runner's format, and the
run's log archive.

A generated job log reads like a real one: every line starts with a 7-digit-fraction UTC timestamp;
the "Set up job" step prints the runner preamble with ``##[group]``/``##[endgroup]`` sections; each
step opens with ``##[group]Run <command>``, echoes the command and shell, closes the group and prints
its output; a failed step ends with ``##[error]Process completed with exit code 1.`` unless its output
has its own ``##[error]``. Step ``started_at``/``completed_at`` (whole seconds, as the API gives them)
enclose the timestamps of the lines the step printed, so a reader can map a log line to its step.

``run_logs_zip`` builds the archive ``GET /actions/runs/{id}/logs`` redirects to: one
``{n}_{job}.txt`` per job and a ``{job}/{n}_{step}.txt`` per step, as GitHub lays it out.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

Conclusion = Literal["success", "failure", "cancelled", "skipped", "timed_out", "neutral", "action_required"]

_JOB_PREAMBLE = (
    "Current runner version: '2.321.0'",
    "##[group]Operating System",
    "Ubuntu",
    "24.04.1",
    "LTS",
    "##[endgroup]",
    "##[group]Runner Image",
    "Image: ubuntu-24.04",
    "Version: 20250105.1.0",
    "##[endgroup]",
    "Prepare workflow directory",
    "Prepare all required actions",
)
_TIMESTAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?Z ")
_UNSAFE_NAME = re.compile(r"[\\/:*?\"<>|]")


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A step to seed: its name, how it ended and the lines it printed.

    ``command`` is what the log's ``##[group]Run …`` header shows (defaults to the name). A failed
    step whose output has no ``##[error]`` line gets the runner's ``Process completed with exit code 1.``
    """

    name: str
    conclusion: Conclusion = "success"
    output: Sequence[str] = ()
    command: str | None = None
    seconds: int = 2


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job to seed. ``log`` replaces the generated log with a raw Actions log (timestamps and all)."""

    name: str
    steps: Sequence[StepSpec] = ()
    log: str | None = None
    conclusion: Conclusion | None = None


@dataclass(slots=True)
class Step:
    name: str
    number: int
    conclusion: str | None
    started_at: datetime
    completed_at: datetime
    status: str = "completed"


@dataclass(slots=True)
class Job:
    id: int
    run_id: int
    name: str
    conclusion: str | None
    steps: list[Step]
    started_at: datetime
    completed_at: datetime
    log: str
    status: str = "completed"
    runner_name: str = "GitHub Actions 7"


def actions_timestamp(at: datetime) -> str:
    """``2025-03-01T10:00:05.0123456Z``: the 7-digit fraction Actions logs carry."""
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond:06d}0Z"


def _step_lines(spec: StepSpec) -> list[str]:
    command = spec.command or spec.name
    lines = [f"##[group]Run {command}", command, "shell: /usr/bin/bash -e {0}", "##[endgroup]"]
    lines.extend(spec.output)
    if spec.conclusion == "failure" and not any(line.startswith("##[error]") for line in spec.output):
        lines.append("##[error]Process completed with exit code 1.")
    return lines


def build_job(job_id: int, run_id: int, spec: JobSpec, start: datetime) -> Job:
    """The job's steps with times, and a log whose timestamps fall inside the step that printed them.

    Steps after a failed one are skipped (no output), as with ``if: success()``, the default."""
    clock = start
    steps: list[Step] = []
    log: list[str] = []
    failed = False

    def add_step(name: str, conclusion: str | None, lines: Sequence[str], seconds: int) -> None:
        nonlocal clock
        end = clock + timedelta(seconds=max(1, seconds))
        steps.append(Step(name, len(steps) + 1, conclusion, clock, end))
        tick = min(0.5, max(1, seconds) / (len(lines) + 1))
        for i, line in enumerate(lines):
            log.append(f"{actions_timestamp(clock + timedelta(seconds=tick * (i + 1)))} {line}")
        clock = end

    add_step("Set up job", "success", _JOB_PREAMBLE, 2)
    for spec_step in spec.steps:
        conclusion: str = spec_step.conclusion
        if failed and conclusion == "success":
            conclusion = "skipped"
        lines = [] if conclusion == "skipped" else _step_lines(spec_step)
        add_step(spec_step.name, conclusion, lines, spec_step.seconds if lines else 1)
        failed = failed or conclusion == "failure"
    add_step("Complete job", "success", ["Cleaning up orphan processes"], 1)
    job_conclusion = spec.conclusion or ("failure" if failed else "success")
    text = spec.log if spec.log is not None else "\n".join(log) + "\n"
    return Job(job_id, run_id, spec.name, job_conclusion, steps, start, clock, text)


def _line_time(line: str) -> datetime | None:
    match = _TIMESTAMP.match(line)
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC) if match else None


def split_by_step(job: Job) -> dict[int, list[str]]:
    """Step number → the log lines printed while it ran (by timestamp; untimed lines stay with the
    line before them)."""
    out: dict[int, list[str]] = {step.number: [] for step in job.steps}
    current = job.steps[0].number if job.steps else 0
    for line in job.log.splitlines():
        at = _line_time(line)
        if at is not None:
            started = [s.number for s in job.steps if s.started_at <= at.replace(microsecond=0)]
            current = started[-1] if started else current
        out.setdefault(current, []).append(line)
    return out


def run_logs_zip(jobs: Sequence[Job]) -> bytes:
    """The run's log archive: ``{n}_{job}.txt`` per job, ``{job}/{n}_{step}.txt`` per step."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, job in enumerate(jobs):
            job_name = _UNSAFE_NAME.sub("", job.name)
            archive.writestr(f"{index}_{job_name}.txt", job.log)
            by_step = split_by_step(job)
            for step in job.steps:
                lines = by_step.get(step.number, [])
                body = "\n".join(lines) + ("\n" if lines else "")
                archive.writestr(f"{job_name}/{step.number}_{_UNSAFE_NAME.sub('', step.name)}.txt", body)
    return buffer.getvalue()
