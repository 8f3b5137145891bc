"""Finding every scenario under a directory: IncidentFox scenarios and HolmesGPT fixtures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from incidentfox.evals.files import ScenarioError
from incidentfox.evals.holmes import HOLMES_FILE, load_holmes_case
from incidentfox.evals.scenario import SCENARIO_FILE, Scenario, load_scenario


def load_suite(root: Path) -> list[Scenario]:
    """Every scenario under ``root`` (or ``root`` itself): directories with a ``scenario.yaml`` and
    HolmesGPT fixtures (directories with a ``test_case.yaml``), sorted by path."""
    if not root.exists():
        raise ScenarioError(root, "(directory)", "not found")
    found: list[Scenario] = []
    for marker in sorted([*root.rglob(SCENARIO_FILE), *root.rglob(HOLMES_FILE)]):
        directory = marker.parent
        found.append(
            load_scenario(directory) if marker.name == SCENARIO_FILE else load_holmes_case(directory)
        )
    if not found:
        raise ScenarioError(root, "(directory)", f"holds no {SCENARIO_FILE} or {HOLMES_FILE}")
    _check_unique(found)
    return found


def _check_unique(scenarios: Sequence[Scenario]) -> None:
    """A name and a GitHub repository belong to one scenario each: a team claims its repository for
    routing (PagerDuty services get an id per scenario, so they cannot collide)."""
    seen: dict[str, Path] = {}
    for scenario in scenarios:
        keys = [f"name {scenario.name}"]
        if "github" in scenario.state:
            keys.append(f"repository {scenario.state['github']['repo']}")
        for key in keys:
            if key in seen:
                raise ScenarioError(
                    scenario.directory / SCENARIO_FILE, key.split()[0], f"{key} is also used by {seen[key]}"
                )
            seen[key] = scenario.directory
