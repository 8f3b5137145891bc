"""Error lines in the logs of pods that look healthy: Running, every container ready, no restarts.

Such a pod hides nothing from ``kubectl get pods`` but may still fail every request it serves. Its log
tail is read (the pod's only container; pods with several are skipped, as ``kubectl logs`` needs a
container name for them) and a finding is made when the tail holds a fatal line (``panic:``,
``Traceback``, ``level=fatal``) or at least ``MIN_ERROR_LINES`` error-level lines. At most
``MAX_PODS`` pods are read per scan, so a large namespace cannot slow the scan down.
"""

from __future__ import annotations

import asyncio
import re

from incidentfox.agents.analyzers.dependencies import LOG_SOURCE_SUFFIX
from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.pod_facts import LOG_TAIL_LINES, Row, decisive_log_line, pod_key
from incidentfox.agents.rca import Evidence
from incidentfox.agents.redaction import scrub_text
from incidentfox.agents.toolsets import kubernetes as k8s_tools
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

MAX_PODS = 30
MIN_ERROR_LINES = 3
_ERROR_LEVEL = re.compile(
    r"(?i:\blevel=(?:error|err|fatal|panic|crit\w*)\b|\"level\"\s*:\s*\"(?:error|fatal|panic|critical)\")"
    r"|\b(?:ERROR|FATAL|CRITICAL|PANIC|SEVERE)\b|^\s*panic:|Traceback \(most recent call last\)"
    r"|\b[A-Z]\w*(?:Exception|Error): "
)
_FATAL = re.compile(
    r"(?i:\blevel=(?:fatal|panic)\b|\"level\"\s*:\s*\"(?:fatal|panic)\")|\b(?:FATAL|PANIC)\b|^\s*panic:"
    r"|Traceback \(most recent call last\)"
)


def error_lines(log: str) -> list[str]:
    """The error-level lines of a log, in order."""
    return [line.strip() for line in log.splitlines() if _ERROR_LEVEL.search(line)]


def _finding(row: Row, errors: list[str], total: int) -> Finding:
    ns, pod = row["namespace"], row["name"]
    line = scrub_text(decisive_log_line("\n".join(errors)) or errors[-1])
    count = f"{len(errors)} of the last {total} log lines are errors"
    return Finding(
        kind="log_errors",
        severity="warning",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is Running and ready, but {count}.",
        root_cause=f'Pod {ns}/{pod} looks healthy to Kubernetes, yet {count}; the most telling: "{line}".',
        evidence=(Evidence(quote=line, source=f"pod {ns}/{pod} {LOG_SOURCE_SUFFIX}"),),
        immediate_actions=(
            f"Read the errors in context: kubectl logs -n {ns} {pod} --tail=200",
            "Check the dependency or input the error names; make the readiness probe cover it.",
        ),
        follow_up_actions=("Alert on the error rate of the service's logs, not only on pod status.",),
        decisive=False,
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )


async def _read(client: KubernetesClient, row: Row) -> Finding | None:
    params = k8s_tools.PodLogsParams(
        name=row["name"], namespace=row["namespace"], previous=False, tail_lines=LOG_TAIL_LINES
    )
    logs = await k8s_tools.pod_logs(client, params)
    if logs.status != "ok":
        return None
    errors = error_lines(logs.data["log"])
    if len(errors) >= MIN_ERROR_LINES or any(_FATAL.search(e) for e in errors):
        return _finding(row, errors, int(logs.data["lines"]))
    return None


async def log_error_findings(client: KubernetesClient, rows: list[Row]) -> list[Finding]:
    """Findings for the healthy-looking single-container pods among ``rows`` whose logs hold errors."""
    running = [
        r for r in rows if r.get("status") == "Running" and r.get("ready") == "1/1" and not r.get("restarts")
    ][:MAX_PODS]
    found = await asyncio.gather(*(_read(client, r) for r in running))
    return [f for f in found if f is not None]
