"""Which index a slow database lacks: the columns its queries filter a table on, weighed by how
often they run, for the tables that sequential scans read the most rows of.

The queries and their counts come from ``postgres_workload`` (pg_stat_statements, else
pg_stat_activity sampled over a couple of seconds); they are parsed with sqlglot, never run: the
advice reads statistics and text only. A column counts when a query's WHERE compares it with a
value or a parameter (``=``, ``IN``, ``<``, ``BETWEEN``…), not with another column, and weighs
as many times as the query ran; columns compared for equality lead, then one range column, as a
B-tree serves them best. Every name comes from the inspected schema, so advice can only name a
real table and real columns. A query that filters on a column some index (the primary key and
unique constraints included) already leads with is served, and does not count: a lookup by id
beside a search by an unindexed column must not make the advice an index on (id, sku), which
the search cannot use.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlglot
import structlog
from sqlalchemy import Connection, inspect, text
from sqlglot import exp

from selfmend.remedy.actions.postgres_workload import read_workload

log = structlog.get_logger(__name__)

MIN_ROWS = 10_000  # smaller tables are read whole cheaply; an index would not pay
TABLES_TRIED = 5
MAX_COLUMNS = 3
_EQUALITY = (exp.EQ, exp.In, exp.Is)
_RANGE = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)

_SCANNED = text("""
    SELECT schemaname, relname, seq_scan, seq_tup_read, coalesce(idx_scan, 0), n_live_tup
    FROM pg_stat_user_tables WHERE n_live_tup >= :min_rows AND seq_tup_read > 0
    ORDER BY seq_tup_read DESC LIMIT :limit
""")


@dataclass(frozen=True)
class IndexAdvice:
    schema_name: str
    table: str
    columns: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        e = self.evidence
        return (
            f"queries run {e['executions']} times ({e['queries']} distinct; {e['source']}) "
            f"filter {self.table} on {', '.join(self.columns)}; {e['seq_scans']} sequential "
            f"scans read {e['seq_rows_read']} rows of its {e['rows']}"
        )


def advise(connection: Connection) -> IndexAdvice | None:
    """The index most worth building now, or None when no query of the workload shows one."""
    workload = read_workload(connection)
    parsed = [(_parse(query), runs) for query, runs in workload.executions.items()]
    trees = [(tree, runs) for tree, runs in parsed if tree is not None]
    inspector = inspect(connection)
    # Read after the workload: a sampled query's scans are then more likely counted.
    scanned = connection.execute(_SCANNED, {"min_rows": MIN_ROWS, "limit": TABLES_TRIED})
    for schema, table, seq_scans, seq_rows, index_scans, rows in scanned:
        columns = {c["name"] for c in inspector.get_columns(table, schema)}
        filtered = [
            (found, runs)
            for tree, runs in trees
            if (found := filtered_columns(tree, table, columns))
        ]
        chosen = index_columns(filtered, _leading_columns(inspector, table, schema))
        if chosen is None:
            continue
        return IndexAdvice(
            schema,
            table,
            chosen.columns,
            {"queries": len(chosen.queries), "executions": sum(runs for _, runs in chosen.queries),
             "source": workload.describe(), "seq_scans": seq_scans, "seq_rows_read": seq_rows,
             "index_scans": index_scans, "rows": rows},
        )  # fmt: skip
    return None


def _parse(sql: str) -> exp.Expression | None:
    try:
        return sqlglot.parse_one(sql, read="postgres")
    except sqlglot.errors.SqlglotError:  # cut at track_activity_query_size, or not SQL we know
        log.debug("index_advice.unparsed", query=sql[:200])
        return None


def filtered_columns(tree: exp.Expression, table: str, columns: set[str]) -> dict[str, str]:
    """Column of ``table`` → ``"equality"`` or ``"range"``, for each WHERE predicate of the
    query that compares the column with something other than a column."""
    found: dict[str, str] = {}
    for select in tree.find_all(exp.Select):
        aliases = {t.alias_or_name: t.name for t in select.find_all(exp.Table)}
        where = select.args.get("where")
        if table not in aliases.values() or where is None:
            continue
        only_table = set(aliases.values()) == {table}
        for predicate in where.find_all(*_EQUALITY, *_RANGE):
            column = _compared_column(predicate)
            if column is None or column.name not in columns:
                continue
            owner = aliases.get(column.table) if column.table else (table if only_table else None)
            if owner == table:
                kind = "equality" if isinstance(predicate, _EQUALITY) else "range"
                if found.get(column.name) != "equality":
                    found[column.name] = kind
    return found


def _compared_column(predicate: exp.Expression) -> exp.Column | None:
    """The column a predicate compares with a value: ``col = $1``, ``$1 = col``, ``col IN (…)``."""
    sides = [predicate.this, predicate.args.get("expression")]
    columns = [side for side in sides if isinstance(side, exp.Column)]
    return columns[0] if len(columns) == 1 else None


def _leading_columns(inspector: Any, table: str, schema: str) -> set[str]:
    """The first column of each index, the primary key's and unique constraints' included."""
    keys = [inspector.get_pk_constraint(table, schema).get("constrained_columns") or []]
    keys += [i["column_names"] for i in inspector.get_indexes(table, schema)]
    keys += [u["column_names"] for u in inspector.get_unique_constraints(table, schema)]
    return {columns[0] for columns in keys if columns}


Filters = dict[str, str]  # column → "equality" or "range", as filtered_columns finds them


@dataclass(frozen=True)
class Chosen:
    columns: list[str]
    queries: list[tuple[Filters, int]]  # the unserved queries' filters, each with its runs


def index_columns(filtered: list[tuple[Filters, int]], leading: set[str]) -> Chosen | None:
    """The columns for the queries no index serves (none of their filter columns leads an
    index), or None when every query is served. Each query is ``(filters, runs)``."""
    unserved = [(found, runs) for found, runs in filtered if not leading.intersection(found)]
    if not unserved:
        return None
    return Chosen(_index_columns(unserved), unserved)


def _index_columns(filtered: list[tuple[Filters, int]]) -> list[str]:
    """Equality columns by how many runs filter on them, then the most run range column."""
    equality, ranges = Counter(), Counter()
    for found, runs in filtered:
        for column, kind in found.items():
            (equality if kind == "equality" else ranges)[column] += runs
    chosen = [column for column, _ in equality.most_common(MAX_COLUMNS)]
    if len(chosen) < MAX_COLUMNS and ranges:
        chosen.append(ranges.most_common(1)[0][0])
    return chosen
