"""One generic scripted model for the eval's ``scripted-model`` column: a disciplined investigator.

``ScriptedInvestigator`` is a responder for the OpenAI emulator (``incidentfox.emulators.openai_api``).
It answers every request of every scenario from what that request carries and nothing else: the
system prompt (the planner's grounding and first finding), the question, the tools offered and the
tool outputs earlier in the conversation. It never sees a scenario's expected facts.

* As the planner (``ask_*`` tools offered): first it asks every specialist a task built from the
  question; then it writes the RCA, the planner's output schema, from the grounding and the answers.
* As a specialist: it calls the broad tools that fit (``list_pods`` and warning events, ``fetch_logs``,
  alert and monitor tools, ``workflow_failures``, ``incident_details``), then the narrow ones that
  earlier outputs point to (``describe_pod`` and ``pod_logs`` of unhealthy pods, the metric query of
  an alerting monitor), and answers with the outputs it saw, one section per call.

The RCA's root cause is the first finding when there is one, else the most severe line found; its
evidence is lines quoted verbatim from tool outputs (or the grounding) with their source. It is a
floor for what a model reading the same outputs can do, not a model: it does not reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from incidentfox.agents.planner import FIRST_FINDING_HEADER, GROUNDING_HEADER
from incidentfox.emulators.openai_api import RecordedRequest, ScriptStep

SCRIPTED_MODE = "scripted-model"
"""The results' mode (the table's column) of a run against the scripted investigator."""
MAX_EVIDENCE = 8
MAX_SECTION_CHARS = 6000
MAX_SOURCE_CHARS = 120
MAX_PODS = 3
WIDER_LOG_WINDOW = "-6h"
"""Where the logs are looked at again when the default hour shows no error."""
IDENTITY_KEYS = ("namespace", "name", "service", "workload", "resource", "job", "step", "where")
"""The fields that say which object a quoted line belongs to (its source's context)."""
SECTION = "### "
_PD_ID = re.compile(r"\bid ([A-Za-z0-9]{2,40})\b")
_REPO = re.compile(r"\b([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)@[0-9a-f]{7,40}\b")
_RUN_ID = re.compile(r"\brun (\d{6,})\b")
_FINDING = re.compile(r"^- \[(\w+)\] (.+)$")
_GROUNDED = re.compile(r"^\s+evidence \((.+)\): \"(.*)\"$")
_UNHEALTHY = re.compile(
    r"crashloop|backoff|error|oom|pending|failed|evicted|unknown|terminat|not ?ready|init:|"
    r"containercreating|imagepull|invalid|unschedul",
    re.IGNORECASE,
)
SEVERITY: tuple[tuple[int, re.Pattern[str]], ...] = (
    (5, re.compile(r"\b(fatal|panic|oomkilled|out of memory|crashloopbackoff)\b", re.IGNORECASE)),
    (4, re.compile(r"\b(error|exception|failed|failure|refused|denied|forbidden|exit code [1-9])", re.I)),
    (3, re.compile(r"\b(timeout|timed out|unavailable|backoff|evicted|unhealthy|insufficient)", re.I)),
    (2, re.compile(r"\b(warn(ing)?|alert|throttl|exhaust|exceeded|full|latency|retry|retrying)", re.I)),
)
"""How severe a quoted line sounds: the root cause without a first finding is the most severe line."""
ERROR = 4


@dataclass(frozen=True, slots=True)
class Call:
    """A tool call earlier in the conversation and what it returned."""

    name: str
    arguments: Mapping[str, Any]
    output: str


@dataclass(frozen=True, slots=True)
class Quote:
    """A line quoted verbatim, where it came from, and the object it is about (``""`` when unknown)."""

    line: str
    source: str
    severity: int
    about: str = ""

    @property
    def headline(self) -> str:
        return f"{self.about or self.source}: {self.line}"


def conversation(request: RecordedRequest) -> tuple[str, list[Call]]:
    """The first user message (question or task) and the tool calls made so far, with their outputs."""
    question = ""
    outputs: dict[str, str] = {}
    pending: list[tuple[str, str, Mapping[str, Any]]] = []
    for message in request.messages:
        role = message.get("role")
        if role == "user" and not question:
            question = _text(message.get("content"))
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            try:
                arguments = json.loads(function.get("arguments") or "{}")
            except ValueError:
                arguments = {}
            pending.append((str(call.get("id")), str(function.get("name")), arguments))
        if role == "tool":
            outputs[str(message.get("tool_call_id"))] = _text(message.get("content"))
    calls = [Call(name, args, outputs.get(call_id, "")) for call_id, name, args in pending]
    return question, calls


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def arguments_for(schema: Mapping[str, Any], known: Mapping[str, Any]) -> dict[str, Any] | None:
    """Every property of a tool's (strict) schema: ``known`` values, else defaults, else null; ``None``
    when a required property has none of these (the tool cannot be called honestly)."""
    args: dict[str, Any] = {}
    for name, spec in (schema.get("properties") or {}).items():
        if name in known:
            args[name] = known[name]
        elif "default" in spec:
            args[name] = spec["default"]
        elif any(option.get("type") == "null" for option in spec.get("anyOf") or ()):
            args[name] = None
        else:
            return None
    return args


class ScriptedInvestigator:
    """The responder: ``OpenAIEmulator(responder=ScriptedInvestigator())``."""

    def __call__(self, request: RecordedRequest) -> ScriptStep:
        schemas = {
            str(t.get("function", {}).get("name")): dict(t.get("function", {}).get("parameters") or {})
            for t in request.tools
        }
        question, calls = conversation(request)
        structured = request.body.get("response_format") is not None  # the planner's RCA schema
        if structured or any(name.startswith("ask_") for name in schemas):
            return self.planner(request.system_prompt, question, calls, schemas)
        return self.specialist(question, calls, schemas)

    def planner(
        self, system: str, question: str, calls: list[Call], schemas: Mapping[str, Mapping[str, Any]]
    ) -> ScriptStep:
        asks = [name for name in schemas if name.startswith("ask_")]
        if asks and not calls:
            task = (
                f"{question}\nFind what is failing or unhealthy and quote the exact lines that show it, "
                "each with its source."
            )
            planned = [(n, arguments_for(schemas[n], {"input": task})) for n in asks]
            return ScriptStep.tool_calls(
                [(n, a) for n, a in planned if a is not None],
                text="First I ask each specialist what it sees.",
            )
        return ScriptStep.json(write_rca(system, [c for c in calls if c.name in asks]))

    def specialist(
        self, question: str, calls: list[Call], schemas: Mapping[str, Mapping[str, Any]]
    ) -> ScriptStep:
        done = {(c.name, json.dumps(c.arguments, sort_keys=True)) for c in calls}
        wanted = [
            (name, args)
            for name, known in self._plan(question, calls, set(schemas))
            if (args := arguments_for(schemas[name], known)) is not None
            and (name, json.dumps(args, sort_keys=True)) not in done
        ]
        if wanted:
            return ScriptStep.tool_calls(wanted)
        return ScriptStep.text(specialist_answer(calls))

    def _plan(
        self, question: str, calls: list[Call], offered: set[str]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The calls that fit now: the broad ones first, then those earlier outputs point to."""
        if not calls:
            if "list_pods" in offered:
                yield "list_pods", {}
            if "get_events" in offered:
                yield "get_events", {"warnings_only": True}
            if "fetch_logs" in offered:
                yield "fetch_logs", {}
            for name in sorted(offered):
                if re.search(r"(^|_)(alerts|monitors_alerting|firing_alerts)$", name):
                    yield name, {}
            if "workflow_failures" in offered:
                found = _RUN_ID.search(question)
                repo = _REPO.search(question)
                yield (
                    "workflow_failures",
                    {
                        "run_id": int(found.group(1)) if found else None,
                        "repo": repo.group(1) if repo else None,
                    },
                )
            if "incident_details" in offered and (incident := _PD_ID.search(question)):
                yield "incident_details", {"incident_id": incident.group(1)}
            return
        for call in calls:
            if call.name == "list_pods":
                for pod, restarted in unhealthy_pods(call.output)[:MAX_PODS]:
                    if "describe_pod" in offered:
                        yield "describe_pod", {"name": pod}
                    if "pod_logs" in offered:
                        yield "pod_logs", {"name": pod, "previous": restarted}
            quiet = not any(severity(line) >= ERROR for line, _ in _leaves(_json(call.output)))
            if call.name == "fetch_logs" and not call.arguments.get("start") and quiet:
                yield "fetch_logs", {"start": WIDER_LOG_WINDOW}
            if "monitors_alerting" in call.name and "dd_metric_query" in offered:
                for query in _values(call.output, "query")[:2]:
                    yield "dd_metric_query", {"query": metric_of_monitor(query)}


def unhealthy_pods(output: str) -> list[tuple[str, bool]]:
    """Pods of a ``list_pods`` output that are not Running and ready, and whether they restarted."""
    found: list[tuple[str, bool]] = []
    for pod in _objects(_json(output)):
        name = pod.get("name")
        if not isinstance(name, str):
            continue
        restarts = next((v for k, v in pod.items() if "restart" in k.lower() and isinstance(v, int)), 0)
        status = " ".join(str(v) for k, v in pod.items() if k != "name" and not isinstance(v, (dict, list)))
        ready = str(pod.get("ready", ""))
        not_ready = bool(re.fullmatch(r"(\d+)/(\d+)", ready)) and ready.split("/")[0] != ready.split("/")[1]
        if _UNHEALTHY.search(status) or not_ready or restarts:
            found.append((name, bool(restarts)))
    return found


def metric_of_monitor(query: str) -> str:
    """The metric query inside a Datadog monitor query: ``sum(last_5m):<metric query> > 10``."""
    metric = re.sub(r"^\w+\(last_\w+\):", "", query.strip())
    return re.split(r"\s*(?:[<>]=?|==)\s*-?[\d.]+\s*$", metric)[0]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _objects(data: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(data, Mapping):
        yield data
        for value in data.values():
            yield from _objects(value)
    elif isinstance(data, list):
        for item in data:
            yield from _objects(item)


def _values(output: str, key: str) -> list[str]:
    return [str(o[key]) for o in _objects(_json(output)) if isinstance(o.get(key), str) and o[key]]


def specialist_answer(calls: Sequence[Call]) -> str:
    """The specialist's reply: each call's output, verbatim (capped), under a header naming the call."""
    if not calls:
        return "None of my tools fit this task, so I found nothing."
    sections = []
    for call in calls:
        args = ", ".join(f"{k}={v}" for k, v in call.arguments.items() if v not in (None, False, ""))
        sections.append(f"{SECTION}{call.name}({args})\n{call.output[:MAX_SECTION_CHARS]}")
    return "Here is what my tools returned.\n\n" + "\n\n".join(sections)


def quotes(specialist: str, answer: str) -> list[Quote]:
    """Every line a specialist's answer quoted from a tool, with its source: the string values of the
    tool's JSON output (split into lines), sourced by specialist, tool and the tool's invocation."""
    found: list[Quote] = []
    for section in answer.split(SECTION)[1:]:
        header, _, body = section.partition("\n")
        data = _json(body)
        invocation = data.get("invocation") if isinstance(data, Mapping) else None
        call = f"{specialist} {header.partition('(')[0]}"
        source = f"{call}: {str(invocation)[:MAX_SOURCE_CHARS]}" if invocation else header[:MAX_SOURCE_CHARS]
        for line, about in _leaves(data):
            found.append(Quote(line, f"{source} [{about}]" if about else source, severity(line), about))
    return found


def _leaves(data: Any, about: str = "") -> Iterator[tuple[str, str]]:
    """Every string value of a JSON output, line by line, with the identity of the object holding it."""
    if isinstance(data, Mapping):
        identity = " ".join(
            f"{key} {data[key]}" for key in IDENTITY_KEYS if isinstance(data.get(key), str) and data[key]
        )
        about = identity or about
        for key, value in data.items():
            if key not in ("invocation", "url", "status", *IDENTITY_KEYS):
                yield from _leaves(value, about)
    elif isinstance(data, list):
        for item in data:
            yield from _leaves(item, about)
    elif isinstance(data, str):
        for line in data.splitlines():
            if line.strip():
                yield line.strip(), about


def severity(line: str) -> int:
    return next((weight for weight, pattern in SEVERITY if pattern.search(line)), 0)


def grounding(system: str) -> tuple[list[tuple[str, str]], list[Quote], str]:
    """The analyzers' findings ((severity, text)), their quoted evidence and the first finding, as the
    planner's instructions give them; an ``info`` finding without evidence (an all-clear note such as
    "all pods running and ready") is not a finding here."""
    findings: list[tuple[str, str]] = []
    evidence: list[Quote] = []
    backed: set[str] = set()
    _, _, rest = system.partition(GROUNDING_HEADER.strip())
    section, _, first = rest.partition(FIRST_FINDING_HEADER.strip())
    for line in section.splitlines():
        if found := _FINDING.match(line):
            findings.append((found.group(1), found.group(2)))
        elif (quoted := _GROUNDED.match(line)) and findings:
            evidence.append(Quote(quoted.group(2), quoted.group(1), 6))
            backed.add(findings[-1][1])
    shown = first.partition("\n")[2].strip().splitlines()
    first_finding = shown[0].strip() if shown else ""
    problems = [(level, text) for level, text in findings if level != "info" or text in backed]
    if not any(first_finding.startswith(text) for _, text in problems):
        first_finding = ""  # an all-clear note is not a cause
    return problems, evidence, first_finding


def write_rca(system: str, answers: Sequence[Call]) -> dict[str, Any]:
    """The planner's RCA (``planner.RcaOutput``'s JSON) from the grounding and the specialists' answers."""
    findings, grounded, first = grounding(system)
    found = [q for call in answers for q in quotes(call.name.removeprefix("ask_"), call.output)]
    ranked = sorted((q for q in found if q.severity), key=lambda q: -q.severity)
    evidence = _unique([*grounded, *ranked])[:MAX_EVIDENCE]
    caveats = [
        f"The {c.name.removeprefix('ask_')} specialist returned nothing." for c in answers if not c.output
    ]
    if first:
        root_cause = first
    elif findings:
        root_cause = findings[0][1]
    elif ranked:
        root_cause = ranked[0].headline
    else:
        root_cause = "unknown: no tool output showed a failure"
    summary = f"The deterministic checks found: {root_cause}" if first or findings else ""
    if ranked:
        summary += f" The most severe line the specialists found: {ranked[0].headline}."
    summary = summary.strip() or f"Nothing was found: {root_cause}."
    level = "high" if grounded and ranked else "medium" if evidence else "low"
    return {
        "summary": summary,
        "root_cause": root_cause,
        "evidence": [{"quote": q.line, "source": q.source, "url": None} for q in evidence],
        "confidence": {"level": level, "why": f"{len(evidence)} quoted lines support it."},
        "immediate_actions": [],
        "follow_up_actions": [],
        "caveats": caveats,
        "first_finding": {"verdict": "confirmed", "why": "The specialists' outputs agree with it."}
        if first
        else None,
    }


def _unique(items: Sequence[Quote]) -> list[Quote]:
    seen: set[str] = set()
    kept = []
    for item in items:
        if item.line not in seen:
            seen.add(item.line)
            kept.append(item)
    return kept
