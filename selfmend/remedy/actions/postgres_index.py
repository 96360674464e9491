"""pg_create_index: build the index a slow table lacks, with CREATE INDEX CONCURRENTLY.

Building an index on a live table takes time and disk and changes every plan that reads it, so
the risk is high: a person approves each one. The table and columns are checked against the
database's schema and quoted; at most three columns, one index per apply. CONCURRENTLY keeps
writes flowing while it builds, and a lock timeout keeps it from queueing behind a long
transaction. The build has a statement timeout of its own (``index_build_timeout_seconds``),
longer than the one every other statement has, set for it and reset after it. A build that
fails leaves an invalid index, which is dropped at once. An index whose leading columns are
these already counts as done. Undo drops the index it created, concurrently too.

Without ``table`` and ``columns`` the plan recommends the index (``postgres_index_advice``):
the columns the sessions' recent queries filter the most sequentially scanned table on. The
plan, with its evidence, is what the person approving reads.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import inspect, text

from selfmend.errors import ActionError, is_interruption
from selfmend.models import Risk
from selfmend.remedy.actions.postgres_analyze import TableParams, checked_table
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from selfmend.remedy.actions.postgres_index_advice import MIN_ROWS, advise
from selfmend.remedy.base import Plan, parse_params

LOCK_TIMEOUT = "5s"
_VALID = text("""
    SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relname = :name
""")


class IndexParams(TableParams):
    columns: list[str] = Field(min_length=1, max_length=3)


class IndexRequest(BaseModel):
    """What a pattern gives: a table and columns, or neither for a recommendation."""

    model_config = ConfigDict(extra="forbid")

    database: str | None = None
    table: str | None = None
    schema_name: str = Field("public", alias="schema")
    columns: list[str] | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> IndexRequest:
        if (self.table is None) != (self.columns is None):
            raise ValueError("give table and columns, or neither to have an index recommended")
        return self


def index_name(table: str, columns: list[str]) -> str:
    """``selfmend_<table>_<columns>_idx``, within PostgreSQL's 63 characters."""
    name = re.sub(r"[^a-z0-9_]", "_", f"selfmend_{table}_{'_'.join(columns)}".lower())
    return f"{name[:59]}_idx"


class PgCreateIndex:
    name = "pg_create_index"
    params_model = IndexRequest
    risk = Risk.HIGH
    reversible = True

    def __init__(self, databases: MonitoredDatabases, build_timeout_seconds: float = 600.0) -> None:
        self.databases = databases
        self.build_timeout_ms = max(1, round(build_timeout_seconds * 1000))

    def plan(self, params: dict[str, Any]) -> Plan:
        request = parse_params(IndexRequest, self.name, params)
        database = self.databases.name(self.name, request.database)
        with self.databases.engine(database).connect() as connection:
            advice = None if request.table else advise(connection)
            if request.table is None and advice is None:
                raise ActionError(
                    f"{self.name}: no index to recommend on {database}: no recent query "
                    f"filters a table of {MIN_ROWS}+ rows that sequential scans read"
                )
            chosen = request if advice is None else advice
            parsed = parse_params(
                IndexParams,
                self.name,
                {"database": database, "table": chosen.table, "schema": chosen.schema_name,
                 "columns": chosen.columns},
            )  # fmt: skip
            table = checked_table(connection, self.name, parsed)
            inspector = inspect(connection)
            known = {c["name"] for c in inspector.get_columns(parsed.table, parsed.schema_name)}
            missing = [column for column in parsed.columns if column not in known]
            if missing:
                raise ActionError(
                    f"{self.name}: params.columns: {table} has no column {missing[0]!r} "
                    f"(columns: {', '.join(sorted(known))})"
                )
            covering = [
                index["name"]
                for index in inspector.get_indexes(parsed.table, parsed.schema_name)
                if index["column_names"][: len(parsed.columns)] == parsed.columns
            ]
        name = covering[0] if covering else index_name(parsed.table, parsed.columns)
        summary = (
            f"{table} on {database} is already indexed on ({', '.join(parsed.columns)}) by {name}"
            if covering
            else f"CREATE INDEX CONCURRENTLY {name} ON {table} ({', '.join(parsed.columns)})"
        )
        evidence = {} if advice is None else {"advice": advice.evidence}
        return Plan(
            self.name,
            f"{database}:{table}",
            {**parsed.model_dump(by_alias=True), "database": database, "index": name, **evidence},
            {"drop": not covering},
            summary if advice is None else f"{summary}: {advice.describe()}",
        )

    def apply(self, plan: Plan) -> dict[str, Any]:
        parsed = parse_params(IndexParams, self.name, _params_of(plan))
        index = plan.params["index"]
        engine = self.databases.engine(plan.params["database"])
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            if self._valid(connection, parsed.schema_name, index) is True:
                return {"changed": False, "index": index}
            table = checked_table(connection, self.name, parsed)
            quote = connection.dialect.identifier_preparer.quote_identifier
            columns = ", ".join(quote(column) for column in parsed.columns)
            self._drop(connection, parsed.schema_name, index)  # an invalid one from a failed try
            connection.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
            connection.execute(text(f"SET statement_timeout = {self.build_timeout_ms}"))
            try:
                connection.execute(
                    text(f"CREATE INDEX CONCURRENTLY {quote(index)} ON {table} ({columns})")
                )
            except Exception as error:
                if is_interruption(error):  # the next try drops the invalid index first
                    raise
                self._drop(connection, parsed.schema_name, index)
                raise ActionError(f"{self.name}: building {index} failed: {error}") from error
            finally:  # the pooled connection goes back with the bounds every statement has
                connection.execute(text("RESET statement_timeout"))
                connection.execute(text("RESET lock_timeout"))
        return {"changed": True, "index": index}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        if not plan.undo.get("drop"):
            return {"changed": False, "index": plan.params["index"]}
        engine = self.databases.engine(plan.params["database"])
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            dropped = self._drop(connection, plan.params["schema"], plan.params["index"])
        return {"changed": dropped, "index": plan.params["index"]}

    def _valid(self, connection: Any, schema: str, index: str) -> bool | None:
        """True if the index exists and is valid, False if invalid, None if absent."""
        return connection.execute(_VALID, {"schema": schema, "name": index}).scalar()

    def _drop(self, connection: Any, schema: str, index: str) -> bool:
        if self._valid(connection, schema, index) is None:
            return False
        quote = connection.dialect.identifier_preparer.quote_identifier
        connection.execute(
            text(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(schema)}.{quote(index)}")
        )
        return True


def _params_of(plan: Plan) -> dict[str, Any]:
    return {key: plan.params[key] for key in ("database", "table", "schema", "columns")}
