"""The output budget keeps the head and tells the model to narrow its query; it never cuts silently."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from incidentfox.agents.output_budget import (
    DEFAULT_BUDGET_CHARS,
    OutputBudget,
    apply_budget,
    budget_result,
    serialize_result,
)
from incidentfox.agents.toolsets.base import ToolResult


def test_small_results_pass_through_as_json() -> None:
    result = ToolResult.ok([{"name": "checkout"}], invocation="kubectl get pods -n prod")
    text = budget_result(result, tool="list_pods")
    assert json.loads(text) == {
        "status": "ok",
        "data": [{"name": "checkout"}],
        "invocation": "kubectl get pods -n prod",
    }


def test_error_results_carry_the_error_not_empty_fields() -> None:
    assert json.loads(serialize_result(ToolResult.failed("API down"))) == {
        "status": "error",
        "error": "API down",
    }


def test_large_log_keeps_head_and_asks_for_a_smaller_tail() -> None:
    log = "\n".join(f"line {i:05d} something happened" for i in range(2000))
    result = ToolResult.ok({"log": log}, invocation="kubectl logs x")
    text = budget_result(result, tool="pod_logs")
    assert len(text) <= DEFAULT_BUDGET_CHARS
    assert text.startswith('{"status":"ok","data":{"log":"line 00000')
    assert "OUTPUT TRUNCATED" in text
    assert "tail_lines" in text
    assert "since_seconds" in text
    assert f"of {len(serialize_result(result))} characters" in text


def test_per_tool_budget_overrides_default() -> None:
    budget = OutputBudget(default=10_000, per_tool={"list_pods": 500})
    rows = [{"name": f"pod-{i}", "status": "Running"} for i in range(200)]
    pods = budget_result(ToolResult.ok(rows), tool="list_pods", budget=budget)
    nodes = budget_result(ToolResult.ok(rows), tool="list_nodes", budget=budget)
    assert len(pods) <= 500
    assert "label_selector" in pods
    assert len(pods) < len(nodes) <= 10_000
    assert json.loads(nodes)["data"] == rows


def test_budget_from_team_config() -> None:
    budget = OutputBudget.from_config(
        {"agents": {"output_budget": {"default": 3000, "per_tool": {"pod_logs": 9000}}}}
    )
    assert (budget.limit_for("list_pods"), budget.limit_for("pod_logs")) == (3000, 9000)
    assert OutputBudget.from_config({}).limit_for("x") == DEFAULT_BUDGET_CHARS


def test_cut_prefers_a_line_boundary() -> None:
    text = "\n".join("x" * 99 for _ in range(100))
    out = apply_budget(text, 2000, tool="pod_logs")
    head = out.split("\n[OUTPUT TRUNCATED")[0]
    assert head.endswith("x" * 99)
    assert text.startswith(head)


@given(st.text(min_size=0, max_size=5000), st.integers(min_value=600, max_value=4000))
def test_budget_is_never_exceeded_and_never_silent(text: str, limit: int) -> None:
    out = apply_budget(text, limit, tool="get_events")
    assert len(out) <= max(limit, len(text) if len(text) <= limit else limit)
    if len(text) > limit:
        assert "OUTPUT TRUNCATED" in out
        assert text.startswith(out.split("\n[OUTPUT TRUNCATED")[0])
    else:
        assert out == text
