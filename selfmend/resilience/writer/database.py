"""The writer's statements against the application's database, and what their failures mean.

Rows are written in one transaction: clean rows with one COPY per set of columns on
PostgreSQL (when every column's type is one psycopg writes as SQLAlchemy would; else one
executemany, without RETURNING), healed rows with RETURNING of the primary key for their log
entries. If the database refuses the batch (a constraint), the rows are written again
one savepoint each, so the bad ones are found and the good ones kept. The log entries go to
selfmend's store before the application's transaction commits; if the commit's outcome is lost
with the connection, PostgreSQL is asked whether the transaction committed
(``pg_xact_status``), so a retry never writes a row twice.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import (
    Boolean,
    Connection,
    Date,
    DateTime,
    Engine,
    Enum,
    Float,
    Integer,
    Numeric,
    String,
    Time,
    Transaction,
    and_,
    text,
)
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from selfmend.resilience.writer.columns import TableSchema
from selfmend.resilience.writer.results import Heal, RowError

log = structlog.get_logger(__name__)

UNDEFINED_COLUMN = "42703"
STATUS_POLLS = 20
_COPYABLE = (Integer, Float, Numeric, Boolean, String, DateTime, Date, Time)
COPY_FROM = 50  # rows of one shape from which COPY beats an executemany's round trips


class ConnectionLost(Exception):
    """The connection dropped before the transaction committed: safe to write again."""


class OutcomeUnknown(Exception):
    """The connection dropped at commit and the database could not say whether it committed."""


class LogUnavailable(Exception):
    """selfmend's store did not take the log entries: the rows are not written without them."""


class SchemaRaced(Exception):
    """The database has no column the cached schema has: re-inspect and try once more."""


@dataclass(slots=True)
class Prepared:
    """A validated row: its index in the batch, what was sent and the columns to write."""

    index: int
    sent: dict[str, Any]
    values: dict[str, Any]
    heals: tuple[Heal, ...]
    key: dict[str, Any] | None = field(default=None)
    before: dict[str, Any] | None = field(default=None)  # an update's old values


def raise_if_retryable(error: DBAPIError) -> None:
    """A dropped connection or a column that is gone is the writer's to handle, not the row's."""
    if error.connection_invalidated:
        raise ConnectionLost(str(error.orig)) from error
    message = str(error.orig)
    if getattr(error.orig, "sqlstate", None) == UNDEFINED_COLUMN or "no column named" in message:
        raise SchemaRaced(message) from error


def row_error(index: int, error: DBAPIError) -> RowError:
    """The database's reason, naming the column when the driver reports it."""
    diagnostics = getattr(error.orig, "diag", None)
    column = getattr(diagnostics, "column_name", None)
    reason = getattr(diagnostics, "message_primary", None) or str(error.orig).splitlines()[0]
    return RowError(index, column, reason, "database")


class TableStatements:
    """Writes for one inspected table; ``log`` stores the log entries of healed rows."""

    def __init__(
        self,
        engine: Engine,
        schema: TableSchema,
        log_entries: Callable[[list[Prepared], str], list[int]],
        forget_entries: Callable[[list[int]], None],
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.log_entries = log_entries
        self.forget_entries = forget_entries
        table = schema.table
        self._insert = table.insert()
        self._insert_returning = table.insert().returning(
            *table.primary_key.columns, sort_by_parameter_order=True
        )
        # Values of these types are already what the column takes (the coercers made them
        # so) and psycopg adapts them as executemany would; JSON, enums, arrays and type
        # decorators are left to SQLAlchemy's own processing.
        self._copyable = engine.dialect.name == "postgresql" and all(
            isinstance(column.type, _COPYABLE) and not isinstance(column.type, Enum)
            for column in table.columns
        )

    def insert(self, rows: list[Prepared]) -> tuple[list[Prepared], list[RowError], list[int]]:
        """Written rows (healed ones with their key), refused rows, and the log entries."""
        with self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                self._insert_rows(connection, rows)
                written, refused = rows, []
            except DBAPIError as error:
                raise_if_retryable(error)
                transaction.rollback()
                transaction = connection.begin()
                written, refused = self._insert_each(connection, rows)
            entries = self._commit(connection, transaction, written, "insert")
        return written, refused, entries

    def _insert_rows(self, connection: Connection, rows: list[Prepared]) -> None:
        shapes: dict[tuple[tuple[str, ...], bool], list[Prepared]] = defaultdict(list)
        for row in rows:
            shapes[(tuple(row.values), bool(row.heals))].append(row)
        for (columns, healed), group in shapes.items():
            values = [row.values for row in group]
            if not healed and self._copyable and len(group) >= COPY_FROM:
                self._copy(connection, columns, values)
                continue
            if not healed:
                connection.execute(self._insert, values)
                continue
            keys = connection.execute(self._insert_returning, values)
            for row, key in zip(group, keys, strict=True):
                row.key = dict(key._mapping)

    def _copy(
        self, connection: Connection, columns: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> None:
        """COPY the rows in: one stream rather than a statement per row. A refused COPY is a
        ``DBAPIError`` like a refused insert, so the batch goes row by row to find the bad."""
        quote = connection.dialect.identifier_preparer.quote
        sql = f"COPY {quote(self.schema.name)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
        raw = connection.connection.driver_connection
        try:
            with raw.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row([row[column] for column in columns])
        except raw.Error as error:
            if raw.broken or raw.closed:
                connection.invalidate(error)
                raise ConnectionLost(str(error)) from error
            raise DBAPIError(sql, None, error) from error

    def _insert_each(
        self, connection: Connection, rows: list[Prepared]
    ) -> tuple[list[Prepared], list[RowError]]:
        written, refused = [], []
        for row in rows:
            try:
                with connection.begin_nested():
                    self._insert_rows(connection, [row])
                written.append(row)
            except DBAPIError as error:
                raise_if_retryable(error)
                refused.append(row_error(row.index, error))
        return written, refused

    def update(self, key: dict[str, Any], row: Prepared) -> tuple[bool, list[int]]:
        """Whether a row had ``key``; a healed update logs the written columns' old values."""
        table = self.schema.table
        where = and_(*(table.c[name] == value for name, value in key.items()))
        with self.engine.connect() as connection:
            transaction = connection.begin()
            try:
                if row.heals:
                    columns = [table.c[name] for name in row.values]
                    query = table.select().with_only_columns(*columns).where(where)
                    before = connection.execute(query.with_for_update()).first()
                    row.before = None if before is None else dict(before._mapping)
                found = connection.execute(table.update().where(where).values(row.values))
            except DBAPIError as error:
                raise_if_retryable(error)
                raise
            if found.rowcount == 0:
                transaction.rollback()
                return False, []
            row.key = key
            return True, self._commit(connection, transaction, [row], "update")

    def restore(self, key: dict[str, Any], values: dict[str, Any] | None) -> bool:
        """Undo a logged write: delete the inserted row, or put the old values back."""
        table = self.schema.table
        where = and_(*(table.c[name] == value for name, value in key.items()))
        statement = table.delete() if values is None else table.update().values(values)
        with self.engine.begin() as connection:
            return connection.execute(statement.where(where)).rowcount == 1

    def _commit(
        self, connection: Connection, transaction: Transaction, rows: list[Prepared], op: str
    ) -> list[int]:
        healed = [row for row in rows if row.heals]
        postgres = connection.dialect.name == "postgresql"
        xid = connection.scalar(text("SELECT pg_current_xact_id()::text")) if postgres else None
        entries = self.log_entries(healed, op) if healed else []
        try:
            transaction.commit()
        except DBAPIError as error:
            if not error.connection_invalidated:
                self.forget_entries(entries)
                raise
            if not self._committed(xid):
                self.forget_entries(entries)
                raise ConnectionLost(str(error.orig)) from error
        return entries

    def _committed(self, xid: str | None) -> bool:
        """Whether the transaction whose commit went unanswered committed after all."""
        if xid is None:
            raise OutcomeUnknown("the connection dropped at commit")
        status = None
        for _ in range(STATUS_POLLS):  # a terminated backend takes a moment to abort
            try:
                with self.engine.connect() as connection:
                    status = connection.scalar(
                        text("SELECT pg_xact_status(CAST(:xid AS xid8))"), {"xid": xid}
                    )
            except SQLAlchemyError as error:
                raise OutcomeUnknown(f"could not ask whether it committed: {error}") from error
            if status in ("committed", "aborted"):
                log.warning("writer.commit_unanswered", xid=xid, status=status)
                return status == "committed"
            time.sleep(0.1)
        raise OutcomeUnknown(f"transaction {xid} is still {status}")
