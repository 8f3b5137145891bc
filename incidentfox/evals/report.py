"""The pass-rate table per category and mode, and the JSON report."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from incidentfox.evals.scoring import CaseResult


def _rate(passed: int, scored: int) -> str:
    return f"{passed}/{scored} ({100 * passed / scored:.0f}%)" if scored else "-"


def tally(results: Sequence[CaseResult]) -> dict[str, dict[str, dict[str, int]]]:
    """``{mode: {category: {"passed", "failed", "unscored"}}}``, with an ``all`` category."""
    table: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: defaultdict(lambda: {"passed": 0, "failed": 0, "unscored": 0})
    )
    for result in results:
        key = {"pass": "passed", "fail": "failed", "unscored": "unscored"}[result.score.status]
        for category in (result.scenario.category, "all"):
            table[result.mode][category][key] += 1
    return {mode: dict(categories) for mode, categories in table.items()}


def pass_rate_table(results: Sequence[CaseResult]) -> str:
    """A plain-text table: one row per category, one column per mode (passed/scored and %)."""
    counts = tally(results)
    modes = sorted(counts, key=lambda m: (m != "no-llm", m))
    categories = [*sorted({c for m in counts.values() for c in m if c != "all"}), "all"]
    header = ["category", "scenarios", *modes]
    rows = [header]
    for category in categories:
        total = max(sum(counts[m].get(category, {}).values()) for m in modes)
        cells = [category, str(total)]
        for mode in modes:
            c = counts[mode].get(category, {"passed": 0, "failed": 0, "unscored": 0})
            cell = _rate(c["passed"], c["passed"] + c["failed"])
            if c["unscored"]:
                cell += f" +{c['unscored']} unscored"
            cells.append(cell)
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def failures(results: Sequence[CaseResult]) -> str:
    """One line per failed scenario: the first check that failed, or the judge's reason."""
    lines = []
    for r in results:
        if r.score.status != "fail":
            continue
        failed = r.score.failed
        why = f"{failed[0].name}" + (f" ({failed[0].detail})" if failed[0].detail else "") if failed else ""
        if not why and r.score.judge is not None:
            why = f"judge: {r.score.judge.reason}"
        lines.append(f"  FAIL [{r.mode}] {r.scenario.name}: {why}")
    return "\n".join(lines)


def json_report(results: Sequence[CaseResult], *, duration_s: float) -> dict[str, Any]:
    return {
        "duration_s": round(duration_s, 1),
        "summary": tally(results),
        "results": [r.to_dict() for r in results],
    }
