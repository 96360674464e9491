"""pg_create_index: build the index a slow table lacks, with CREATE INDEX CONCURRENTLY.

Risk depends on the table's size. CONCURRENTLY blocks neither reads nor writes, and DROP INDEX
CONCURRENTLY undoes it, so, as automatic tuning does in production databases (Azure SQL's
creates indexes, checks that the workload improved and reverts the ones that did not), a build
on a table whose heap is at most ``approve_above_mb`` (1024 MB unless the pattern says) is
medium risk: applied in auto mode, verified by the incident's series (the rows sequential scans
read), and rolled back, this index dropped and no other, when they did not fall. What stays at
stake is the build's time and disk: it reads the heap twice and sorts the keys, and the index
takes disk of its own. Up to 1 GiB that is at most a minute or so of reading on current disks,
inside ``index_build_timeout_seconds`` (600 s), and an index of three columns at most is a
fraction of the heap; above it the plan is high risk and a person approves, knowing the disk and
the hour. An index also costs every write a little and may change other queries' plans, which
the verdict does not watch; the planner uses an index only where it estimates it cheaper, and
the rollback is one statement away.

The table and columns are checked against the database's schema and quoted; at most three
columns, one index per apply. A lock timeout keeps the build from queueing behind a long
transaction, and it has a statement timeout of its own (``index_build_timeout_seconds``),
longer than the one every other statement has, set for it and reset after it. A build that
fails leaves an invalid index, which is dropped at once. An index whose leading columns are
these already counts as done; an index of another's with the name this one would take is
refused, so that rollback can only ever drop what this action built.

Without ``table`` and ``columns`` the plan recommends the index (``postgres_index_advice``):
the columns the workload's queries filter the most sequentially scanned table on, weighed by
how often they run. The plan, with its evidence, is what a person approving reads.
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
APPROVE_ABOVE_MB = 1024.0  # a bigger heap's build takes time and disk a person should agree to
_HEAP_BYTES = text("""
    SELECT pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relname = :table
""")
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
    approve_above_mb: float = Field(
        APPROVE_ABOVE_MB, gt=0, description="A table whose heap is bigger waits for a person."
    )

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
    risk = Risk.MEDIUM  # HIGH in the plan of a table above approve_above_mb
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
                    f"{self.name}: no index to recommend on {database}: no query of the "
                    f"workload filters a table of {MIN_ROWS}+ rows that sequential scans read"
                )
            chosen = request if advice is None else advice
            parsed = parse_params(
                IndexParams,
                self.name,
                {"database": database, "table": chosen.table, "schema": chosen.schema_name,
                 "columns": chosen.columns},
            )  # fmt: skip
            table = checked_table(connection, self.name, parsed)
            covering = self._covering(connection, table, parsed)
            name = covering or self._free_name(connection, table, parsed)
            heap_mb = self._heap_mb(connection, parsed)
        if covering:
            summary = f"{table} on {database} is already indexed on ({', '.join(parsed.columns)}) "
            summary += f"by {name}"
        else:
            summary = f"CREATE INDEX CONCURRENTLY {name} ON {table} ({', '.join(parsed.columns)})"
        big = heap_mb > request.approve_above_mb and not covering
        if big:
            summary += (
                f" ({heap_mb:.0f} MB, above the {request.approve_above_mb:g} MB built unasked)"
            )
        evidence = {} if advice is None else {"advice": advice.evidence}
        return Plan(
            self.name,
            f"{database}:{table}",
            {**parsed.model_dump(by_alias=True), "database": database, "index": name,
             "heap_mb": round(heap_mb, 1), **evidence},
            {"drop": not covering},
            summary if advice is None else f"{summary}: {advice.describe()}",
            Risk.HIGH if big else None,
        )  # fmt: skip

    def _covering(self, connection: Any, table: str, parsed: IndexParams) -> str | None:
        """The name of a valid index that leads with the columns, once they are known columns
        (an invalid one, left by an interrupted build, serves no query: apply replaces it)."""
        inspector = inspect(connection)
        known = {c["name"] for c in inspector.get_columns(parsed.table, parsed.schema_name)}
        missing = [column for column in parsed.columns if column not in known]
        if missing:
            raise ActionError(
                f"{self.name}: params.columns: {table} has no column {missing[0]!r} "
                f"(columns: {', '.join(sorted(known))})"
            )
        for index in inspector.get_indexes(parsed.table, parsed.schema_name):
            if index["column_names"][: len(parsed.columns)] == parsed.columns and (
                self._valid(connection, parsed.schema_name, index["name"]) is True
            ):
                return index["name"]
        return None

    def _free_name(self, connection: Any, table: str, parsed: IndexParams) -> str:
        """This index's name, refused when a valid index on other columns has it: rollback
        drops the index by name, and must never drop one this action did not build."""
        name = index_name(parsed.table, parsed.columns)
        if self._valid(connection, parsed.schema_name, name) is True:
            raise ActionError(
                f"{self.name}: an index named {name} already exists in schema "
                f"{parsed.schema_name!r}, not on {table} ({', '.join(parsed.columns)}); "
                "rename it to have this one built"
            )
        return name

    def _heap_mb(self, connection: Any, parsed: IndexParams) -> float:
        """What the build reads twice: the table's main fork, without its indexes or TOAST."""
        size = connection.execute(
            _HEAP_BYTES, {"schema": parsed.schema_name, "table": parsed.table}
        ).scalar()
        return (size or 0) / 2**20

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
