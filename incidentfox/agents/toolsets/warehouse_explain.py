"""``explain_query`` of the warehouse toolset: the planner's plan for one SELECT, without running it.

Before an expensive query on a production database (or to see why a dashboard's query got slow), the
model asks for the plan: which tables are read in full, which indexes are used and how many rows each
step expects. The SELECT passes ``sql_guard`` first, then ``EXPLAIN`` + the SELECT passes it again
(never ANALYZE, which would run it), and the plan is read in the same read-only, time-limited session as
every other statement.
"""

from __future__ import annotations

import math
import re
from typing import Any

from incidentfox.agents.toolsets.base import ToolResult
from incidentfox.agents.toolsets.sql_guard import check_statement, sqlglot_dialect
from incidentfox.agents.toolsets.warehouse_db import Rows, Warehouse
from incidentfox.agents.toolsets.warehouse_params import ExplainParams
from incidentfox.agents.toolsets.warehouse_settings import WarehouseFailure

MAX_PLAN_ROWS = 200
_PG_STEP = re.compile(r"cost=(?P<start>[\d.]+)\.\.(?P<total>[\d.]+) rows=(?P<rows>\d+)")
_PG_FULL_SCAN = re.compile(r"(?:Parallel )?Seq Scan on (?P<table>\S+)")
NOT_RUN = "A plan from the planner's statistics; the query itself was not run."


def _pg_plan(result: Rows) -> dict[str, Any]:
    """PostgreSQL's text plan: its lines, the top step's total cost, the largest step and full scans."""
    lines = [str(row[0]) for row in result.rows]
    steps = [m for m in (_PG_STEP.search(line) for line in lines) if m]
    data: dict[str, Any] = {"plan": lines}
    if steps:
        data["estimated_cost"] = float(steps[0]["total"])
        data["largest_step_rows"] = max(int(m["rows"]) for m in steps)
    data["full_scans"] = sorted({m["table"] for m in (_PG_FULL_SCAN.search(x) for x in lines) if m})
    return data


def _tabular_plan(result: Rows) -> dict[str, Any]:
    """MySQL/MariaDB (and Snowflake) answer EXPLAIN with one row per step: kept as mappings. A step of
    type ``ALL`` reads its whole table; the product of the steps' rows bounds the rows a join examines."""
    steps = [
        {c: v for c, v in zip(result.columns, row, strict=False) if v is not None} for row in result.rows
    ]
    data: dict[str, Any] = {"plan": steps}
    counts = [int(s["rows"]) for s in steps if str(s.get("rows", "")).isdigit()]
    if counts:
        data["rows_examined_estimate"] = math.prod(counts)
    data["full_scans"] = sorted({str(s.get("table")) for s in steps if str(s.get("type")).upper() == "ALL"})
    return data


async def explain_query(warehouse: Warehouse, params: ExplainParams) -> ToolResult:
    sql = params.sql.strip().rstrip(";").strip()
    dialect = sqlglot_dialect(warehouse.settings.backend)
    verdict = check_statement(sql, dialect)
    if not verdict.allowed:
        return ToolResult.failed(f"Refused: {verdict.reason}", invocation=sql)
    if verdict.kind != "SELECT":
        return ToolResult.failed(
            f"explain_query explains one SELECT; this is {verdict.kind}: give the SELECT itself (run_query "
            "runs SHOW and DESCRIBE).",
            invocation=sql,
        )
    explain = f"EXPLAIN {sql}"
    again = check_statement(explain, dialect)
    if not again.allowed:
        return ToolResult.failed(f"Refused: {again.reason}", invocation=explain)
    try:
        result = await warehouse.rows(explain, MAX_PLAN_ROWS)
    except WarehouseFailure as exc:
        return ToolResult.failed(str(exc), invocation=explain)
    if not result.rows:
        return ToolResult.no_data("The warehouse returned no plan for this query.", invocation=explain)
    postgres = warehouse.settings.backend == "postgresql"
    data = _pg_plan(result) if postgres else _tabular_plan(result)
    scans = data["full_scans"]
    data = {
        "dialect": warehouse.settings.backend,
        "summary": f"{len(result.rows)} plan {'lines' if postgres else 'steps'}; "
        + (f"reads all of {', '.join(scans)}" if scans else "no full table scan"),
        **data,
        "note": NOT_RUN,
    }
    if result.truncated:
        data["note"] += f" Only the first {MAX_PLAN_ROWS} plan rows are shown."
    return ToolResult.ok(data, invocation=explain)
