"""batch/v1 Jobs and CronJobs for the Kubernetes emulator, from compact scenario entries.

    jobs:
      - {name: db-migrate-29001, status: failed, age: 2h, failed: 6, owner: db-migrate,
         message: "Job has reached the specified backoff limit"}
    cronjobs:
      - {name: db-migrate, schedule: "0 * * * *", last_schedule_age: 2h, last_success_age: 1d}

A job's ``status`` is ``succeeded`` (a ``Complete`` condition and a completion time), ``failed`` (a
``FailureTarget`` and a ``Failed`` condition with ``reason``, default ``BackoffLimitExceeded``) or
``running`` (one active pod). A job whose ``owner`` names a cron job carries its ownerReference, as
the CronJob controller sets it; a cron job's ``status.active`` lists its running jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from incidentfox.emulators.kubernetes_fields import (
    Obj,
    container_spec,
    object_meta,
    parse_age,
    timestamp,
    uid,
)

JOB_STATUSES = ("succeeded", "failed", "running")


def _pod_template(name: str, spec: Mapping[str, Any], labels: Obj) -> Obj:
    image = str(spec.get("image", f"registry.example.com/{name}:1.0"))
    container = container_spec({"name": name, "image": image})
    return {
        "metadata": {"labels": labels},
        "spec": {"containers": [container], "restartPolicy": "Never", "dnsPolicy": "ClusterFirst"},
    }


def _condition(kind: str, at: str, reason: str | None = None, message: str | None = None) -> Obj:
    found: Obj = {"type": kind, "status": "True", "lastProbeTime": at, "lastTransitionTime": at}
    if reason:
        found["reason"] = reason
    if message:
        found["message"] = message
    return found


def build_job(spec: Mapping[str, Any], namespace: str, now: datetime) -> Obj:
    name = str(spec["name"])
    status = str(spec.get("status", "succeeded"))
    if status not in JOB_STATUSES:
        raise ValueError(f"job {name}: status must be one of {JOB_STATUSES}")
    job_uid = uid("Job", namespace, name)
    labels = {"batch.kubernetes.io/controller-uid": job_uid, "batch.kubernetes.io/job-name": name}
    owner_refs = None
    if spec.get("owner"):
        owner = str(spec["owner"])
        owner_refs = [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": owner,
                "uid": uid("CronJob", namespace, owner),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    started = spec.get("age", "1h")
    start_at = now - parse_age(started)
    finished = (start_at + parse_age(spec.get("duration", "2m"))).strftime("%Y-%m-%dT%H:%M:%SZ")
    job_status: Obj = {"startTime": timestamp(now, started)}
    if status == "succeeded":
        job_status.update(
            succeeded=int(spec.get("succeeded", 1)),
            completionTime=finished,
            conditions=[
                _condition(
                    "SuccessCriteriaMet",
                    finished,
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                _condition(
                    "Complete", finished, "CompletionsReached", "Reached expected number of succeeded pods"
                ),
            ],
        )
    elif status == "failed":
        reason = str(spec.get("reason", "BackoffLimitExceeded"))
        message = str(spec.get("message", "Job has reached the specified backoff limit"))
        job_status.update(
            failed=int(spec.get("failed", 7)),
            conditions=[
                _condition("FailureTarget", finished, reason, message),
                _condition("Failed", finished, reason, message),
            ],
        )
    elif spec.get("suspend"):
        job_status.update(
            active=0,
            conditions=[_condition("Suspended", job_status["startTime"], "JobSuspended", "Job suspended")],
        )
    else:
        job_status.update(active=1, ready=int(spec.get("ready", 1)))
    return {
        "metadata": object_meta(
            "Job", name, namespace, now, started, labels=labels, ownerReferences=owner_refs, generation=1
        ),
        "spec": {
            "parallelism": 1,
            "completions": 1,
            "backoffLimit": int(spec.get("backoff_limit", 6)),
            "completionMode": "NonIndexed",
            "suspend": bool(spec.get("suspend", False)),
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": job_uid}},
            "template": _pod_template(name, spec, labels),
        },
        "status": job_status,
    }


def build_cronjob(spec: Mapping[str, Any], namespace: str, jobs: list[Obj], now: datetime) -> Obj:
    name = str(spec["name"])
    own = [
        j
        for j in jobs
        if j["metadata"].get("namespace") == namespace
        and any(
            r["kind"] == "CronJob" and r["name"] == name for r in j["metadata"].get("ownerReferences") or []
        )
    ]
    status: Obj = {}
    if spec.get("last_schedule_age") is not None:
        status["lastScheduleTime"] = timestamp(now, spec["last_schedule_age"])
    if spec.get("last_success_age") is not None:
        status["lastSuccessfulTime"] = timestamp(now, spec["last_success_age"])
    running = [j for j in own if j["status"].get("active")]
    if running:
        status["active"] = [
            {
                "kind": "Job",
                "namespace": namespace,
                "name": j["metadata"]["name"],
                "uid": j["metadata"]["uid"],
                "apiVersion": "batch/v1",
            }
            for j in running
        ]
    job_labels = {"app": name}
    cron_spec: Obj = {
        "schedule": str(spec.get("schedule", "0 * * * *")),
        "concurrencyPolicy": str(spec.get("concurrency", "Forbid")),
        "suspend": bool(spec.get("suspend", False)),
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 1,
        "jobTemplate": {
            "metadata": {"labels": job_labels},
            "spec": {"backoffLimit": 6, "template": _pod_template(name, spec, job_labels)},
        },
    }
    if spec.get("starting_deadline") is not None:
        cron_spec["startingDeadlineSeconds"] = int(spec["starting_deadline"])
    return {
        "metadata": object_meta("CronJob", name, namespace, now, spec.get("age", "30d"), generation=1),
        "spec": cron_spec,
        "status": status,
    }
