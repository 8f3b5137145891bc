"""The warehouse toolset: read-only SQL over the team's SQLAlchemy URL, to measure business impact.

Every tool takes the run's ``Warehouse`` (from ``connect`` in ``warehouse_db``) and a pydantic params
model (``warehouse_params``). ``run_query`` first passes the statement through ``sql_guard`` (exactly
one SELECT, WITH, SHOW, DESCRIBE or EXPLAIN) and then runs it in a read-only, time-limited session that
is always rolled back; ``explain_query`` (``warehouse_explain``) shows a SELECT's plan the same way
without running it; ``list_tables`` and ``describe_table`` use SQLAlchemy's inspector inside the same
kind of session. Values come back JSON-safe (dates as ISO text, decimals as text, bytes as short hex)
and no message, error or invocation ever holds the URL's password.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from sqlalchemy.engine import Inspector
from sqlalchemy.exc import NoSuchTableError

from incidentfox.agents.toolsets.base import (
    Tool,
    ToolFunction,
    ToolResult,
    Toolset,
    ToolsetHealth,
    lookup_dotted,
)
from incidentfox.agents.toolsets.sql_guard import check_statement, sqlglot_dialect
from incidentfox.agents.toolsets.warehouse_db import Warehouse, connect
from incidentfox.agents.toolsets.warehouse_explain import explain_query
from incidentfox.agents.toolsets.warehouse_params import (
    DescribeTableParams,
    ExplainParams,
    ListTablesParams,
    QueryParams,
)
from incidentfox.agents.toolsets.warehouse_settings import (
    URL_SETTING,
    WarehouseFailure,
    WarehouseNotConfigured,
    WarehouseUnreachable,
    warehouse_settings,
)

P = TypeVar("P", bound=BaseModel)
BYTES_SHOWN = 32
HEALTH_TIMEOUT_S = 5.0
SYSTEM_SCHEMAS = frozenset(
    {"information_schema", "pg_catalog", "pg_toast", "mysql", "performance_schema", "sys"}
)


def json_value(value: Any) -> Any:
    """A cell as JSON: dates and times as ISO text, decimals as text (exact), bytes as short hex."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        shown = "0x" + raw[:BYTES_SHOWN].hex()
        return shown if len(raw) <= BYTES_SHOWN else f"{shown}… ({len(raw)} bytes)"
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def table_data(
    columns: list[str], rows: list[tuple[Any, ...]], truncated: bool, limit: int
) -> dict[str, Any]:
    count = len(rows)
    summary = f"{count} row{'s' if count != 1 else ''}"
    data: dict[str, Any] = {
        "summary": summary,
        "columns": columns,
        "rows": [[json_value(v) for v in row] for row in rows],
        "row_count": count,
        "truncated": truncated,
    }
    if truncated:
        data["summary"] = f"{summary}, stopped at the limit of {limit}; there are more"
        data["note"] = (
            f"Only the first {limit} rows are shown. Aggregate (COUNT … GROUP BY), filter on a time "
            "column or add ORDER BY … LIMIT to see what matters."
        )
    return data


async def run_query(warehouse: Warehouse, params: QueryParams) -> ToolResult:
    sql = params.sql.strip().rstrip(";").strip()
    verdict = check_statement(sql, sqlglot_dialect(warehouse.settings.backend))
    if not verdict.allowed:
        return ToolResult.failed(f"Refused: {verdict.reason}", invocation=sql)
    limit = min(params.limit or warehouse.settings.row_limit, warehouse.settings.row_limit)
    try:
        result = await warehouse.rows(sql, limit)
    except WarehouseFailure as exc:
        return ToolResult.failed(str(exc), invocation=sql)
    if not result.rows:
        columns = f" (columns: {', '.join(result.columns)})" if result.columns else ""
        return ToolResult.no_data(f"The query returned no rows{columns}.", invocation=sql)
    return ToolResult.ok(table_data(result.columns, result.rows, result.truncated, limit), invocation=sql)


def _not_listed(warehouse: Warehouse, schema: str | None) -> ToolResult | None:
    allowed = warehouse.settings.schemas
    if schema is None or not allowed or schema in allowed:
        return None
    return ToolResult.failed(
        f"Schema {schema} is not one this team shares with IncidentFox; the schemas are: "
        f"{', '.join(allowed)} (integrations.warehouse.schemas)."
    )


async def list_tables(warehouse: Warehouse, params: ListTablesParams) -> ToolResult:
    schema = params.schema_name
    refused = _not_listed(warehouse, schema)
    if refused:
        return refused
    wanted: list[str | None] = [schema] if schema else list(warehouse.settings.schemas) or [None]
    show_other_schemas = schema is None and not warehouse.settings.schemas
    invocation = "list tables and views" + (f" in schema {schema}" if schema else "")

    def look(inspector: Inspector) -> dict[str, Any]:
        listed = [
            {
                "schema": name or inspector.default_schema_name,
                "tables": sorted(inspector.get_table_names(name)),
                "views": sorted(inspector.get_view_names(name)),
            }
            for name in wanted
        ]
        data: dict[str, Any] = {"dialect": warehouse.settings.backend, "schemas": listed}
        if show_other_schemas:
            data["other_schemas"] = sorted(
                s
                for s in inspector.get_schema_names()
                if s.lower() not in SYSTEM_SCHEMAS and s != inspector.default_schema_name
            )
        return data

    try:
        data = await warehouse.inspect(look)
    except WarehouseFailure as exc:
        return ToolResult.failed(str(exc), invocation=invocation)
    total = sum(len(s["tables"]) + len(s["views"]) for s in data["schemas"])
    if total == 0:
        where = f"schema {schema}" if schema else "the default schema"
        return ToolResult.no_data(
            f"No tables or views in {where} visible to this user.", invocation=invocation
        )
    data["summary"] = f"{total} tables and views"
    return ToolResult.ok(data, invocation=invocation)


def _column(column: Mapping[str, Any], inspector: Inspector) -> dict[str, Any]:
    try:
        type_name = column["type"].compile(dialect=inspector.dialect)
    except Exception:
        type_name = str(column["type"])
    row: dict[str, Any] = {
        "name": column["name"],
        "type": type_name,
        "nullable": bool(column.get("nullable", True)),
        "default": None if column.get("default") is None else str(column["default"]),
    }
    if column.get("comment"):
        row["comment"] = column["comment"]
    return row


async def describe_table(warehouse: Warehouse, params: DescribeTableParams) -> ToolResult:
    table, schema = params.table, params.schema_name
    if schema is None and "." in table:
        schema, table = table.split(".", 1)
    refused = _not_listed(warehouse, schema)
    if refused:
        return refused
    qualified = f"{schema}.{table}" if schema else table
    invocation = f"describe table {qualified}"

    def look(inspector: Inspector) -> dict[str, Any]:
        columns = inspector.get_columns(table, schema)
        primary_key = inspector.get_pk_constraint(table, schema)
        indexes = inspector.get_indexes(table, schema)
        return {
            "table": qualified,
            "dialect": warehouse.settings.backend,
            "columns": [_column(c, inspector) for c in columns],
            "primary_key": list(primary_key.get("constrained_columns") or []),
            "indexes": [
                {
                    "name": i.get("name"),
                    "columns": list(i.get("column_names") or []),
                    "unique": bool(i.get("unique")),
                }
                for i in indexes
            ],
            "summary": f"{len(columns)} columns, {len(indexes)} indexes",
        }

    try:
        data = await warehouse.inspect(look)
    except WarehouseFailure as exc:
        if isinstance(exc.__cause__, NoSuchTableError):
            return ToolResult.failed(
                f"There is no table or view {qualified} that this user can see; list_tables shows what "
                "there is.",
                invocation=invocation,
            )
        return ToolResult.failed(str(exc), invocation=invocation)
    return ToolResult.ok(data, invocation=invocation)


async def health(config: Mapping[str, Any]) -> ToolsetHealth:
    """Connect and ``SELECT 1`` read-only within a few seconds."""
    if not lookup_dotted(config, URL_SETTING):
        return ToolsetHealth(configured=False, reason="no url is set")
    try:
        settings = warehouse_settings(config)
    except WarehouseNotConfigured as exc:
        return ToolsetHealth.failing(str(exc))
    try:
        warehouse = await connect(config)
    except (WarehouseNotConfigured, WarehouseUnreachable) as exc:
        return ToolsetHealth.failing(settings.mask(str(exc)))
    try:
        await warehouse.rows("SELECT 1", 1, timeout_s=HEALTH_TIMEOUT_S)
    except WarehouseFailure as exc:
        return ToolsetHealth.failing(str(exc))
    finally:
        await warehouse.close()
    return ToolsetHealth.ok()


def _tool(
    name: str, description: str, params: type[P], run: Callable[[Warehouse, P], Awaitable[ToolResult]]
) -> Tool:
    return Tool(name=name, description=description, params=params, run=cast(ToolFunction, run))


INSTRUCTIONS = """You query the team's data warehouse with read-only SQL, to measure an incident's
business impact: orders per minute dropping, payments failing, signups or checkouts stalling, a queue
of unprocessed jobs growing. Answer "how bad is it, since when, and is it recovering".
Learn the schema first with list_tables and describe_table (it also says which SQL dialect to write);
never guess table or column names. Keep every query narrow: filter on a timestamp column to the
incident window (for example the last two hours, compared with the same window a day or a week
earlier), aggregate per minute or per status (COUNT … GROUP BY) instead of reading raw rows, and always
add a LIMIT. Before a query that may be heavy on a production database (a large table, a join, no
indexed time filter), or when the question is why a query got slow, call explain_query: it shows the
plan without running the query, which tables it would read in full and how many rows each step expects;
rewrite the query to use an index before running it. One SELECT, WITH, SHOW, DESCRIBE or EXPLAIN per
call; anything that writes is refused and the session is read-only. A refused or failed query says why:
fix the query, do not resend the same text. Quote the numbers together with the query that produced
them."""

WAREHOUSE = Toolset(
    name="warehouse",
    description="The team's data warehouse or database (PostgreSQL, MySQL/MariaDB, Snowflake), read-only: "
    "run one SELECT to count orders, payments or errors over time, explain a query's plan, list tables, "
    "describe a table.",
    instructions=INSTRUCTIONS,
    connect=connect,
    health_check=health,
    prerequisites=(URL_SETTING,),
    tools=(
        _tool(
            "run_query",
            "Run one read-only SQL statement (SELECT, WITH … SELECT, SHOW, DESCRIBE, EXPLAIN) and get the "
            "columns and rows, up to a row limit; say a time filter and a LIMIT.",
            QueryParams,
            run_query,
        ),
        _tool(
            "list_tables",
            "The tables and views of a schema (or of the configured schemas), and which SQL dialect "
            "the warehouse speaks.",
            ListTablesParams,
            list_tables,
        ),
        _tool(
            "describe_table",
            "A table's columns (name, type, nullability, default), primary key and indexes.",
            DescribeTableParams,
            describe_table,
        ),
        _tool(
            "explain_query",
            "The plan of one SELECT without running it: the planner's steps, tables it would read in full, "
            "and estimated rows (and cost, in PostgreSQL).",
            ExplainParams,
            explain_query,
        ),
    ),
)
