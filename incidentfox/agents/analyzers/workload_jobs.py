"""Jobs and CronJobs: failed or suspended jobs, and cron jobs that cannot run or do not.

* A Job whose ``Failed`` condition is true (backoff limit reached, deadline exceeded), quoted with its
  condition and events; a failed run of a CronJob counts only when no later run succeeded.
* A suspended Job or CronJob (reported as ``info``: often deliberate, but it explains missing runs).
* A CronJob whose schedule does not parse, whose ``startingDeadlineSeconds`` is negative or shorter
  than the controller's 10 s sync period (runs are then skipped), or that has missed scheduled runs
  (the last schedule time is older than the latest time its schedule fired), with the likely reason
  (an earlier run still active under ``concurrencyPolicy: Forbid``).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from itertools import islice, takewhile
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from kubernetes import client as k8s

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.kind_reads import (
    event_quote,
    events_of,
    list_objects,
    name_of,
    object_finding,
)
from incidentfox.agents.rca import Evidence
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient
from incidentfox.agents.toolsets.kubernetes_views import meta

CONTROLLER_SYNC_S = 10
"""The CronJob controller looks at schedules about every 10 s; a shorter starting deadline skips runs."""
MISSED_GRACE = timedelta(minutes=2)
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _schedule_problem(schedule: str) -> str | None:
    """Why the CronJob controller would refuse ``schedule``, or ``None`` when it parses."""
    expression = _MACROS.get(schedule.strip(), schedule.strip())
    if expression.startswith(("TZ=", "CRON_TZ=")):
        return "time zones in the schedule (TZ=) are not supported; use spec.timeZone"
    try:
        next(CronSim(expression, datetime.now(UTC)))
    except CronSimError as exc:
        return str(exc)
    except StopIteration:
        return "the schedule never fires"
    return None


def _last_fire(schedule: str, now: datetime, zone: str | None) -> datetime | None:
    expression = _MACROS.get(schedule.strip(), schedule.strip())
    try:
        tz = ZoneInfo(zone) if zone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return None
    try:
        return next(CronSim(expression, now.astimezone(tz), reverse=True))
    except (CronSimError, StopIteration):
        return None


def _missed_runs(schedule: str, since: datetime, now: datetime, zone: str | None) -> int:
    expression = _MACROS.get(schedule.strip(), schedule.strip())
    tz = ZoneInfo(zone) if zone else UTC
    fires = CronSim(expression, since.astimezone(tz))
    return sum(1 for _ in islice(takewhile(lambda fire: fire <= now, fires), 100))


def _condition(job: k8s.V1Job, kind: str) -> k8s.V1JobCondition | None:
    conditions = (job.status.conditions if job.status else None) or []
    return next((c for c in conditions if c.type == kind and c.status == "True"), None)


def _cron_owner(job: k8s.V1Job) -> str | None:
    return next((r.name for r in meta(job).owner_references or [] if r.kind == "CronJob"), None)


async def _failed_job(client: KubernetesClient, job: k8s.V1Job, recovered: bool) -> Finding | None:
    failed = _condition(job, "Failed")
    if failed is None or recovered:
        return None
    ns, name = name_of(job)
    status = job.status or k8s.V1JobStatus()
    backoff = job.spec.backoff_limit if job.spec else None
    evidence = [
        Evidence(
            quote=f"Failed=True {failed.reason}: {failed.message}", source=f"job {ns}/{name} (conditions)"
        ),
        Evidence(
            quote=f"Pods Statuses: {status.active or 0} Active / {status.succeeded or 0} Succeeded / "
            f"{status.failed or 0} Failed; backoffLimit: {backoff}",
            source=f"job {ns}/{name} (status)",
        ),
    ]
    events = await events_of(client, ns, "Job", name)
    if events:
        evidence.insert(0, Evidence(quote=event_quote(events[0]), source=f"job {ns}/{name} (events)"))
    owner = _cron_owner(job)
    return object_finding(
        "job_failed",
        "critical" if failed.reason == "BackoffLimitExceeded" else "warning",
        "Job",
        ns,
        name,
        summary=f"Job {ns}/{name} failed ({failed.reason}) after {status.failed or 0} failed pods.",
        root_cause=f"Job {ns}/{name} gave up: {failed.message} ({failed.reason}); "
        "the reason is in the logs of its failed pods.",
        evidence=evidence,
        immediate=(
            f"Read the logs of its last failed pod: kubectl logs -n {ns} job/{name}; fix the cause and "
            + (f"let the next run of cron job {owner} retry." if owner else "re-create the job."),
        ),
        follow_up=("Alert on failed jobs (kube_job_status_failed).",),
        decisive=True,
        related=[f"cronjob/{ns}/{owner}"] if owner else (),
        workload=owner or name,
    )


def _suspended(kind: str, ns: str, name: str) -> Finding:
    return object_finding(
        "job_misconfigured",
        "info",
        kind,
        ns,
        name,
        summary=f"{kind} {ns}/{name} is suspended.",
        root_cause=f"{kind} {ns}/{name} has spec.suspend: true, so it starts no new runs.",
        evidence=(Evidence(quote="suspend: true", source=f"{kind.lower()} {ns}/{name} (spec)"),),
        immediate=(
            f"If that is not deliberate: kubectl patch {kind.lower()} -n {ns} {name} "
            '-p \'{"spec":{"suspend":false}}\'.',
        ),
    )


def _cronjob(cron: k8s.V1CronJob, jobs: list[k8s.V1Job], now: datetime) -> list[Finding]:
    ns, name = name_of(cron)
    spec, status = cron.spec, cron.status or k8s.V1CronJobStatus()
    if spec is None:
        return []
    source = f"cronjob {ns}/{name} (spec)"
    found: list[Finding] = []
    problem = _schedule_problem(spec.schedule)
    if problem:
        found.append(
            object_finding(
                "job_misconfigured",
                "critical",
                "CronJob",
                ns,
                name,
                summary=f"CronJob {ns}/{name} has an invalid schedule {spec.schedule!r}: {problem}.",
                root_cause=f"The schedule {spec.schedule!r} of CronJob {ns}/{name} is not a valid cron "
                f"expression ({problem}), so it never runs.",
                evidence=(Evidence(quote=f"Schedule: {spec.schedule}", source=source),),
                immediate=(
                    "Fix the schedule: five fields, minute hour day-of-month month day-of-week "
                    "(or @hourly, @daily...).",
                ),
                decisive=True,
            )
        )
    deadline = spec.starting_deadline_seconds
    if deadline is not None and deadline < CONTROLLER_SYNC_S:
        negative = deadline < 0
        found.append(
            object_finding(
                "job_misconfigured",
                "critical" if negative else "warning",
                "CronJob",
                ns,
                name,
                summary=f"CronJob {ns}/{name} has startingDeadlineSeconds {deadline}"
                + (
                    " (negative)."
                    if negative
                    else f", shorter than the controller's {CONTROLLER_SYNC_S} s sync."
                ),
                root_cause=f"CronJob {ns}/{name} may start a run at most {deadline} s after its scheduled "
                "time; "
                + (
                    "a negative deadline is never met, so no run starts."
                    if negative
                    else "the controller checks schedules about every 10 s, so runs are skipped."
                ),
                evidence=(Evidence(quote=f"startingDeadlineSeconds: {deadline}", source=source),),
                immediate=("Set startingDeadlineSeconds to a few minutes (e.g. 200) or remove it.",),
                decisive=True,
            )
        )
    if spec.suspend:
        found.append(_suspended("CronJob", ns, name))
        return found
    if problem:
        return found
    last_fire = _last_fire(spec.schedule, now, spec.time_zone)
    created = meta(cron).creation_timestamp
    if last_fire is None or created is None or created > last_fire - MISSED_GRACE:
        return found
    last = status.last_schedule_time
    if last is not None and last >= last_fire - MISSED_GRACE:
        return found
    missed = _missed_runs(spec.schedule, last or created, now, spec.time_zone)
    active = [a.name for a in status.active or [] if a.name]
    owned_running = [name_of(j)[1] for j in jobs if _cron_owner(j) == name and (j.status and j.status.active)]
    running = active or owned_running
    forbid = spec.concurrency_policy == "Forbid"
    if running and forbid:
        why = f"an earlier run ({running[0]}) is still active and concurrencyPolicy is Forbid"
    elif deadline is not None and deadline < CONTROLLER_SYNC_S:
        why = f"its startingDeadlineSeconds ({deadline}) is shorter than the controller's sync period"
    else:
        why = "the controller has not started it (a controller, quota or admission problem)"
    evidence = [
        Evidence(
            quote=f"Last Schedule Time: {_rfc3339(last) if last else '<never>'}; schedule {spec.schedule} "
            f"last fired at {_rfc3339(last_fire)}",
            source=f"cronjob {ns}/{name} (status)",
        )
    ]
    if running:
        evidence.append(
            Evidence(quote=f"Active Jobs: {', '.join(running)}", source=f"cronjob {ns}/{name} (status)")
        )
    found.append(
        object_finding(
            "job_failed",
            "warning",
            "CronJob",
            ns,
            name,
            summary=f"CronJob {ns}/{name} has missed {missed} scheduled run{'s' if missed != 1 else ''}.",
            root_cause=f"CronJob {ns}/{name} should have run at {_rfc3339(last_fire)} but did not: {why}.",
            evidence=evidence,
            immediate=(
                f"Check the stuck run {running[0]} (kubectl describe job -n {ns} {running[0]})."
                if running
                else f"kubectl describe cronjob -n {ns} {name} and check the namespace's quota and events.",
            ),
            decisive=bool(running and forbid),
            related=[f"job/{ns}/{r}" for r in running],
        )
    )
    return found


async def analyze(client: KubernetesClient, namespace: str | None) -> list[Finding]:
    """Findings for the Jobs and CronJobs of ``namespace`` (``None``: all namespaces)."""
    batch = k8s.BatchV1Api(client.api)
    reads: tuple[Any, ...] = await asyncio.gather(
        list_objects(client, batch.list_namespaced_job, batch.list_job_for_all_namespaces, namespace, "jobs"),
        list_objects(
            client,
            batch.list_namespaced_cron_job,
            batch.list_cron_job_for_all_namespaces,
            namespace,
            "cronjobs",
        ),
    )
    jobs: list[k8s.V1Job] = reads[0] or []
    crons: list[k8s.V1CronJob] = reads[1] or []
    success = {name_of(c): c.status.last_successful_time for c in crons if c.status}
    found: list[Finding] = []
    for job in jobs:
        ns, name = name_of(job)
        if job.spec and job.spec.suspend:
            found.append(_suspended("Job", ns, name))
            continue
        owner = _cron_owner(job)
        started = job.status.start_time if job.status else None
        later = success.get((ns, owner)) if owner else None
        recovered = later is not None and started is not None and later > started
        failed = await _failed_job(client, job, recovered)
        if failed is not None:
            found.append(failed)
    now = datetime.now(UTC)
    for cron in crons:
        found.extend(_cronjob(cron, jobs, now))
    return found
