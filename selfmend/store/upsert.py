"""INSERT … ON CONFLICT as statements SQLAlchemy caches.

SQLAlchemy 2.0 gives its dialects' ``on_conflict_do_nothing`` / ``on_conflict_do_update`` no
cache key, so each execution compiles the statement anew: about a fifth of a remediation's CPU
went there. These are text statements with typed bind parameters (JSON columns still go through
their type), written once per table from its columns. SQLite (3.35 and later) and PostgreSQL
share the syntax.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Table, TextClause, bindparam, text


def _insert(table: Table, conflict: Sequence[str]) -> tuple[str, list[str]]:
    columns = [c.name for c in table.columns if not (c.name == "id" and c.primary_key)]
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join(':' + c for c in columns)}) ON CONFLICT ({', '.join(conflict)})"
    )
    return sql, columns


def _typed(sql: str, table: Table, columns: list[str]) -> TextClause:
    return text(sql).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))


def insert_or_ignore(table: Table, conflict: Sequence[str], returning: str) -> TextClause:
    """Insert a row of every column but a serial ``id``; ``returning`` of the new row, or no
    row when one with the same ``conflict`` columns exists."""
    sql, columns = _insert(table, conflict)
    return _typed(f"{sql} DO NOTHING RETURNING {returning}", table, columns)


def insert_or_update(
    table: Table, conflict: Sequence[str], updates: Mapping[str, str]
) -> TextClause:
    """Insert a row, or update the existing one: ``updates`` maps a column to its new value in
    SQL over ``old`` (the row there, named by the table) and ``excluded`` (the row given)."""
    sql, columns = _insert(table, conflict)
    assignments = ", ".join(
        f"{column} = {expression.replace('old.', table.name + '.')}"
        for column, expression in updates.items()
    )
    return _typed(f"{sql} DO UPDATE SET {assignments}", table, columns)


def replacing(columns: Sequence[str]) -> dict[str, str]:
    """``updates`` that overwrite ``columns`` with the given row's values."""
    return {column: f"excluded.{column}" for column in columns}
