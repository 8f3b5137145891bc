"""The parameters of the warehouse toolset's tools, as the model fills them in (strict JSON schemas:
every field is present, optional ones as null)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from incidentfox.agents.toolsets.warehouse_settings import MAX_ROW_LIMIT

SQL_MAX = 20_000


def _checked_sql(text: str) -> str:
    """Lengths are checked here, not in the JSON schema: strict tool schemas reject length keywords."""
    text = text.strip()
    if not text:
        raise ValueError("the SQL is empty")
    if len(text) > SQL_MAX:
        raise ValueError(f"keep the SQL under {SQL_MAX} characters")
    return text


def _checked_name(text: str) -> str:
    text = text.strip()
    if not text or len(text) > 128 or any(ord(c) < 32 for c in text):
        raise ValueError("a table or schema name is 1 to 128 printable characters")
    return text


SqlText = Annotated[str, AfterValidator(_checked_sql)]
Name = Annotated[str, AfterValidator(_checked_name)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class QueryParams(_Params):
    sql: SqlText = Field(
        description="One read-only statement: SELECT, WITH … SELECT, SHOW, DESCRIBE or EXPLAIN, in the "
        "warehouse's SQL dialect. Filter on a time column and add a LIMIT."
    )
    limit: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ROW_LIMIT,
        description="At most this many rows back; null for the team's row limit (which also caps it).",
    )


class ListTablesParams(_Params):
    schema_name: Name | None = Field(
        default=None,
        alias="schema",
        description="Schema (database, in MySQL) to list; null for the configured schemas or the default.",
    )


class DescribeTableParams(_Params):
    table: Name = Field(description="Table or view name, e.g. orders (or schema.orders).")
    schema_name: Name | None = Field(
        default=None, alias="schema", description="Its schema; null for the default schema."
    )


class ExplainParams(_Params):
    sql: SqlText = Field(
        description="One SELECT (or WITH … SELECT) to explain without running it, in the warehouse's SQL "
        "dialect."
    )
