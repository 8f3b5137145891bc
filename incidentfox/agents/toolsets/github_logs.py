"""Reading a failed GitHub Actions run: which job failed, in which step, on which log line.

``first_error`` finds the decisive line of a job log. An Actions log line starts with a UTC timestamp
(``2025-03-01T10:00:05.1234567Z``); a step begins with ``##[group]Run <command>``, whose group echoes
the command and its shell (skipped here: a script that prints "Error:" is not an error); the runner
ends a failed step with ``##[error]Process completed with exit code N.``, which says *that* it failed
but not *why*. So the search looks, in the failed step's lines first (mapped by timestamp to the
step times the API gives), for the first line of the best kind present:

1. a specific error: ``##[error]<message>``, ``Traceback``, ``panic:``, pytest's ``E   …``,
   ``SomethingError: …``, ``error: …`` / ``error[E0308]: …``, ``ERROR``, ``npm ERR!``, ``fatal:``;
2. a test failure marker: ``FAILED``, ``--- FAIL:``, ``FAIL``;
3. a non-zero exit: ``exit code 2``, ``returned non-zero exit status``, the runner's own line.

The excerpt is about 20 lines around it, timestamps and colour codes removed. ``decisive_lines`` is the
line itself, plus the exception a ``Traceback`` ends with, or the run of pytest ``E`` lines.

``diagnose_workflow_run`` is the plain async function the no-LLM analyzer of a failed CI run and the
``workflow_failures`` tool both call: run → failed jobs → each job's log → its first error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from incidentfox.agents.toolsets.github_api import GitHubClient, describe_failure

EXCERPT_BEFORE = 8
EXCERPT_AFTER = 12
MAX_LINE_CHARS = 400
MAX_JOBS = 5
_FAILED = frozenset({"failure", "timed_out"})

_TIMESTAMP = re.compile(r"^\ufeff?(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?Z ?")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_TIERS: tuple[tuple[re.Pattern[str], ...], ...] = (
    (
        re.compile(r"^##\[error\](?!Process completed with exit code)"),
        re.compile(r"Traceback \(most recent call last\)"),
        re.compile(r"(?:^|\s)panic: "),
        re.compile(r"^E {2,}\S"),
        re.compile(r"\b\w*(?:Error|Exception)(?:\[\w+\])?: "),
        re.compile(r"(?:^|\s)error(?:\[\w+\])?: ", re.IGNORECASE),
        re.compile(r"\bERROR\b"),
        re.compile(r"npm ERR!"),
        re.compile(r"(?:^|\s)fatal: "),
    ),
    (re.compile(r"\bFAILED\b"), re.compile(r"^--- FAIL: "), re.compile(r"^FAIL\b")),
    (
        re.compile(r"exit (?:code|status) [1-9]\d*", re.IGNORECASE),
        re.compile(r"exited with (?:code|status) [1-9]", re.IGNORECASE),
        re.compile(r"non-zero exit (?:status|code)", re.IGNORECASE),
    ),
)


@dataclass(frozen=True, slots=True)
class StepTiming:
    """A job step as the API describes it."""

    name: str
    number: int
    conclusion: str | None
    started_at: datetime | None
    completed_at: datetime | None


@dataclass(frozen=True, slots=True)
class LogLine:
    number: int
    """1-based line number in the downloaded log."""
    text: str
    """The line without its timestamp and colour codes."""
    at: datetime | None
    echo: bool = False
    """Inside a ``##[group]Run …`` header group: the command being echoed, not its output."""


@dataclass(frozen=True, slots=True)
class FirstError:
    """The decisive line of a job log and what surrounds it."""

    line_number: int
    line: str
    decisive_lines: list[str]
    excerpt: list[str]
    excerpt_start: int
    step: str | None
    step_number: int | None


def _clip(text: str) -> str:
    return text if len(text) <= MAX_LINE_CHARS else text[: MAX_LINE_CHARS - 1] + "…"


def parse_log(text: str) -> list[LogLine]:
    """Every line of an Actions log, with its timestamp parsed and echo groups marked."""
    lines: list[LogLine] = []
    in_echo = False
    for number, raw in enumerate(text.splitlines(), start=1):
        match = _TIMESTAMP.match(raw)
        at = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC) if match else None
        body = _ANSI.sub("", raw[match.end() :] if match else raw).rstrip()
        if body.startswith("##[group]Run "):
            in_echo = True
            lines.append(LogLine(number, body, at, echo=True))
            continue
        if body.startswith("##[endgroup]"):
            lines.append(LogLine(number, body, at, echo=True))
            in_echo = False
            continue
        lines.append(LogLine(number, body, at, echo=in_echo or body.startswith(("##[group]", "##[debug]"))))
    return lines


def _step_of(line: LogLine, steps: Sequence[StepTiming]) -> StepTiming | None:
    if line.at is None:
        return None
    started = [
        s for s in steps if s.started_at is not None and s.started_at <= line.at.replace(microsecond=0)
    ]
    return started[-1] if started else None


def _group_header_before(lines: Sequence[LogLine], index: int) -> str | None:
    for line in reversed(lines[: index + 1]):
        if line.text.startswith("##[group]Run "):
            return line.text.removeprefix("##[group]")
    return None


def _first_match(candidates: Sequence[tuple[int, LogLine]]) -> int | None:
    for tier in _TIERS:
        for index, line in candidates:
            if not line.echo and any(p.search(line.text) for p in tier):
                return index
    return None


def _decisive(lines: Sequence[LogLine], index: int) -> list[str]:
    text = lines[index].text
    found = [text]
    if "Traceback (most recent call last)" in text:
        for line in lines[index + 1 : index + 80]:
            if line.text and not line.text.startswith((" ", "\t")) and "Traceback" not in line.text:
                found.append(line.text)
                break
    elif re.match(r"^E {2,}\S", text):
        for line in lines[index + 1 : index + 6]:
            if not re.match(r"^E( |$)", line.text):
                break
            found.append(line.text)
    return [_clip(t) for t in found]


def first_error(
    text: str,
    steps: Sequence[StepTiming] = (),
    *,
    before: int = EXCERPT_BEFORE,
    after: int = EXCERPT_AFTER,
) -> FirstError | None:
    """The first error of a job log (see the module docstring), or ``None`` when no line looks like one."""
    lines = parse_log(text)
    failed = next((s for s in steps if s.conclusion in _FAILED), None)
    indexed = list(enumerate(lines))
    in_failed = [(i, line) for i, line in indexed if failed is not None and _step_of(line, steps) is failed]
    index = _first_match(in_failed) if in_failed else None
    if index is None:
        index = _first_match(indexed)
    if index is None:
        return None
    line = lines[index]
    step = _step_of(line, steps)
    start = max(0, index - before)
    window = [_clip(entry.text) for entry in lines[start : index + after + 1]]
    return FirstError(
        line_number=line.number,
        line=_clip(line.text),
        decisive_lines=_decisive(lines, index),
        excerpt=window,
        excerpt_start=lines[start].number,
        step=step.name if step else _group_header_before(lines, index),
        step_number=step.number if step else None,
    )


@dataclass(frozen=True, slots=True)
class FailedJob:
    job_id: int
    name: str
    url: str
    conclusion: str
    step: str | None
    step_number: int | None
    error: FirstError | None
    note: str = ""
    """Why the log could not be read or held no error line, in plain words; empty otherwise."""

    def as_data(self, *, excerpt: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "job": self.name,
            "job_id": self.job_id,
            "url": self.url,
            "conclusion": self.conclusion,
            "step": self.step,
            "step_number": self.step_number,
        }
        if self.error is not None:
            data["error_line"] = self.error.line
            data["line_number"] = self.error.line_number
            data["decisive_lines"] = self.error.decisive_lines
            if excerpt:
                data["excerpt_start_line"] = self.error.excerpt_start
                data["excerpt"] = "\n".join(self.error.excerpt)
        if self.note:
            data["note"] = self.note
        return data


@dataclass(frozen=True, slots=True)
class RunDiagnosis:
    """What failed in a workflow run, job by job, with each job's decisive log line."""

    repo: str
    run_id: int
    name: str
    url: str
    status: str
    conclusion: str | None
    head_branch: str
    head_sha: str
    event: str
    pull_requests: list[int]
    failed_jobs: list[FailedJob] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.conclusion in _FAILED or bool(self.failed_jobs)

    @property
    def decisive(self) -> FailedJob | None:
        """The first failed job whose log named an error, else the first failed job."""
        return next(
            (j for j in self.failed_jobs if j.error), self.failed_jobs[0] if self.failed_jobs else None
        )

    def summary(self) -> str:
        """One line: ``CI (run 123) failed in job 'test', step 'Run tests': <decisive line>``."""
        head = f"{self.name} (run {self.run_id}) on {self.head_branch}"
        job = self.decisive
        if not self.failed or job is None:
            return f"{head} ended {self.conclusion or self.status}."
        where = f"job '{job.name}'" + (f", step '{job.step}'" if job.step else "")
        line = f": {job.error.line}" if job.error else ""
        return f"{head} failed in {where}{line}"

    def as_data(self, *, excerpts: int = 3) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "run": {
                "repo": self.repo,
                "id": self.run_id,
                "name": self.name,
                "url": self.url,
                "conclusion": self.conclusion,
                "head_branch": self.head_branch,
                "head_sha": self.head_sha[:12],
                "event": self.event,
                "pull_requests": self.pull_requests,
            },
            "failed_jobs": [j.as_data(excerpt=i < excerpts) for i, j in enumerate(self.failed_jobs)],
        }


def _steps(job: Any) -> list[StepTiming]:
    return [StepTiming(s.name, s.number, s.conclusion, s.started_at, s.completed_at) for s in job.steps or []]


def _diagnose_job(client: GitHubClient, job: Any) -> FailedJob:
    steps = _steps(job)
    failed_step = next((s for s in steps if s.conclusion in _FAILED), None)
    base = {
        "job_id": job.id,
        "name": job.name,
        "url": job.html_url,
        "conclusion": job.conclusion,
        "step": failed_step.name if failed_step else None,
        "step_number": failed_step.number if failed_step else None,
    }
    try:
        text = client.download_text(job.logs_url())
    except Exception as exc:
        note = describe_failure(exc, client.api_url, f"read the log of job '{job.name}'")
        return FailedJob(**base, error=None, note=note)
    error = first_error(text, steps)
    if error is None:
        return FailedJob(**base, error=None, note="The job's log has no line that looks like an error.")
    step, number = error.step or base["step"], error.step_number or base["step_number"]
    return FailedJob(**{**base, "step": step, "step_number": number}, error=error)


def diagnose_workflow_run_sync(client: GitHubClient, repo: str, run_id: int) -> RunDiagnosis:
    """The blocking body of ``diagnose_workflow_run`` (runs on a worker thread)."""
    run = client.repo(repo).get_workflow_run(run_id)
    jobs = [job for job in run.jobs() if job.conclusion in _FAILED]
    return RunDiagnosis(
        repo=repo,
        run_id=run.id,
        name=run.name,
        url=run.html_url,
        status=run.status,
        conclusion=run.conclusion,
        head_branch=run.head_branch,
        head_sha=run.head_sha,
        event=run.event,
        pull_requests=[pr.number for pr in run.pull_requests],
        failed_jobs=[_diagnose_job(client, job) for job in jobs[:MAX_JOBS]],
    )


async def diagnose_workflow_run(client: GitHubClient, repo: str, run_id: int) -> RunDiagnosis:
    """The failing jobs of a workflow run, each with its failed step and decisive log line(s).

    For the no-LLM analyzer of a failed CI run (``repo`` and ``run_id`` come from the ``workflow_run``
    webhook's ``repository.full_name`` and ``workflow_run.id``). API failures on the run or its jobs
    raise (``describe_failure`` words them); a job whose log cannot be read is still reported, with
    its failed step from the API and a ``note``.
    """
    return await client.call(diagnose_workflow_run_sync, client, repo, run_id)
