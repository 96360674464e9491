"""The inspected shape of an application's table: the only source of identifiers the writer
ever puts in a statement, with a coercer per column."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, Integer, MetaData, Table
from sqlalchemy.exc import NoSuchTableError

from selfmend.errors import ConfigurationError, NotFound
from selfmend.resilience.writer.coerce import Coercer, coercer_for


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    coerce: Coercer
    required: bool  # NOT NULL with no default of any kind: an insert must give it


@dataclass(frozen=True)
class TableSchema:
    name: str
    table: Table
    columns: dict[str, ColumnSpec]
    primary_key: tuple[str, ...]

    @property
    def required(self) -> frozenset[str]:
        return frozenset(name for name, spec in self.columns.items() if spec.required)


def inspect_table(engine: Engine, name: str) -> TableSchema:
    """Reflect ``name`` from the database as it is now; a table without a primary key is
    refused, because a healed row must be found again to be rolled back."""
    try:
        table = Table(name, MetaData(), autoload_with=engine)
    except NoSuchTableError:
        raise NotFound(f"table {name!r} does not exist in {engine.url.database!r}") from None
    primary_key = tuple(column.name for column in table.primary_key.columns)
    if not primary_key:
        raise ConfigurationError(
            f"table {name!r} has no primary key; the resilient writer needs one to log and "
            "roll back healed rows"
        )
    for column in table.primary_key.columns:
        # SQLite reflects INTEGER PRIMARY KEY as nullable; a key is never null, and saying so
        # lets RETURNING of many healed rows come back in the order they were sent.
        column.nullable = False
    auto = primary_key[0] if _auto_increments(table) else None
    columns = {
        column.name: ColumnSpec(
            name=column.name,
            coerce=coercer_for(column.type, column.nullable or column.name == auto),
            required=not column.nullable
            and column.server_default is None
            and column.default is None
            and column.name != auto,
        )
        for column in table.columns
    }
    return TableSchema(name, table, columns, primary_key)


def _auto_increments(table: Table) -> bool:
    """A single integer primary key is filled by the database (serial, identity, SQLite rowid)."""
    columns = list(table.primary_key.columns)
    return (
        len(columns) == 1
        and isinstance(columns[0].type, Integer)
        and columns[0].autoincrement in (True, "auto")
    )
