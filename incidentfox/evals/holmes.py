"""Reading HolmesGPT's published eval fixtures, so IncidentFox can be compared on the peer's cases.

A HolmesGPT fixture is a directory holding ``test_case.yaml``::

    user_prompt: "Why is the payments worker restarting?"     # a string, or a list of variants
    expected_output:                                           # criteria for an LLM judge
      - The worker runs out of memory
    tags: [kubernetes, medium]                                 # optional
    before_test: kubectl apply -f manifest.yaml                # optional, ignored here (no cluster)

and recorded tool outputs, one per ``*.txt`` file: a first line of JSON naming the call
(``{"toolset_name": "kubernetes/core", "tool_name": "kubectl_describe", "params": {...}}``) and the
tool's output after it. Here those outputs are offered to the model through a small MCP server
(``holmes_tools``); ``expected_output`` is scored by the judge only, so without a model the case is
reported as unscored rather than passed or failed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from incidentfox.evals.files import ScenarioError, read_yaml
from incidentfox.evals.scenario import Expectations, Scenario, Trigger

HOLMES_FILE = "test_case.yaml"
CATEGORY = "holmes"


def read_mock(path: Path) -> dict[str, Any]:
    """One recorded tool output: ``{"toolset", "tool", "params", "output"}``."""
    text = path.read_text(encoding="utf-8")
    header, _, output = text.partition("\n")
    try:
        call = json.loads(header)
    except ValueError:
        raise ScenarioError(path, "(first line)", "must be the JSON of the recorded call") from None
    if not isinstance(call, Mapping) or not isinstance(call.get("tool_name"), str):
        raise ScenarioError(path, "tool_name", "the first line's JSON must name the tool (tool_name)")
    params = call.get("params") or {}
    if not isinstance(params, Mapping):
        raise ScenarioError(path, "params", "must be a JSON object")
    return {
        "toolset": str(call.get("toolset_name", "")),
        "tool": call["tool_name"],
        "params": dict(params),
        "output": output,
    }


def read_mocks(directory: Path) -> tuple[dict[str, Any], ...]:
    return tuple(read_mock(p) for p in sorted(directory.glob("*.txt")))


def _as_list(value: Any, path: Path, name: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise ScenarioError(path, name, "must be a non-empty string or list of strings")
    return items


def load_holmes_case(directory: Path) -> Scenario:
    """A HolmesGPT fixture directory as a scenario: the first prompt variant, judged on
    ``expected_output``, with the recorded tool outputs as its mocks."""
    path = directory / HOLMES_FILE
    doc = read_yaml(path)
    if not isinstance(doc, Mapping):
        raise ScenarioError(path, "(document)", "must be a YAML mapping")
    prompts = _as_list(doc.get("user_prompt"), path, "user_prompt")
    expected = _as_list(doc.get("expected_output"), path, "expected_output")
    tags = doc.get("tags") or []
    if not isinstance(tags, list):
        raise ScenarioError(path, "tags", "must be a list")
    return Scenario(
        name=f"holmes/{directory.name}",
        category=CATEGORY,
        description=str(doc.get("description") or ", ".join(map(str, tags))),
        directory=directory,
        trigger=Trigger(kind="mention", text=prompts[0]),
        expect=Expectations(judge=tuple(expected)),
        mocks=read_mocks(directory),
        source_format="holmesgpt",
    )
