"""``incidentfox tools [--json]`` lists every tool of every toolset, marking the write tools."""

from __future__ import annotations

import json

import pytest

from incidentfox.bot.cli import main


def test_tools_json_lists_every_toolset_with_its_write_tools(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    by_name = {entry["toolset"]: {tool["name"]: tool for tool in entry["tools"]} for entry in listing}
    assert {"kubernetes", "pagerduty"} <= set(by_name)
    assert by_name["kubernetes"]["rollout_restart"]["writes"] is True
    assert by_name["kubernetes"]["pod_logs"]["writes"] is False
    assert by_name["pagerduty"]["add_note"]["writes"] is True
    assert all(tool["description"] for tools in by_name.values() for tool in tools.values())


def test_tools_text_marks_write_tools(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tools"]) == 0
    text = capsys.readouterr().out
    assert "kubernetes:" in text and "  add_note (write, needs approval):" in text


def test_at_least_a_hundred_distinct_tools_each_with_one_whole_sentence(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["tools", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    names = [tool["name"] for entry in listing for tool in entry["tools"]]
    assert len(names) == len(set(names)), "one flat list in the SRE agent: no name may repeat"
    assert len(names) >= 100
    assert {"prometheus", "loki", "grafana", "datadog", "coralogix", "elasticsearch", "logs"} <= {
        entry["toolset"] for entry in listing
    }
    assert main(["tools"]) == 0
    text = capsys.readouterr().out
    assert text.rstrip().endswith(f"{len(names)} tools in {len(listing)} toolsets")
    assert "(e.g\n" not in text and not any(line.endswith("(e.g") for line in text.splitlines())
