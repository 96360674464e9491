"""The resilient writer: rows an application sends, checked against the table as it is now,
healed and coerced, written with bound parameters only, each healed row logged for rollback.

    writer = client.writer("postgresql://shop@db/shop")
    result = writer.insert_many("orders", [{"customerName": "Ada", "qty": "2"}, ...])
    for error in result.errors:  # the others are written
        print(error)  # row 3 'qty': 'two' (str) is not an integer

Identifiers in statements come only from the inspected schema, values only as bound
parameters; an input key or a model answer is only ever compared with inspected names.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import structlog
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from selfmend.errors import InvalidInput, NotFound, WriteRejected
from selfmend.resilience.schema.databases import database_name
from selfmend.resilience.schema.watch import version_control
from selfmend.resilience.writer import metrics
from selfmend.resilience.writer.columns import TableSchema, inspect_table
from selfmend.resilience.writer.database import (
    ConnectionLost,
    LogUnavailable,
    OutcomeUnknown,
    Prepared,
    SchemaRaced,
    TableStatements,
    row_error,
)
from selfmend.resilience.writer.healing import Healer, RowProblem
from selfmend.resilience.writer.model import ModelNamer
from selfmend.resilience.writer.names import Synonyms
from selfmend.resilience.writer.results import BatchResult, Heal, RowError, RowWritten, in_order
from selfmend.resilience.writer.watch import ChangeWatch
from selfmend.store import Store
from selfmend.store.engine import DatabaseTimeouts, normalize_url
from selfmend.store.heals import RuleBook

log = structlog.get_logger(__name__)
T = TypeVar("T")


class _Failed(Exception):
    """Every row still pending in the write gets this error."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class TableState:
    schema: TableSchema
    healer: Healer
    statements: TableStatements


class ResilientWriter:
    """Writes to one application database; safe to share between threads.

    ``retries`` is how often a write whose connection dropped before it committed is tried
    again; a column the database says is gone makes the writer re-inspect once and retry.
    Given a URL, the writer's engine connects and runs each statement within ``timeouts``.
    """

    def __init__(
        self,
        engine: Engine | str,
        store: Store,
        *,
        model: ModelNamer | None = None,
        synonyms: Iterable[Iterable[str]] = (),
        retries: int = 2,
        watch_interval: float = 1.0,
        timeouts: DatabaseTimeouts | None = None,
    ) -> None:
        if isinstance(engine, str):
            url = normalize_url(engine)
            bounds = (timeouts or DatabaseTimeouts()).connect_args(url)
            engine = create_engine(url, pool_pre_ping=True, connect_args=bounds)
        self.engine = engine
        self.database = database_name(engine.url.render_as_string(hide_password=False))
        self.store = store
        self.model = model
        self.synonyms = Synonyms(synonyms)
        self.retries = retries
        self._tables: dict[str, TableState] = {}
        self._rules: RuleBook | None = None
        self._lock = threading.Lock()
        self._watch = ChangeWatch(self._versions, watch_interval)

    # -- writes -------------------------------------------------------------------------------

    def insert(self, table: str, row: dict[str, Any]) -> RowWritten:
        """Write one row or raise ``WriteRejected`` naming the field and why."""
        result = self.insert_many(table, [row])
        if result.errors:
            raise result.errors[0].exception()
        return result.written[0]

    def insert_many(self, table: str, rows: Iterable[dict[str, Any]]) -> BatchResult:
        """Write every row that can be written; each of the others has its error."""
        rows = list(rows)
        try:
            result = self._retrying(table, partial(self._insert, rows=rows))
        except _Failed as failure:
            result = self._fail_pending(table, rows, failure)
        metrics.count(table, result)
        return result

    def update(self, table: str, key: dict[str, Any], values: dict[str, Any]) -> RowWritten:
        """Set ``values`` on the row whose primary key is ``key`` (the key's names exact)."""
        try:
            written = self._retrying(table, partial(self._update, key=key, values=values))
        except _Failed as failure:
            raise WriteRejected(failure.reason, field=None, kind=failure.kind) from None
        except RowProblem as problem:
            metrics.count(
                table, in_order([RowError(0, problem.field, problem.reason, problem.kind)])
            )
            raise WriteRejected(
                f"{problem.field}: {problem.reason}", field=problem.field, kind=problem.kind
            ) from None
        metrics.count(table, in_order([written]))
        return written

    def _insert(self, state: TableState, rows: list[dict[str, Any]]) -> BatchResult:
        prepared, refused = self._prepare(state, rows)
        written, rejected, entries = state.statements.insert(prepared)
        return in_order(_with_entries(written, entries), refused, rejected)

    def _prepare(
        self, state: TableState, rows: list[dict[str, Any]]
    ) -> tuple[list[Prepared], list[RowError]]:
        plan_for = state.healer.plan
        prepared, refused = [], []
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                refused.append(
                    RowError(index, None, "is not a mapping of keys to values", "invalid")
                )
                continue
            plan = plan_for(tuple(row), complete=True)
            try:
                prepared.append(Prepared(index, row, plan.apply(row), plan.heals))
            except RowProblem as problem:
                refused.append(RowError(index, problem.field, problem.reason, problem.kind))
        return prepared, refused

    def _update(self, state: TableState, key: dict[str, Any], values: dict[str, Any]) -> RowWritten:
        if not values:
            raise RowProblem(None, "nothing to update", "invalid")
        typed_key = _typed(state.schema, key, what="key")
        if set(typed_key) != set(state.schema.primary_key):
            raise RowProblem(
                None,
                f"the key must name the primary key {list(state.schema.primary_key)}",
                "invalid",
            )
        plan = state.healer.plan(tuple(values), complete=False)
        row = Prepared(0, values, plan.apply(values), plan.heals)
        try:
            found, entries = state.statements.update(typed_key, row)
        except DBAPIError as error:
            problem = row_error(0, error)
            raise RowProblem(problem.field, problem.reason, problem.kind) from None
        if not found:
            raise RowProblem(None, f"no row of {state.schema.name!r} has key {key}", "not_found")
        return RowWritten(0, row.heals, typed_key, entries[0] if entries else None)

    def _retrying(self, table: str, write: Callable[[TableState], T]) -> T:
        """Run ``write`` on the table as it is now; again after a dropped connection, and once
        more after the database said a column is gone (a rename raced the cache)."""
        raced, lost = False, 0
        while True:
            if self._watch.changed():
                self.invalidate()
            try:
                return write(self._state(table))
            except SchemaRaced as error:
                if raced:
                    raise _Failed(
                        "schema_changed", f"the table changed during the write: {error}"
                    ) from None
                raced = True
                log.info("writer.schema_raced", table=table, error=str(error))
                self.invalidate()
            except (ConnectionLost, OperationalError) as error:
                lost += 1
                log.warning("writer.connection_lost", table=table, attempt=lost, error=str(error))
                if lost > self.retries:
                    raise _Failed(
                        "connection_lost", f"the connection dropped {lost} times: {error}"
                    ) from None
            except OutcomeUnknown as error:
                raise _Failed(
                    "outcome_unknown", f"whether the write committed is unknown: {error}"
                ) from None
            except LogUnavailable as error:
                raise _Failed(
                    "log_unavailable", f"the heal log could not be written: {error}"
                ) from None

    def _fail_pending(
        self, table: str, rows: list[dict[str, Any]], failure: _Failed
    ) -> BatchResult:
        """Rows refused on their own merits keep their reason; the others get the failure."""
        state = self._tables.get(table)
        prepared, refused = self._prepare(state, rows) if state else ([], [])
        pending = [row.index for row in prepared] if state else range(len(rows))
        failed = [RowError(index, None, failure.reason, failure.kind) for index in pending]
        return in_order(refused, failed)

    # -- the log: rollback and rejected heals ----------------------------------------------

    def rollback(self, entry_id: int, actor: str = "person") -> None:
        """Undo a healed write: delete the inserted row, or restore an update's old values."""
        entry = self.store.heals.entry(entry_id)
        if entry.database != self.database:
            raise InvalidInput(
                f"log entry {entry_id} is for {entry.database!r}, not {self.database!r}"
            )
        if entry.state != "written":
            raise InvalidInput(
                f"log entry {entry_id} is {entry.state}; only a written row rolls back"
            )
        state = self._state(entry.table_name)
        key = _typed(state.schema, entry.row_key, what="key")
        before = None if entry.operation == "insert" else _typed(state.schema, entry.before or {})
        if not self.store.heals.set_state(entry_id, "rolled_back", "written", actor):
            raise InvalidInput(f"log entry {entry_id} was rolled back by someone else")
        try:
            restored = state.statements.restore(key, before)
        except Exception:
            self.store.heals.set_state(entry_id, "written", "rolled_back", actor)
            raise
        if not restored:
            self.store.heals.set_state(entry_id, "written", "rolled_back", actor)
            raise NotFound(f"row {key} of {entry.table_name!r} is gone; nothing to roll back")
        log.info("writer.rolled_back", entry_id=entry_id, table=entry.table_name, actor=actor)

    def reject_heal(
        self, entry_id: int, *, key: str | None = None, actor: str = "person", reason: str = ""
    ) -> list[Heal]:
        """Never heal these keys onto these columns again (all of the entry's heals, or the one
        for ``key``); the row itself stays until it is rolled back."""
        entry = self.store.heals.entry(entry_id)
        heals = [
            Heal(name, heal["column"], heal["rule"])
            for name, heal in entry.heals.items()
            if key is None or name == key
        ]
        if not heals:
            raise NotFound(f"log entry {entry_id} healed no key {key!r}")
        for heal in heals:
            self.store.heals.reject(
                entry.database, entry.table_name, heal.key, heal.column, actor, reason
            )
        self.invalidate()
        return heals

    def learn_rule(self, table: str, key: str, column: str, actor: str = "person") -> None:
        """Heal ``key`` onto ``column`` of ``table`` from now on, without asking the model."""
        if column not in self._state(table).schema.columns:
            raise InvalidInput(f"{table!r} has no column {column!r}")
        self.store.heals.learn(self.database, table, key, column, actor)
        self.invalidate()

    # -- caches -------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget the inspected tables, the rules and the plans; the next write re-reads them."""
        with self._lock:
            self._tables = {}
            self._rules = None

    def _versions(self) -> object:
        schema = self.store.controls.get(version_control(self.database))
        return schema, self.store.heals.stamp(self.database)

    def _state(self, table: str) -> TableState:
        state = self._tables.get(table)
        if state is not None:
            return state
        with self._lock:
            state = self._tables.get(table)
            if state is None:
                state = self._tables[table] = self._build(table)
        return state

    def _build(self, table: str) -> TableState:
        schema = inspect_table(self.engine, table)
        if self._rules is None:
            self._rules = self.store.heals.rules(self.database)
        learned, rejected = self._rules.for_table(table)
        healer = Healer(
            schema,
            learned=learned,
            rejected=rejected,
            synonyms=self.synonyms,
            model=self.model,
            on_model_answer=partial(self.store.heals.count_model_answer, self.database, table),
        )
        statements = TableStatements(
            self.engine, schema, partial(self._log, table), self.store.heals.mark_not_written
        )
        return TableState(schema, healer, statements)

    def _log(self, table: str, rows: list[Prepared], operation: str) -> list[int]:
        entries = [
            {
                "database": self.database,
                "table_name": table,
                "operation": operation,
                "sent": _jsonable(row.sent),
                "written": _jsonable(row.values),
                "heals": {
                    heal.key: {"column": heal.column, "rule": heal.rule} for heal in row.heals
                },
                "row_key": _jsonable(row.key),
                "before": _jsonable(row.before),
            }
            for row in rows
        ]
        try:
            return self.store.heals.log(entries)
        except SQLAlchemyError as error:
            raise LogUnavailable(str(error)) from error

    def close(self) -> None:
        self.engine.dispose()
        if self.model is not None:
            self.model.close()


def _with_entries(written: list[Prepared], entries: list[int]) -> list[RowWritten]:
    """Log entry ids come in the order of the healed rows among ``written``."""
    ids = iter(entries)
    return [
        RowWritten(row.index, row.heals, row.key, next(ids) if row.heals else None)
        for row in written
    ]


def _typed(schema: TableSchema, values: dict[str, Any], what: str = "value") -> dict[str, Any]:
    """Logged (JSON) or given values back as the columns' types, by exact column name."""
    typed = {}
    for name, value in values.items():
        column = schema.columns.get(name)
        if column is None:
            message = f"{what} {name!r} names no column of {schema.name!r}"
            raise WriteRejected(message, field=name, kind="unknown_column")
        try:
            typed[name] = column.coerce(value)
        except ValueError as error:
            raise WriteRejected(f"{name}: {error}", field=name, kind="coercion") from None
    return typed


def _jsonable(value: Any) -> Any:
    return None if value is None else json.loads(json.dumps(value, default=str))
