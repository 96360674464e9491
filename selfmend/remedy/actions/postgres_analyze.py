"""pg_analyze: refresh a table's planner statistics with ANALYZE, when rows changed since.

Bad plans after a bulk load or a delete come from statistics that no longer describe the table.
The table is checked against the database's own schema (SQLAlchemy's inspector) and quoted, so
a parameter can only ever name a table that exists. ANALYZE reads a sample and blocks neither
reads nor writes; the statistics it replaces are not kept, so it is not reversible, and low risk.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, inspect, text

from selfmend.errors import ActionError
from selfmend.models import Risk
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from selfmend.remedy.base import Plan, parse_params

_CHANGED = text("""
    SELECT n_mod_since_analyze FROM pg_stat_user_tables
    WHERE schemaname = :schema AND relname = :table
""")


class TableParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    database: str | None = Field(None, description="A monitored database; its only one if unset.")
    table: str = Field(min_length=1, max_length=63)
    schema_name: str = Field("public", alias="schema", min_length=1, max_length=63)


def checked_table(connection: Connection, action: str, params: TableParams) -> str:
    """``schema.table`` quoted, once the inspector has found the table; else the error names
    the tables there are."""
    inspector = inspect(connection)
    if not inspector.has_table(params.table, schema=params.schema_name):
        known = ", ".join(sorted(inspector.get_table_names(schema=params.schema_name))) or "none"
        raise ActionError(
            f"{action}: params.table: no table {params.table!r} in schema "
            f"{params.schema_name!r} (tables: {known})"
        )
    quote = connection.dialect.identifier_preparer.quote_identifier
    return f"{quote(params.schema_name)}.{quote(params.table)}"


class PgAnalyze:
    name = "pg_analyze"
    params_model = TableParams
    risk = Risk.LOW
    reversible = False

    def __init__(self, databases: MonitoredDatabases) -> None:
        self.databases = databases

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(TableParams, self.name, params)
        database = self.databases.name(self.name, parsed.database)
        with self.databases.engine(database).connect() as connection:
            table = checked_table(connection, self.name, parsed)
            changed = self._changed(connection, parsed)
        return Plan(
            self.name,
            f"{database}:{table}",
            {"database": database, "table": parsed.table, "schema": parsed.schema_name},
            {},
            f"ANALYZE {table} on {database} ({changed} rows changed since its statistics)",
        )

    def _changed(self, connection: Connection, params: TableParams) -> int:
        """Rows inserted, updated or deleted since the table's statistics were taken."""
        changed = connection.execute(
            _CHANGED, {"schema": params.schema_name, "table": params.table}
        ).scalar()
        return int(changed or 0)

    def apply(self, plan: Plan) -> dict[str, Any]:
        parsed = parse_params(TableParams, self.name, plan.params)
        with self.databases.engine(plan.params["database"]).connect() as connection:
            table = checked_table(connection, self.name, parsed)
            changed = self._changed(connection, parsed)
            if changed == 0:  # statistics are current: nothing to do
                return {"changed": False, "rows_changed": 0}
            connection.execute(text(f"ANALYZE {table}"))
            connection.commit()
        return {"changed": True, "rows_changed": changed}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        return {"changed": False, "reversible": False}
