"""Reading a scenario's state files, one format per backend, each checked field by field.

Times are ages before the run starts (``12m``, ``2h``, ``3d``), as in the Kubernetes emulator's format.

* ``kubernetes``: the Kubernetes emulator's scenario YAML (``incidentfox/emulators/scenarios``).
* ``loki``: ``streams: [{labels: {app: orders, namespace: shop}, lines: ["12m <line>", ...]}]``.
* ``datadog``: ``metrics: [{name, tags: [..], points: "2h..40m=0.2 40m..0m=6"}]``, ``events: [{title,
  text, age, tags, source}]``, ``monitors: [{name, query, state, message, tags, age}]``, ``logs:
  [{service, status, age, message, host}]``.
* ``github``: ``repo: acme/orders``, ``files: {path: text}``, ``pull_request: {title, head, author, body,
  files: [{path, old, new}]}``, ``workflow_run: {name, jobs: [{name, steps: [{name, conclusion,
  command, output: [lines]}]}]}``.
* ``pagerduty``: ``service: {name, description}``, ``incident: {title, age, details: {...}}``,
  ``alerts: [{summary, details}]``, ``changes: [{summary, age, source}]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from incidentfox.evals.files import ScenarioError, read_yaml

_AGE = re.compile(r"^(\d+)([smhd])$")
_LINE = re.compile(r"^(\d+[smhd])\s(.*)$", re.DOTALL)
_SEGMENT = re.compile(r"^(\d+[smhd])\.\.(\d+[smhd])=(-?[\d.]+)$")
_CHECKED = Path("(checked state)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_KUBERNETES_REQUIRED: dict[str, tuple[str, ...]] = {
    "nodes": ("name",),
    "pods": ("name",),
    "deployments": ("name",),
    "statefulsets": ("name",),
    "daemonsets": ("name",),
    "services": ("name",),
    "pvcs": ("name",),
    "hpas": ("name", "max"),
    "jobs": ("name",),
    "cronjobs": ("name",),
    "ingresses": ("name",),
    "configmaps": ("name",),
    "events": ("object", "reason", "message"),
}


def age(value: Any, path: Path, field_name: str) -> timedelta:
    """``12m`` as a ``timedelta``; a ``ScenarioError`` for anything else."""
    found = _AGE.match(str(value))
    if not found:
        raise ScenarioError(path, field_name, f"must be an age like 12m, 2h or 3d, not {value!r}")
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


def ago(value: Any) -> timedelta:
    """An age from a state file that was checked when it was read."""
    return age(value, _CHECKED, "age")


def checked_segments(points: str) -> list[tuple[timedelta, timedelta, float]]:
    """Metric segments from a state file that was checked when it was read."""
    return segments(points, _CHECKED, "points")


def _list(doc: Mapping[str, Any], key: str, path: Path, prefix: str = "") -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise ScenarioError(path, prefix + key, "must be a list")
    return value


def _entries(
    doc: Mapping[str, Any], key: str, path: Path, required: tuple[str, ...], prefix: str = ""
) -> list[Mapping[str, Any]]:
    out: list[Mapping[str, Any]] = []
    for i, entry in enumerate(_list(doc, key, path, prefix)):
        where = f"{prefix}{key}[{i}]"
        if not isinstance(entry, Mapping):
            raise ScenarioError(path, where, "must be a mapping")
        for name in required:
            if entry.get(name) in (None, ""):
                raise ScenarioError(path, f"{where}.{name}", "is required")
        out.append(entry)
    return out


def _document(path: Path) -> Mapping[str, Any]:
    doc = read_yaml(path)
    if not isinstance(doc, Mapping):
        raise ScenarioError(path, "(document)", "must be a YAML mapping")
    return doc


def _kubernetes(doc: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    from incidentfox.emulators.kubernetes_objects import build_cluster

    for section, required in _KUBERNETES_REQUIRED.items():
        entries = _entries(doc, section, path, required)
        if section == "pods":
            for i, pod in enumerate(entries):
                _entries(pod, "containers", path, ("name", "image"), f"pods[{i}].")
    try:
        build_cluster(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ScenarioError(path, "(cluster)", f"the Kubernetes emulator cannot build it ({exc!r})") from None
    return doc


def _loki(doc: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    for i, stream in enumerate(_entries(doc, "streams", path, ("labels", "lines"))):
        if not isinstance(stream["labels"], Mapping):
            raise ScenarioError(path, f"streams[{i}].labels", "must be a mapping")
        for j, line in enumerate(_list(stream, "lines", path, f"streams[{i}].")):
            if not isinstance(line, str) or not _LINE.match(line):
                raise ScenarioError(
                    path, f"streams[{i}].lines[{j}]", 'must be "AGE text", e.g. "12m level=error …"'
                )
    return doc


def split_line(line: str) -> tuple[str, str]:
    found = _LINE.match(line)
    assert found is not None
    return found.group(1), found.group(2)


def segments(points: str, path: Path, field_name: str) -> list[tuple[timedelta, timedelta, float]]:
    """``"2h..40m=0.2 40m..0m=6"``: from an age to a younger age, the value in between."""
    out = []
    for part in str(points).split():
        found = _SEGMENT.match(part)
        if not found:
            raise ScenarioError(
                path, field_name, f'must be segments like "2h..40m=0.2 40m..0m=6", not {part!r}'
            )
        out.append(
            (
                age(found.group(1), path, field_name),
                age(found.group(2), path, field_name),
                float(found.group(3)),
            )
        )
    return out


def _datadog(doc: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    for i, metric in enumerate(_entries(doc, "metrics", path, ("name", "points"))):
        segments(metric["points"], path, f"metrics[{i}].points")
    for i, event in enumerate(_entries(doc, "events", path, ("title", "age"))):
        age(event["age"], path, f"events[{i}].age")
    for i, monitor in enumerate(_entries(doc, "monitors", path, ("name", "query", "state"))):
        age(monitor.get("age", "10m"), path, f"monitors[{i}].age")
    for i, log in enumerate(_entries(doc, "logs", path, ("service", "message", "age"))):
        age(log["age"], path, f"logs[{i}].age")
    return doc


def _github(doc: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    repo = doc.get("repo")
    if not isinstance(repo, str) or repo.count("/") != 1:
        raise ScenarioError(path, "repo", "must be OWNER/NAME")
    if doc.get("pull_request") is not None:
        pr = doc["pull_request"]
        if not isinstance(pr, Mapping) or not pr.get("title") or not pr.get("head"):
            raise ScenarioError(path, "pull_request", "needs a title and a head branch")
        _entries(pr, "files", path, ("path",), "pull_request.")
    run = doc.get("workflow_run")
    if not isinstance(run, Mapping):
        raise ScenarioError(path, "workflow_run", "is required (a mapping with jobs)")
    for i, job in enumerate(_entries(run, "jobs", path, ("name", "steps"), "workflow_run.")):
        _entries(job, "steps", path, ("name",), f"workflow_run.jobs[{i}].")
    return doc


def _pagerduty(doc: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    service = doc.get("service")
    if not isinstance(service, Mapping) or not service.get("name"):
        raise ScenarioError(path, "service.name", "is required")
    incident = doc.get("incident")
    if not isinstance(incident, Mapping) or not incident.get("title"):
        raise ScenarioError(path, "incident.title", "is required")
    age(incident.get("age", "5m"), path, "incident.age")
    _entries(doc, "alerts", path, ("summary",))
    for i, change in enumerate(_entries(doc, "changes", path, ("summary", "age"))):
        age(change["age"], path, f"changes[{i}].age")
    return doc


_READERS = {
    "kubernetes": _kubernetes,
    "loki": _loki,
    "datadog": _datadog,
    "github": _github,
    "pagerduty": _pagerduty,
}


def read_state(backend: str, path: Path) -> Mapping[str, Any]:
    """The state file of ``backend`` at ``path``, checked; a ``ScenarioError`` names file and field."""
    return _READERS[backend](_document(path), path)
