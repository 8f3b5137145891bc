"""Pod rules: from one pod that is not healthy to the findings that explain it.

A pod is read once (``describe_pod``: its containers, init containers, conditions and events), then,
in the order an SRE would look:

1. evicted, or held back by scheduling gates: the pod-level reason is the whole story;
2. the first init container that does not complete (crash, error exit, stuck waiting on a
   dependency, image or config problems): it blocks every other container;
3. each sidecar and container: OOMKilled, CrashLoopBackOff, image pulls, config and start errors,
   error exits (``pod_containers``);
4. not scheduled (the scheduler's message read out), sandbox or volume mount failures
   (``pod_placement``);
5. failing readiness/liveness/startup probes with the probe's answer and the pod's own log line;
6. a container that restarted within the hour, with its last exit code's meaning.
"""

from __future__ import annotations

import re

from incidentfox.agents.analyzers import pod_containers as containers
from incidentfox.agents.analyzers import pod_placement as placement
from incidentfox.agents.analyzers.dependencies import LOG_SOURCE_SUFFIX
from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.pod_facts import (
    LOG_TAIL_LINES,
    Row,
    condition,
    decisive_log_line,
    events,
    exit_text,
    last_terminated,
    log_line,
    pod_key,
)
from incidentfox.agents.rca import Evidence
from incidentfox.agents.redaction import scrub_text
from incidentfox.agents.toolsets import kubernetes as k8s_tools
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

HEALTHY_STATUSES = {"Running", "Completed", "Succeeded"}
RECENT_RESTART_S = 3600
"""A container whose last run ended longer ago than this is not reported for having restarted."""
_AGE = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def needs_look(row: Row) -> bool:
    """Whether a pod row from ``list_pods`` may hide a problem: not Running/Completed, not every
    container ready, or restarted."""
    ready, _, total = str(row.get("ready", "0/0")).partition("/")
    return row.get("status") not in HEALTHY_STATUSES or ready != total or int(row.get("restarts", 0)) > 0


def _seconds_ago(text: str | None) -> int | None:
    if not text:
        return None
    found = _AGE.findall(text)
    return sum(int(n) * _SECONDS[u] for n, u in found) if found else None


async def _own_log_line(client: KubernetesClient, row: Row, detail: Row) -> str | None:
    """The decisive line of the current log of the pod's first container that is not ready."""
    waiting = [c for c in detail.get("containers", []) if not c.get("ready")]
    if not waiting:
        return None
    params = k8s_tools.PodLogsParams(
        name=row["name"],
        namespace=row["namespace"],
        container=waiting[0]["name"],
        previous=False,
        tail_lines=LOG_TAIL_LINES,
    )
    logs = await k8s_tools.pod_logs(client, params)
    return decisive_log_line(logs.data["log"]) if logs.status == "ok" else None


_PROBE_FIELDS = {"Readiness": "readiness_probe", "Liveness": "liveness_probe", "Startup": "startup_probe"}
_TIMED_OUT = ("context deadline exceeded", "Client.Timeout", "timed out", "timeout")


def _probe_specs(ns: str, pod: str, detail: Row, probes: dict[str, Row]) -> list[Evidence]:
    """How each failing probe is defined (``Readiness: http-get :8080/ready ... timeout=1s``), from the
    containers that are not ready, so the probe's answer can be read against its limits."""
    found: list[Evidence] = []
    for container in [c for c in detail.get("containers", []) if not c.get("ready")]:
        for kind in sorted(probes):
            text = container.get(_PROBE_FIELDS.get(kind, ""))
            if text:
                source = f"pod {ns}/{pod} (container {container['name']} spec)"
                found.append(Evidence(quote=f"{kind}: {text}", source=source))
    return found


def _timeout_hint(probes: dict[str, Row], evidence: list[Evidence]) -> tuple[str, ...]:
    timed_out = [k for k, e in probes.items() if any(t in str(e.get("message", "")) for t in _TIMED_OUT)]
    limits = [e.quote for e in evidence if e.quote.split(":", 1)[0] in timed_out and "timeout=" in e.quote]
    if not timed_out or not limits:
        return ()
    return (
        f"The {' and '.join(k.lower() for k in timed_out)} probe times out ({limits[0]}): compare its "
        "timeoutSeconds with the endpoint's latency under the current load.",
    )


async def probe_failure(client: KubernetesClient, row: Row, detail: Row) -> Finding | None:
    """A pod failing its probes, with the probe's answer (the Unhealthy event) and the error its own
    log ends with (often the dependency its check calls: ``dependencies`` links that service)."""
    unhealthy = events(detail, "Unhealthy")
    if not unhealthy:
        return None
    ns, pod = row["namespace"], row["name"]
    probes = {str(e.get("message", "")).split(" probe", 1)[0]: e for e in unhealthy}
    evidence = [
        Evidence(quote=str(e["message"]), source=f"pod {ns}/{pod} (Unhealthy event, x{e.get('count', 1)})")
        for e in probes.values()
    ]
    kinds = " and ".join(sorted(k.lower() for k in probes))
    root_cause = f"The {kinds} probes of pod {ns}/{pod} fail: {unhealthy[0]['message']}"
    own = await _own_log_line(client, row, detail)
    if own is not None:
        line = scrub_text(own)
        evidence.insert(0, Evidence(quote=line, source=f"pod {ns}/{pod} {LOG_SOURCE_SUFFIX}"))
        root_cause += f'; its log says: "{line}"'
    evidence += _probe_specs(ns, pod, detail, probes)
    return Finding(
        kind="probe_failure",
        severity="warning",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is failing its {kinds} probes "
        f"(ready {row.get('ready')}, {row.get('restarts', 0)} restarts).",
        root_cause=root_cause,
        evidence=tuple(evidence),
        immediate_actions=(
            "Check why the probed endpoint is slow or failing (load, a dependency) before loosening "
            "the probe.",
            *_timeout_hint(probes, evidence),
        ),
        follow_up_actions=("Make liveness probes cheap and independent of downstream dependencies.",),
        decisive=False,
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )


async def _oomkilled(client: KubernetesClient, row: Row, container: Row) -> Finding:
    params = k8s_tools.PodLogsParams(
        name=row["name"], namespace=row["namespace"], container=container["name"], previous=True, tail_lines=5
    )
    logs = await k8s_tools.pod_logs(client, params)
    tail = logs.data["log"].splitlines()[-1] if logs.status == "ok" else None
    return containers.oomkilled(row, container, (container.get("limits") or {}).get("memory"), tail)


async def container_findings(
    client: KubernetesClient, row: Row, container: Row, detail: Row
) -> Finding | None:
    """What is wrong with one (sidecar or app) container right now, if anything."""
    state, last = container.get("state", {}), last_terminated(container)
    reason = state.get("reason")
    if "OOMKilled" in (reason, last.get("reason")):
        return await _oomkilled(client, row, container)
    if reason == "CrashLoopBackOff":
        return await containers.crashloop(client, row, container, detail)
    if reason in containers.IMAGE_PULL:
        return containers.image_pull(row, container, detail)
    if reason in containers.CONFIG_ERRORS:
        return containers.container_config(row, container, detail)
    if reason in containers.START_ERRORS:
        return containers.container_start(row, container)
    if state.get("state") == "terminated" and state.get("exit_code") not in (0, None):
        return await containers.container_exit(client, row, container, current=True)
    return None


async def _stuck_init(client: KubernetesClient, row: Row, container: Row) -> Finding:
    """An init container still running: the pod waits on it (usually on a dependency it polls)."""
    ns, pod, name = row["namespace"], row["name"], container["name"]
    params = k8s_tools.PodLogsParams(
        name=pod, namespace=ns, container=name, previous=False, tail_lines=LOG_TAIL_LINES
    )
    logs = await k8s_tools.pod_logs(client, params)
    lines = [x.strip() for x in logs.data["log"].splitlines() if x.strip()] if logs.status == "ok" else []
    line = scrub_text(decisive_log_line("\n".join(lines)) or (lines[-1] if lines else "")) or None
    evidence = [
        Evidence(
            quote=f"Init container {name}: State: Running (since {container['state'].get('since', '?')})",
            source=f"pod {ns}/{pod} (init container {name} status)",
        )
    ]
    if line:
        evidence.insert(
            0, Evidence(quote=line, source=f"pod {ns}/{pod} init container {name} {LOG_SOURCE_SUFFIX}")
        )
    return Finding(
        kind="init_container",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is stuck initializing: init container {name} has not completed.",
        root_cause=f"Init container {name} of pod {ns}/{pod} is still running, so no app container starts"
        + (f'; its log says: "{line}"' if line else "")
        + ".",
        evidence=tuple(evidence),
        immediate_actions=(
            f"Check what init container {name} waits for (a dependency it polls, a migration) "
            f"and fix that: kubectl logs -n {ns} {pod} -c {name}",
        ),
        follow_up_actions=("Give init containers a timeout so they fail loudly instead of waiting forever.",),
        decisive=False,
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )


async def _failed_init(client: KubernetesClient, row: Row, container: Row) -> Finding:
    """An init container that exits with an error (Init:Error, Init:CrashLoopBackOff)."""
    ns, pod, name = row["namespace"], row["name"], container["name"]
    state = container.get("state", {})
    stopped = state if state.get("state") == "terminated" else last_terminated(container)
    crashloop = state.get("reason") == "CrashLoopBackOff"
    line, source = await log_line(client, row, name, previous_first=crashloop)
    code = stopped.get("exit_code", "?")
    evidence = [
        Evidence(
            quote=containers.terminated_quote(stopped),
            source=f"pod {ns}/{pod} (init container {name} status)",
        )
    ]
    if line:
        suffix = f"init container {name} {LOG_SOURCE_SUFFIX}" if source == "logs" else f"({source})"
        evidence.insert(0, Evidence(quote=line, source=f"pod {ns}/{pod} {suffix}"))
    status = "Init:CrashLoopBackOff" if crashloop else "Init:Error"
    return Finding(
        kind="init_container",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is blocked in {status}: init container {name} fails "
        f"({container.get('restarts', 0)} restarts).",
        root_cause=f"Init container {name} of pod {ns}/{pod} exits with {exit_text(code)}, so none of the "
        "pod's containers start" + (f'; its {source} end with: "{line}"' if line else "") + ".",
        evidence=tuple(evidence),
        immediate_actions=(
            f"Fix what init container {name} reports (a migration, a dependency, a config file), "
            f"or roll back {row.get('workload') or pod}.",
            f"Confirm with: kubectl logs -n {ns} {pod} -c {name}" + (" --previous" if crashloop else ""),
        ),
        follow_up_actions=("Test init steps (migrations, config rendering) in CI against a staging copy.",),
        decisive=line is not None,
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )


async def _init_finding(client: KubernetesClient, row: Row, detail: Row) -> Finding | None:
    """The first regular init container that has not completed, explained; sidecars are skipped here."""
    for container in detail.get("init_containers", []):
        if container.get("sidecar"):
            continue
        state = container.get("state", {})
        labelled = {**container, "init": True}
        if state.get("state") == "terminated" and state.get("exit_code") == 0:
            continue
        if state.get("reason") in containers.IMAGE_PULL:
            return containers.image_pull(row, labelled, detail)
        if state.get("reason") in containers.CONFIG_ERRORS:
            return containers.container_config(row, labelled, detail)
        if state.get("reason") in containers.START_ERRORS:
            return containers.container_start(row, labelled)
        if state.get("reason") == "CrashLoopBackOff" or state.get("state") == "terminated":
            return await _failed_init(client, row, labelled)
        if state.get("state") == "running":
            return await _stuck_init(client, row, labelled)
        return None
    return None


async def _recent_restart(client: KubernetesClient, row: Row, detail: Row) -> Finding | None:
    for container in detail.get("containers", []):
        last = last_terminated(container)
        ago = _seconds_ago(last.get("finished"))
        if (
            container.get("state", {}).get("state") == "running"
            and last.get("exit_code") not in (0, None)
            and ago is not None
            and ago <= RECENT_RESTART_S
        ):
            return await containers.container_exit(client, row, container, current=False)
    return None


async def pod_findings(client: KubernetesClient, row: Row) -> list[Finding]:
    """Every finding about one pod (most often one), or none when describing it fails."""
    described = await k8s_tools.describe_pod(
        client, k8s_tools.PodParams(name=row["name"], namespace=row["namespace"])
    )
    if described.status != "ok":
        return []
    detail: Row = described.data
    if placement.is_evicted(detail):
        return [placement.evicted(row, detail)]
    if placement.is_gated(detail):
        return [placement.scheduling_gated(row, detail)]
    found: list[Finding] = []
    init = await _init_finding(client, row, detail)
    if init is not None:
        found.append(init)
    sidecars = [{**c, "sidecar": True} for c in detail.get("init_containers", []) if c.get("sidecar")]
    for container in [*sidecars, *detail.get("containers", [])]:
        finding = await container_findings(client, row, container, detail)
        if finding is not None:
            found.append(finding)
    if condition(detail, "PodScheduled").get("status") == "False":
        found.append(placement.unschedulable(row, detail))
    if not found:
        stuck = placement.sandbox_failure(row, detail) or placement.mount_failure(row, detail)
        found += [stuck] if stuck else []
    if not found:
        probe = await probe_failure(client, row, detail)
        found += [probe] if probe else []
    if not found:
        restarted = await _recent_restart(client, row, detail)
        found += [restarted] if restarted else []
    return found
