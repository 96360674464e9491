"""The inspected shape of an application's table: the only source of identifiers the writer
ever puts in a statement, with a coercer per column."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Column, Engine, Integer, MetaData, Sequence, Table
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
        table = _with_key_sequence(Table(name, MetaData(), autoload_with=engine), engine)
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


# A PostgreSQL serial column's default as reflected: nextval('[schema.]sequence'::regclass).
_NEXTVAL = re.compile(r"nextval\('(.+)'::regclass\)")
_IDENTIFIER = re.compile(r'"(?:[^"]|"")+"|[^".]+')


def _with_key_sequence(table: Table, engine: Engine) -> Table:
    """The table again with its serial key drawing from its sequence as a ``Sequence``, not an
    opaque server default, on PostgreSQL.

    Healed rows are inserted with RETURNING of their key in the order sent. SQLAlchemy does
    that in one statement (``INSERT ... SELECT nextval(...) ... ORDER BY``) when it knows the
    key's sequence, but for a reflected ``nextval(...)`` default it falls back to one
    statement per row: a round trip each, most of a healed batch's time."""
    key = list(table.primary_key.columns)
    default = key[0].server_default if len(key) == 1 else None
    found = _NEXTVAL.fullmatch(str(getattr(default, "arg", "")))
    if engine.dialect.name != "postgresql" or found is None:
        return table
    parts = _IDENTIFIER.findall(found.group(1))
    if ".".join(parts) != found.group(1) or len(parts) > 2:
        return table  # a name this does not read: one statement per healed row, still correct
    *schema, sequence = [_unquoted(part) for part in parts]
    column = Column(
        key[0].name,
        key[0].type,
        Sequence(sequence, schema=schema[0] if schema else None),
        primary_key=True,
    )
    return Table(table.name, MetaData(), column, schema=table.schema, autoload_with=engine)


def _unquoted(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier


def _auto_increments(table: Table) -> bool:
    """A single integer primary key is filled by the database (serial, identity, SQLite rowid)."""
    columns = list(table.primary_key.columns)
    return (
        len(columns) == 1
        and isinstance(columns[0].type, Integer)
        and columns[0].autoincrement in (True, "auto")
    )
