"""A database's schema as data: tables, their columns (type, nullable, default) in the order the
database keeps them, and primary keys, with a canonical JSON form and its SHA-256.

The schema is read through SQLAlchemy 2.0's multi-table reflection (``get_multi_columns``,
``get_multi_pk_constraint``): a few catalogue queries for the whole schema on PostgreSQL, where
reflecting table by table costs several round trips per table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, inspect
from sqlalchemy.engine.interfaces import ReflectedColumn
from sqlalchemy.exc import CompileError
from sqlalchemy.types import TypeEngine


@dataclass(frozen=True)
class ColumnShape:
    name: str
    type: str  # as the database's dialect spells it in DDL: "VARCHAR(40)", "NUMERIC(10, 2)"
    nullable: bool
    default: str | None  # the server default as the database reports it

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "nullable": self.nullable,
            "default": self.default,
        }


@dataclass(frozen=True)
class TableShape:
    name: str
    columns: tuple[ColumnShape, ...]
    primary_key: tuple[str, ...]

    def column(self, name: str) -> ColumnShape | None:
        return next((column for column in self.columns if column.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "columns": [column.as_dict() for column in self.columns],
            "primary_key": list(self.primary_key),
        }


@dataclass(frozen=True)
class Fingerprint:
    """A schema and its digest; equal digests mean equal schemas."""

    tables: Mapping[str, TableShape]

    def canonical(self) -> dict[str, Any]:
        return {"tables": {name: self.tables[name].as_dict() for name in sorted(self.tables)}}

    def canonical_json(self) -> str:
        """Sorted keys, no whitespace: the same schema gives the same text on every run."""
        return json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    @classmethod
    def from_canonical(cls, canonical: Mapping[str, Any]) -> Fingerprint:
        """The fingerprint a stored version was made from (``canonical()`` read back)."""
        tables = {
            name: TableShape(
                name,
                tuple(ColumnShape(**column) for column in table["columns"]),
                tuple(table["primary_key"]),
            )
            for name, table in canonical["tables"].items()
        }
        return cls(tables)


def fingerprint(connection: Connection, schema: str | None = None) -> Fingerprint:
    """The tables of ``schema`` (the connection's default schema when None), views excluded."""
    inspector = inspect(connection)
    columns = inspector.get_multi_columns(schema=schema)
    primary_keys = inspector.get_multi_pk_constraint(schema=schema)
    dialect = connection.dialect
    tables = {}
    for key, reflected in columns.items():
        name = key[1]
        shapes = tuple(_column(column, dialect) for column in reflected)
        constrained = primary_keys.get(key, {}).get("constrained_columns") or []
        tables[name] = TableShape(name, shapes, tuple(constrained))
    return Fingerprint(tables)


def _column(column: ReflectedColumn, dialect: Any) -> ColumnShape:
    default = column.get("default")
    return ColumnShape(
        name=column["name"],
        type=_type_name(column["type"], dialect),
        nullable=bool(column["nullable"]),
        default=None if default is None else str(default),
    )


def _type_name(column_type: TypeEngine[Any], dialect: Any) -> str:
    try:
        return column_type.compile(dialect=dialect)
    except CompileError:
        # A type the dialect cannot spell back (SQLite reflects an unknown declared type as
        # NullType) is still compared, by its class name.
        return type(column_type).__name__
