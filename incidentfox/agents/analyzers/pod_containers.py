"""Rules for one container of a pod: why it is waiting, or why it stopped.

CrashLoopBackOff (with the decisive line of its previous log), OOMKilled, image pulls that fail
(ImagePullBackOff, ErrImagePull, InvalidImageName), CreateContainerConfigError naming the missing
ConfigMap, Secret or key, RunContainerError/StartError, and containers that exited with an error,
each exit code with its usual meaning. Native sidecars (init containers with ``restartPolicy:
Always``) are judged by the same rules and named as sidecars.
"""

from __future__ import annotations

import re

from incidentfox.agents.analyzers.findings import Finding
from incidentfox.agents.analyzers.pod_facts import (
    Row,
    events,
    exit_text,
    last_terminated,
    log_line,
    pod_key,
)
from incidentfox.agents.rca import Evidence
from incidentfox.agents.redaction import scrub_text
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

IMAGE_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
CONFIG_ERRORS = {"CreateContainerConfigError", "CreateContainerError"}
START_ERRORS = {"RunContainerError", "StartError", "ContainerCannotRun"}
_MISSING_OBJECT = re.compile(r'(configmap|secret)s? "([^"]+)" not found', re.IGNORECASE)
_MISSING_KEY = re.compile(r"couldn't find key (\S+) in (ConfigMap|Secret) ([^/\s]+)/(\S+)")
_PULL_CAUSES = (
    ("not found", "the image or tag does not exist in the registry"),
    ("manifest unknown", "the image or tag does not exist in the registry"),
    ("unauthorized", "the registry refuses the pull: the pull secret is missing or wrong"),
    ("authorization failed", "the registry refuses the pull: the pull secret is missing or wrong"),
    ("no basic auth credentials", "the registry refuses the pull: no pull secret is configured"),
    ("403 forbidden", "the registry refuses the pull: the pull secret is missing or wrong"),
    ("invalid reference format", "the image name is malformed"),
    ("couldn't parse image", "the image name is malformed"),
    ("i/o timeout", "the registry cannot be reached from the node"),
    ("no such host", "the registry's host name does not resolve from the node"),
    ("toomanyrequests", "the registry rate-limits pulls"),
    ("neverpull", "imagePullPolicy is Never and the image is not on the node"),
)


def container_label(container: Row) -> str:
    """``container api``, ``sidecar container proxy`` or ``init container migrate``."""
    if container.get("sidecar"):
        return f"sidecar container {container['name']}"
    if container.get("init"):
        return f"init container {container['name']}"
    return f"container {container['name']}"


def _status_source(ns: str, pod: str, container: Row) -> str:
    return f"pod {ns}/{pod} ({container_label(container)} status)"


def terminated_quote(last: Row) -> str:
    reason, code = last.get("reason", "Error"), last.get("exit_code", "?")
    return f"Last State: Terminated, Reason: {reason}, Exit Code: {code}"


async def crashloop(client: KubernetesClient, row: Row, container: Row, detail: Row) -> Finding:
    ns, pod, name = row["namespace"], row["name"], container["name"]
    line, source = await log_line(client, row, name, previous_first=True)
    last = last_terminated(container)
    code = last.get("exit_code", "?")
    evidence = [Evidence(quote=terminated_quote(last), source=_status_source(ns, pod, container))]
    if last.get("message"):
        evidence.append(
            Evidence(quote=scrub_text(str(last["message"])), source=_status_source(ns, pod, container))
        )
    if line:
        evidence.insert(0, Evidence(quote=line, source=f"pod {ns}/{pod} ({source})"))
    restarts = container.get("restarts", row.get("restarts", 0))
    if line:
        cause = f'its {source} end with: "{line}"'
    elif last.get("message"):
        cause = f'the runtime reports: "{scrub_text(str(last["message"]))}"'
    else:
        cause = "its logs show no clear error line"
    return Finding(
        kind="crashloop",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is in CrashLoopBackOff ({restarts} restarts).",
        root_cause=(
            f"{container_label(container).capitalize()} in pod {ns}/{pod} exits with {exit_text(code)} "
            f"on start-up and has restarted {restarts} times; {cause}."
        ),
        evidence=tuple(evidence),
        immediate_actions=(
            f"Fix what the log line reports for {row.get('workload') or pod} (configuration, environment or "
            "dependency), or roll back to the last working release.",
            f"Confirm with: kubectl logs -n {ns} {pod} -c {name} --previous",
        ),
        follow_up_actions=(
            "Add a start-up check that fails the deploy, not the running pods, on bad config.",
        ),
        decisive=line is not None or bool(last.get("message")),
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )


def oomkilled(row: Row, container: Row, limit: str | None, last_log_line: str | None) -> Finding:
    ns, pod, name = row["namespace"], row["name"], container["name"]
    last = last_terminated(container) or container.get("state", {})
    evidence = [
        Evidence(
            quote=f"Last State: Terminated, Reason: OOMKilled, Exit Code: {last.get('exit_code', 137)}",
            source=f"pod {ns}/{pod} (container {name} status)",
        )
    ]
    if limit:
        evidence.append(
            Evidence(quote=f"Limits: memory: {limit}", source=f"pod {ns}/{pod} (container {name} spec)")
        )
    if last_log_line:
        evidence.append(
            Evidence(quote=scrub_text(last_log_line), source=f"pod {ns}/{pod} (previous logs, last line)")
        )
    limit_text = f"its memory limit of {limit}" if limit else "the memory available to it"
    return Finding(
        kind="oomkilled",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} is OOMKilled: container {name} exceeds {limit_text}.",
        root_cause=(
            f"Container {name} in pod {ns}/{pod} is killed by the kernel for using more than {limit_text} "
            f"(OOMKilled, exit code 137) and has restarted {container.get('restarts', 0)} times."
        ),
        evidence=tuple(evidence),
        immediate_actions=(
            f"Raise the memory limit of {row.get('workload') or pod}/{name} "
            f"above {limit or 'its current value'}, or reduce the work per process (batch size, cache size).",
        ),
        follow_up_actions=(
            "Profile memory growth and alert on container_memory_working_set_bytes near the limit.",
        ),
        decisive=True,
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )


def _pull_cause(text: str) -> str | None:
    lowered = text.lower()
    return next((cause for needle, cause in _PULL_CAUSES if needle in lowered), None)


def image_pull(row: Row, container: Row, detail: Row) -> Finding:
    ns, pod, image = row["namespace"], row["name"], container.get("image", "?")
    failed = next(
        (
            e
            for e in events(detail, "Failed", "InspectFailed", "ErrImageNeverPull")
            if any(w in str(e.get("message", "")).lower() for w in ("pull", "image"))
        ),
        None,
    )
    state = container.get("state", {})
    evidence = [
        Evidence(
            quote=f"{state.get('reason')}: {state.get('message', image)}", source=f"pod {ns}/{pod} (status)"
        )
    ]
    if failed:
        evidence.insert(0, Evidence(quote=str(failed["message"]), source=f"pod {ns}/{pod} (events)"))
    cause = _pull_cause(
        f"{(failed or {}).get('message', '')} {state.get('message', '')} {state.get('reason')}"
    )
    label = container_label(container)
    check = (
        f"Fix it: {cause}."
        if cause
        else "Check that the image exists and that the pull secret grants access."
    )
    return Finding(
        kind="image_pull",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} cannot pull image {image} ({state.get('reason')}).",
        root_cause=f"The image {image} of {label} cannot be pulled"
        + (f": {str(failed['message']).rstrip('.')}." if failed else ".")
        + (f" That means {cause}." if cause else ""),
        evidence=tuple(evidence),
        immediate_actions=(
            f"Check that {image} exists in the registry and that the pull secret grants access. {check}",
            f"Roll back {row.get('workload') or pod} to the last image that pulled successfully.",
        ),
        follow_up_actions=("Make CI verify the image tag exists before the deploy step.",),
        decisive=failed is not None or state.get("reason") == "InvalidImageName",
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )


def missing_reference(text: str) -> str | None:
    """``ConfigMap prod/app-settings`` / ``key DB_URL of Secret prod/db`` when ``text`` names one."""
    key = _MISSING_KEY.search(text)
    if key:
        return f"key {key.group(1)} of {key.group(2)} {key.group(3)}/{key.group(4)}"
    found = _MISSING_OBJECT.search(text)
    if found:
        kind = "ConfigMap" if found.group(1).lower().startswith("configmap") else "Secret"
        return f"{kind} {found.group(2)}"
    return None


def container_config(row: Row, container: Row, detail: Row) -> Finding:
    """CreateContainerConfigError: the container's env or volume refers to what does not exist."""
    ns, pod, name = row["namespace"], row["name"], container["name"]
    state = container.get("state", {})
    message = str(state.get("message") or "")
    failed = next((e for e in events(detail, "Failed") if "Error:" in str(e.get("message", ""))), None)
    text = message or str((failed or {}).get("message", ""))
    missing = missing_reference(f"{message} {(failed or {}).get('message', '')}")
    evidence = [
        Evidence(
            quote=f"{state.get('reason')}: {message}".rstrip(": "), source=_status_source(ns, pod, container)
        )
    ]
    if failed:
        evidence.insert(0, Evidence(quote=str(failed["message"]), source=f"pod {ns}/{pod} (events)"))
    what = f"it refers to {missing}, which does not exist" if missing else f"the kubelet reports: {text}"
    return Finding(
        kind="container_config",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod} cannot create {container_label(container)} ({state.get('reason')})"
        + (f": {missing} is missing." if missing else "."),
        root_cause=f"The kubelet cannot create {container_label(container)} of pod {ns}/{pod}: {what}.",
        evidence=tuple(evidence),
        immediate_actions=(
            f"Create {missing} in namespace {ns}, or fix the reference in "
            f"{row.get('workload') or pod}'s spec."
            if missing
            else f"Fix the container spec of {row.get('workload') or pod}/{name} as the message says.",
            f"Confirm with: kubectl describe pod -n {ns} {pod}",
        ),
        follow_up_actions=("Deploy ConfigMaps and Secrets before (or with) the workloads that read them.",),
        decisive=bool(missing or text),
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )


def container_start(row: Row, container: Row) -> Finding:
    """RunContainerError/StartError: the runtime created the container but could not start its process."""
    ns, pod, name = row["namespace"], row["name"], container["name"]
    state, last = container.get("state", {}), last_terminated(container)
    failing = state if state.get("reason") in START_ERRORS else last
    message = scrub_text(str(failing.get("message") or state.get("message") or ""))
    stopped = last if last.get("reason") in START_ERRORS else failing
    code = stopped.get("exit_code")
    quote = f"{failing.get('reason')}: {message}" if message else str(failing.get("reason"))
    evidence = [Evidence(quote=quote, source=_status_source(ns, pod, container))]
    if code is not None:
        evidence.append(Evidence(quote=terminated_quote(stopped), source=_status_source(ns, pod, container)))
    hint = ""
    lowered = message.lower()
    if "executable file not found" in lowered or "no such file or directory" in lowered or code == 127:
        hint = " The command or entrypoint does not exist in the image."
    elif "permission denied" in lowered or code == 126:
        hint = " The command exists but cannot be executed (permissions or not a binary)."
    return Finding(
        kind="container_start",
        severity="critical",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod}: {container_label(container)} cannot start ({failing.get('reason')}).",
        root_cause=f"The container runtime cannot start {container_label(container)} of pod {ns}/{pod}"
        + (f": {message.rstrip('.')}." if message else ".")
        + (f" Its last attempt exited with {exit_text(code)}." if code is not None else "")
        + hint,
        evidence=tuple(evidence),
        immediate_actions=(
            f"Fix the command, entrypoint or image of {row.get('workload') or pod}/{name}, or roll back.",
            f"Confirm with: kubectl describe pod -n {ns} {pod}",
        ),
        follow_up_actions=("Run the image's entrypoint in CI (a smoke test) before deploying.",),
        decisive=bool(message) or code in (126, 127),
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )


async def container_exit(client: KubernetesClient, row: Row, container: Row, *, current: bool) -> Finding:
    """A container that stopped with an error: now (``current``, e.g. a Failed pod) or in its last
    run before a restart (the pod runs again, but restarted recently)."""
    ns, pod, name = row["namespace"], row["name"], container["name"]
    stopped = container.get("state", {}) if current else last_terminated(container)
    code = stopped.get("exit_code", "?")
    line, source = await log_line(client, row, name, previous_first=not current)
    evidence = [
        Evidence(
            quote=terminated_quote(stopped).replace("Last State", "State" if current else "Last State"),
            source=_status_source(ns, pod, container),
        )
    ]
    if line:
        evidence.insert(0, Evidence(quote=line, source=f"pod {ns}/{pod} ({source})"))
    label = container_label(container)
    when = (
        "exited" if current else f"restarted ({container.get('restarts', 0)} restarts); its last run exited"
    )
    cause = f'; its {source} end with: "{line}"' if line else ""
    return Finding(
        kind="container_exit",
        severity="critical" if current else "warning",
        resource=f"pod {ns}/{pod}",
        summary=f"Pod {ns}/{pod}: {label} {when} with exit code {code}.",
        root_cause=f"{label.capitalize()} of pod {ns}/{pod} {when} with {exit_text(code)}{cause}.",
        evidence=tuple(evidence),
        immediate_actions=(
            f"Read why {label} stopped: kubectl logs -n {ns} {pod} -c {name}"
            + ("" if current else " --previous"),
            "If it was killed (137/143), check liveness probes, memory limits and node pressure.",
        ),
        follow_up_actions=("Alert on container restarts so a flapping container is seen early.",),
        decisive=line is not None,
        namespace=ns,
        workload=row.get("workload"),
        key=pod_key(row),
    )
