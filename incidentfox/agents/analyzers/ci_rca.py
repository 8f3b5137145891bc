"""A failed CI run as an RCA: the no-LLM answer, and the grounding a model gets (pure functions).

The decisive job is the first failed job whose log names an error (``RunDiagnosis.decisive``). The
RCA names its failing step and quotes its decisive log line(s) with their source (job, step and
line number, linked to the job). Confidence is high only when that line states an error (an
exception, an assertion, ``##[error]`` with a message); the runner's own ``Process completed with
exit code 1`` says only *that* the step failed, which is medium; an unreadable log is low.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from incidentfox.agents.analyzers.triage import Triage
from incidentfox.agents.rca import Confidence, Evidence, RootCauseAnalysis
from incidentfox.agents.toolsets.github_logs import FailedJob, RunDiagnosis

RUNNER_EXIT = "##[error]Process completed with exit code"
MAX_EVIDENCE = 6
EXCERPT_LINES = 20
SCOPE_CAVEAT = (
    "Based on the run's job logs only: the code change itself and the runner's environment were not read."
)
_TRANSIENT = re.compile(
    r"timed? ?out|timeout|connection (?:reset|refused)|ECONNRESET|ETIMEDOUT|rate limit|"
    r"temporary failure in name resolution|no space left on device",
    re.IGNORECASE,
)
"""Errors of the runner's surroundings rather than of the change: worth one re-run."""


@dataclass(frozen=True, slots=True)
class FailedCheck:
    """A failing check run of a CI app that is not GitHub Actions (it reports through the Checks API)."""

    name: str
    app: str
    conclusion: str
    title: str
    summary: str
    url: str | None


def _step(job: FailedJob) -> str:
    return f"step '{job.step}'" if job.step else "a step it could not name"


def _step_first(job: FailedJob) -> str:
    """``_step`` opening a sentence."""
    text = _step(job)
    return text[0].upper() + text[1:]


def _source(diagnosis: RunDiagnosis, job: FailedJob) -> str:
    line = f", log line {job.error.line_number}" if job.error else ""
    return f"{diagnosis.repo} run {diagnosis.run_id}, job '{job.name}', {_step(job)}{line}"


def _shown(line: str) -> str:
    return line.removeprefix("##[error]").strip()


def _confidence(job: FailedJob) -> Confidence:
    if job.error is None:
        why = job.note or "The job's log names no error."
        return Confidence("low", f"The failed step is known from the API, but not why it failed: {why}")
    if job.error.line.startswith(RUNNER_EXIT):
        return Confidence(
            "medium", "The log shows only the step's exit code, not an error message that explains it."
        )
    return Confidence(
        "high", f'The failed step\'s log states the error: "{_shown(job.error.line)}" ({_step(job)}).'
    )


def _actions(diagnosis: RunDiagnosis, job: FailedJob) -> tuple[tuple[str, ...], tuple[str, ...]]:
    where = f"line {job.error.line_number} of the job log" if job.error else "the job log"
    now = [
        f"Read {where} ({job.url}) and fix what {_step(job)} of job '{job.name}' reports, then push.",
    ]
    later = []
    if job.error and _TRANSIENT.search(" ".join(job.error.decisive_lines)):
        now.append("The error looks transient (a timeout or a network error): re-run the failed job once.")
        later.append(
            "If this step fails intermittently, remove its dependency on the network or quarantine it."
        )
    later.extend(
        f"Also failed: job '{other.name}', {_step(other)}"
        + (f": {_shown(other.error.line)}" if other.error else ".")
        for other in diagnosis.failed_jobs
        if other is not job
    )
    return tuple(now), tuple(later[:4])


def diagnosis_rca(diagnosis: RunDiagnosis) -> RootCauseAnalysis:
    """The RCA of a workflow run as ``diagnose_workflow_run`` read it."""
    title = f"{diagnosis.name} (run {diagnosis.run_id}) on {diagnosis.repo} {diagnosis.head_branch}"
    job = diagnosis.decisive
    if not diagnosis.failed:
        return RootCauseAnalysis(
            summary=f"{title} did not fail: it ended {diagnosis.conclusion or diagnosis.status}.",
            root_cause="Nothing failed in this run.",
            confidence=Confidence("high", "The run's conclusion says so."),
            caveats=(f"Run: {diagnosis.url}",),
        )
    if job is None:
        return RootCauseAnalysis(
            summary=f"{title} failed before any job ran ({diagnosis.conclusion}).",
            root_cause="No job ran: the workflow file may be invalid, or a job could not be scheduled.",
            confidence=Confidence(
                "medium", "The run failed without a failed job, which points at the workflow."
            ),
            immediate_actions=(
                f"Open the run ({diagnosis.url}) to see GitHub's error about the workflow file.",
            ),
            caveats=(SCOPE_CAVEAT,),
        )
    error = f": {_shown(job.error.line)}" if job.error else ""
    summary = f"{title} failed in job '{job.name}', {_step(job)}{error}"
    if job.error:
        cause = f"{_step_first(job)} of job '{job.name}' failed with: " + " / ".join(
            _shown(line) for line in job.error.decisive_lines
        )
    else:
        cause = f"{_step_first(job)} of job '{job.name}' failed; its log does not say why."
    evidence = [
        Evidence(quote="\n".join(j.error.decisive_lines), source=_source(diagnosis, j), url=j.url)
        for j in diagnosis.failed_jobs
        if j.error is not None
    ]
    now, later = _actions(diagnosis, job)
    notes = tuple(f"Job '{j.name}': {j.note}" for j in diagnosis.failed_jobs if j.note)
    return RootCauseAnalysis(
        summary=summary,
        root_cause=cause,
        evidence=tuple(evidence[:MAX_EVIDENCE]),
        confidence=_confidence(job),
        immediate_actions=now,
        follow_up_actions=later,
        caveats=(*notes, SCOPE_CAVEAT),
    )


def diagnosis_grounding(diagnosis: RunDiagnosis) -> str:
    """The run's failure for the planner: each failed job's step and decisive lines, and the first
    one's log excerpt."""
    lines = [f"Failed CI run: {diagnosis.summary()} ({diagnosis.url})"]
    for index, job in enumerate(diagnosis.failed_jobs):
        lines.append(f"- job '{job.name}', {_step(job)} ({job.url})")
        if job.error is None:
            lines.append(f"    {job.note or 'no error line found in its log'}")
            continue
        lines.extend(
            f'    evidence (log line {job.error.line_number}): "{line}"' for line in job.error.decisive_lines
        )
        if index == 0:
            excerpt = job.error.excerpt[:EXCERPT_LINES]
            lines.append(
                f"    log lines {job.error.excerpt_start}-{job.error.excerpt_start + len(excerpt) - 1}:"
            )
            lines.extend(f"    | {line}" for line in excerpt)
    return "\n".join(lines)


def checks_rca(repo: str, sha: str, checks: Sequence[FailedCheck]) -> RootCauseAnalysis:
    """The RCA of a failed check suite of another CI app, from its check runs' reports."""
    if not checks:
        return RootCauseAnalysis(
            summary=f"The failed check suite on {repo}@{sha[:7]} has no failing check run to read.",
            root_cause="Undetermined: the CI app reported a failure without a failing check.",
            confidence=Confidence("low", "No check run says what failed."),
            caveats=(SCOPE_CAVEAT,),
        )
    first = checks[0]
    said = first.title or next(iter(first.summary.splitlines()), "")
    return RootCauseAnalysis(
        summary=f"Check '{first.name}' of {first.app} failed on {repo}@{sha[:7]}"
        + (f": {said}" if said else "."),
        root_cause=f"{first.app} reports '{first.name}' as {first.conclusion}"
        + (f": {said}" if said else "."),
        evidence=tuple(
            Evidence(
                quote=(c.title + "\n" + c.summary).strip()[:1_000],
                source=f"check '{c.name}' ({c.app})",
                url=c.url,
            )
            for c in checks[:MAX_EVIDENCE]
            if c.title or c.summary
        ),
        confidence=Confidence(
            "medium" if said else "low", "Only the CI app's own report was read, not its logs."
        ),
        immediate_actions=tuple(
            f"Open check '{c.name}' ({c.url}) and fix what it reports." for c in checks[:3] if c.url
        ),
        caveats=("Based on the checks' reports only; this CI app's logs are not readable through GitHub.",),
    )


def checks_grounding(repo: str, checks: Sequence[FailedCheck]) -> str:
    lines = [f"Failed checks on {repo}:"]
    lines.extend(
        f"- '{c.name}' ({c.app}, {c.conclusion}): {c.title} {c.summary[:500]}".rstrip() for c in checks
    )
    return "\n".join(lines)


def diagnosis_triage(diagnosis: RunDiagnosis) -> Triage:
    return Triage(rca=diagnosis_rca(diagnosis), grounding=diagnosis_grounding(diagnosis))


def checks_triage(repo: str, sha: str, checks: Sequence[FailedCheck]) -> Triage:
    return Triage(rca=checks_rca(repo, sha, checks), grounding=checks_grounding(repo, checks))
