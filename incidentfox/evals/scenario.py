"""What a scenario is, and how a directory of them is read.

A scenario is a directory holding ``scenario.yaml`` and the state files it names::

    name: orders-migration-stuck          # optional; the directory's name by default
    category: kubernetes                  # kubernetes | metrics | logs | ci | pages | ... (free text)
    description: One line for the report.
    trigger:
      kind: mention                       # mention (Slack) | page (PagerDuty) | ci (GitHub workflow run)
      text: "orders has been down since the 14:00 deploy, why?"
    namespace: shop                       # the team's Kubernetes namespace (default: the cluster file's)
    backends:                             # state files, relative to the directory
      kubernetes: cluster.yaml            # the Kubernetes emulator's scenario format
      loki: logs.yaml                     # streams: [{labels: {...}, lines: ["12m <line>", ...]}]
      datadog: metrics.yaml               # metrics / events / monitors / logs (see ``backends``)
      github: github.yaml                 # repo, pull request and failed workflow run
      pagerduty: pagerduty.yaml           # the incident that pages
    expect:
      root_cause: {kind: Deployment, name: orders, namespace: shop}
      must_include: ["init container"]    # phrases (case-insensitive) the RCA must contain
      must_match: ['migrat(e|ion)']       # regexes (case-insensitive) the RCA must match
      cite: [kubernetes]                  # evidence sources: each must match some evidence's source
      forbidden: ["No problems found"]    # phrases the RCA must not contain
      forbidden_match: []                 # regexes the RCA must not match
      judge: ["Names the missing database migration as the cause"]   # criteria for the LLM judge

A malformed scenario raises ``ScenarioError`` naming the file and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from incidentfox.evals.files import ScenarioError, read_yaml
from incidentfox.evals.state import read_state

SCENARIO_FILE = "scenario.yaml"
TriggerKind = Literal["mention", "page", "ci"]
TRIGGER_KINDS: tuple[TriggerKind, ...] = ("mention", "page", "ci")
BACKENDS = ("kubernetes", "loki", "datadog", "github", "pagerduty")
CITE_ALIASES: dict[str, str] = {
    "kubernetes": r"pod|deployment|node|event|service|kubernetes|replicaset|statefulset|daemonset|job|"
    r"cronjob|ingress|persistentvolumeclaim|pvc|hpa|horizontalpodautoscaler|networkpolicy|namespace",
    "logs": r"log",
    "metrics": r"metric|datadog|prometheus|monitor|query",
    "github": r"github|workflow|ci run|job |step|commit|pull request|pr #",
    "pagerduty": r"pagerduty|incident|alert",
}
"""``cite`` entries that name a kind of source rather than a pattern."""
_KNOWN_KEYS = {"name", "category", "description", "trigger", "namespace", "backends", "expect", "tags"}
_EXPECT_KEYS = {"root_cause", "must_include", "must_match", "cite", "forbidden", "forbidden_match", "judge"}


@dataclass(frozen=True, slots=True)
class RootCause:
    """The resource a right answer names as the cause (``name`` is what is checked; kind and
    namespace say what it is for the reader)."""

    name: str
    kind: str = ""
    namespace: str = ""

    def label(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind + ' ' if self.kind else ''}{where}{self.name}"


@dataclass(frozen=True, slots=True)
class Expectations:
    root_cause: RootCause | None = None
    must_include: tuple[str, ...] = ()
    must_match: tuple[str, ...] = ()
    cite: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    forbidden_match: tuple[str, ...] = ()
    judge: tuple[str, ...] = ()

    @property
    def has_facts(self) -> bool:
        """Whether anything can be checked without a judge."""
        return bool(
            self.root_cause
            or self.must_include
            or self.must_match
            or self.cite
            or self.forbidden
            or self.forbidden_match
        )


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: TriggerKind
    text: str


@dataclass(frozen=True, slots=True)
class Scenario:
    """One eval case, read from its directory. ``state`` holds the parsed state files by backend;
    ``mocks`` are recorded tool outputs (HolmesGPT fixtures) offered to the model instead of emulators."""

    name: str
    category: str
    description: str
    directory: Path
    trigger: Trigger
    expect: Expectations
    namespace: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)
    mocks: tuple[Mapping[str, Any], ...] = ()
    source_format: str = "incidentfox"


def _mapping(value: Any, path: Path, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScenarioError(path, name, f"must be a mapping, not {type(value).__name__}")
    return value


def _text(value: Any, path: Path, name: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if value is None:
        raise ScenarioError(path, name, "is required (a non-empty string)")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ScenarioError(path, name, "must be a non-empty string")
    return value


def _strings(value: Any, path: Path, name: str, *, regex: bool = False) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ScenarioError(path, name, "must be a list of non-empty strings")
    if regex:
        for i, pattern in enumerate(value):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ScenarioError(path, f"{name}[{i}]", f"is not a valid regex ({exc})") from None
    return tuple(value)


def _root_cause(value: Any, path: Path) -> RootCause | None:
    if value is None:
        return None
    if isinstance(value, str):
        kind, _, rest = value.rpartition(" ") if " " in value else ("", "", value)
        namespace, _, name = rest.rpartition("/")
        return RootCause(name=_text(name, path, "expect.root_cause"), kind=kind, namespace=namespace)
    spec = _mapping(value, path, "expect.root_cause")
    return RootCause(
        name=_text(spec.get("name"), path, "expect.root_cause.name"),
        kind=_text(spec.get("kind"), path, "expect.root_cause.kind", required=False),
        namespace=_text(spec.get("namespace"), path, "expect.root_cause.namespace", required=False),
    )


def parse_expectations(value: Any, path: Path) -> Expectations:
    spec = _mapping(value, path, "expect")
    for key in spec:
        if key not in _EXPECT_KEYS:
            raise ScenarioError(
                path, f"expect.{key}", f"unknown field (known: {', '.join(sorted(_EXPECT_KEYS))})"
            )
    expect = Expectations(
        root_cause=_root_cause(spec.get("root_cause"), path),
        must_include=_strings(spec.get("must_include"), path, "expect.must_include"),
        must_match=_strings(spec.get("must_match"), path, "expect.must_match", regex=True),
        cite=_strings(spec.get("cite"), path, "expect.cite", regex=True),
        forbidden=_strings(spec.get("forbidden"), path, "expect.forbidden"),
        forbidden_match=_strings(spec.get("forbidden_match"), path, "expect.forbidden_match", regex=True),
        judge=_strings(spec.get("judge"), path, "expect.judge"),
    )
    if not expect.has_facts and not expect.judge:
        raise ScenarioError(
            path, "expect", "states nothing to check (give root_cause, must_include, … or judge)"
        )
    return expect


def _trigger(value: Any, path: Path) -> Trigger:
    spec = _mapping(value, path, "trigger")
    kind = spec.get("kind", "mention")
    if kind not in TRIGGER_KINDS:
        raise ScenarioError(path, "trigger.kind", f"must be one of {', '.join(TRIGGER_KINDS)}, not {kind!r}")
    text = _text(spec.get("text"), path, "trigger.text", required=kind == "mention")
    return Trigger(kind=kind, text=text)


def load_scenario(directory: Path) -> Scenario:
    """Read one scenario directory (its ``scenario.yaml`` and every state file it names)."""
    path = directory / SCENARIO_FILE
    doc = _mapping(read_yaml(path), path, "(document)")
    for key in doc:
        if key not in _KNOWN_KEYS:
            raise ScenarioError(path, str(key), f"unknown field (known: {', '.join(sorted(_KNOWN_KEYS))})")
    trigger = _trigger(doc.get("trigger"), path)
    backends = _mapping(doc.get("backends") or {}, path, "backends")
    state: dict[str, Any] = {}
    for backend, file_name in backends.items():
        if backend not in BACKENDS:
            raise ScenarioError(
                path, f"backends.{backend}", f"unknown backend (known: {', '.join(BACKENDS)})"
            )
        name = _text(file_name, path, f"backends.{backend}")
        state[backend] = read_state(backend, directory / name)
    if trigger.kind == "page" and "pagerduty" not in state:
        raise ScenarioError(path, "backends.pagerduty", "a page trigger needs a pagerduty state file")
    if trigger.kind == "ci" and "github" not in state:
        raise ScenarioError(path, "backends.github", "a ci trigger needs a github state file")
    if not state:
        raise ScenarioError(path, "backends", "names no state file")
    namespace = doc.get("namespace")
    return Scenario(
        name=_text(doc.get("name", directory.name), path, "name"),
        category=_text(doc.get("category"), path, "category"),
        description=_text(doc.get("description"), path, "description", required=False),
        directory=directory,
        trigger=trigger,
        expect=parse_expectations(doc.get("expect"), path),
        namespace=_text(namespace, path, "namespace") if namespace is not None else None,
        state=state,
    )
