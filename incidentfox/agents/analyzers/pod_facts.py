"""What a described pod says, read the way an SRE reads ``kubectl describe pod``: its events, its
containers' last terminations, what an exit code usually means, and the decisive line of a log.

Shared by the pod rules (``pods``, ``pod_placement``, ``pod_logs``); every row is the toolset's own
JSON (``kubernetes_views``), so the rules and a model read the same words.
"""

from __future__ import annotations

import re
from typing import Any

from incidentfox.agents.redaction import scrub_text
from incidentfox.agents.toolsets import kubernetes as k8s_tools
from incidentfox.agents.toolsets.kubernetes_api import KubernetesClient

Row = dict[str, Any]
LOG_TAIL_LINES = 100
_STRONG = re.compile(
    r"(?i)\b(fatal|panic|exception|traceback|undefined|unhandled|segmentation fault|cannot|could not|can't"
    r"|unable to|no such|not found|not defined|unknown flag|unrecognized|missing|refused|denied|invalid)\b"
    r"|^\W*error\b|\berror:"
)
_WEAK = re.compile(r"(?i)\b(error|err|fail(?:ed|ure)?|killed|exit(?:ed)?|abort(?:ed)?)\b")
_QUIET_LEVEL = re.compile(r"(?i)\b(info|debug|trace)\b")

EXIT_CODE_MEANINGS: dict[int, str] = {
    0: "it completed successfully",
    1: "a general application error",
    2: "a misuse of the command: a bad flag, argument or configuration it could not parse",
    126: "the command cannot be executed (not executable, or permission denied)",
    127: "the command was not found in the image (wrong entrypoint, command or PATH)",
    128: "the container runtime could not start the process",
    130: "it was interrupted (SIGINT)",
    134: "it aborted (SIGABRT), usually a failed assertion or a fatal runtime error",
    137: "it was killed with SIGKILL: by the kernel's OOM killer, or by the kubelet after a failed "
    "liveness probe or an expired grace period",
    139: "a segmentation fault (SIGSEGV): the process read or wrote memory it does not own",
    143: "it was stopped with SIGTERM (a shutdown asked by the kubelet, for example after a failed "
    "liveness probe, or by the application itself)",
    255: "a fatal error whose exit status is out of range",
}


def exit_meaning(code: object) -> str | None:
    """What an exit code usually means (``137`` -> killed with SIGKILL...); ``None`` when unknown."""
    try:
        value = int(str(code))
    except ValueError:
        return None
    if value in EXIT_CODE_MEANINGS:
        return EXIT_CODE_MEANINGS[value]
    if 128 < value < 160:
        return f"it was killed by signal {value - 128}"
    return None


def exit_text(code: object) -> str:
    """``code 137 (it was killed with SIGKILL...)``, or ``code 3`` when the code has no usual meaning."""
    meaning = exit_meaning(code)
    return f"code {code} ({meaning})" if meaning else f"code {code}"


def decisive_log_line(log: str) -> str | None:
    """The most telling error line of a log tail: strong words (fatal, panic, exception, undefined,
    ``Error:``) beat weak ones (failed, error); INFO/DEBUG lines count less; later lines win ties."""
    best: tuple[int, int, str] | None = None
    for index, raw in enumerate(log.splitlines()):
        line = raw.strip()
        if not line:
            continue
        score = (
            3 * len(_STRONG.findall(line)) + len(_WEAK.findall(line)) - 3 * bool(_QUIET_LEVEL.search(line))
        )
        if score > 0 and (best is None or (score, index) >= best[:2]):
            best = (score, index, line)
    return best[2] if best else None


def pod_key(row: Row) -> str:
    return f"pod/{row['namespace']}/{row['name']}"


def events(detail: Row, *reasons: str) -> list[Row]:
    """The pod's events (warnings first, newest first), only those with one of ``reasons`` if given."""
    return [e for e in detail.get("events", []) if not reasons or e.get("reason") in reasons]


def last_terminated(container: Row) -> Row:
    last = container.get("last_state") or {}
    return last if last.get("state") == "terminated" else {}


def condition(detail: Row, kind: str) -> Row:
    found: Row = next((c for c in detail.get("conditions", []) if c.get("type") == kind), {})
    return found


async def log_line(
    client: KubernetesClient, row: Row, container: str, *, previous_first: bool
) -> tuple[str | None, str]:
    """(decisive line, ``previous logs`` | ``logs``) of one container: the previous run's log first
    when ``previous_first`` (a crashed container), then the current one."""
    order = (True, False) if previous_first else (False,)
    source = "previous logs" if previous_first else "logs"
    for previous in order:
        params = k8s_tools.PodLogsParams(
            name=row["name"],
            namespace=row["namespace"],
            container=container,
            previous=previous,
            tail_lines=LOG_TAIL_LINES,
        )
        logs = await k8s_tools.pod_logs(client, params)
        if logs.status == "ok":
            line = decisive_log_line(logs.data["log"])
            source = "previous logs" if previous else "logs"
            if line:
                return scrub_text(line), source
    return None, source
