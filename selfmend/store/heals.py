"""The resilient writer's rules and transaction log, kept in selfmend's store.

Rules map an input key to a column of one table in one database: learned ones heal without the
model, rejected ones are never used again, and the model's answers are counted so the weekly
optimizer can turn the ones it keeps giving into learned rules. The log holds one entry per
healed row, written before the application's transaction commits, so every healed write can be
found and rolled back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from selfmend.errors import NotFound
from selfmend.store import pg_bulk
from selfmend.store.tables import write_heal_rules, write_heals

MAPPING = ["database", "table_name", "source_key", "column_name"]


@dataclass(frozen=True)
class HealRule:
    database: str
    table_name: str
    source_key: str
    column_name: str
    model_seen: int


@dataclass(frozen=True)
class RuleBook:
    """One database's rules as the healer reads them: (table, key) → column, and rejections."""

    learned: dict[tuple[str, str], str] = field(default_factory=dict)
    rejected: frozenset[tuple[str, str, str]] = frozenset()

    def for_table(self, table: str) -> tuple[dict[str, str], frozenset[tuple[str, str]]]:
        learned = {key: column for (name, key), column in self.learned.items() if name == table}
        rejected = frozenset((key, column) for name, key, column in self.rejected if name == table)
        return learned, rejected


@dataclass(frozen=True)
class HealEntry:
    id: int
    database: str
    table_name: str
    operation: str
    sent: dict[str, Any]
    written: dict[str, Any]
    heals: dict[str, dict[str, str]]
    row_key: dict[str, Any]
    before: dict[str, Any] | None
    state: str
    created_at: float
    rolled_back_at: float | None
    rolled_back_by: str | None


_LOGGED = ("database", "table_name", "operation", "sent", "written", "heals", "row_key", "before")
_LOG_FROM_ARRAYS = (
    "INSERT INTO write_heals (database, table_name, operation, sent, written, heals, row_key, "
    "before, state, created_at) "
    "SELECT database, table_name, operation, sent::json, written::json, heals::json, "
    "row_key::json, before::json, 'written', %b "
    "FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], "
    "%b::text[], %b::text[]) WITH ORDINALITY "
    "AS entry(database, table_name, operation, sent, written, heals, row_key, before, position) "
    "ORDER BY position RETURNING id"
)


class HealStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # -- the transaction log ------------------------------------------------------------------

    def log(self, entries: list[dict[str, Any]]) -> list[int]:
        """Store entries (database, table_name, operation, sent, written, heals, row_key,
        before) as written, in one transaction; their ids in the same order."""
        now = time.time()
        if self.engine.dialect.name == "postgresql":
            return self._log_as_arrays(entries, now)
        rows = [{**entry, "state": "written", "created_at": now} for entry in entries]
        statement = insert(write_heals).returning(write_heals.c.id, sort_by_parameter_order=True)
        with self.engine.begin() as connection:
            return list(connection.scalars(statement, rows))

    def _log_as_arrays(self, entries: list[dict[str, Any]], now: float) -> list[int]:
        """A writer logs a healed batch's rows in one go, on PostgreSQL as one array per column
        (``pg_bulk``): as bound rows, a hundred entries were a statement of a thousand
        parameters that psycopg parsed anew each time (its cache skips long queries), half a
        healed batch's time. Ids are drawn in the entries' order (``ORDER BY position``), so
        sorted they are the entries' ids in order."""
        columns = [[entry[name] for entry in entries] for name in _LOGGED[:3]] + [
            [None if entry[name] is None else json.dumps(entry[name]) for entry in entries]
            for name in _LOGGED[3:]
        ]
        with self.engine.begin() as connection:
            ids = pg_bulk.returning(connection, _LOG_FROM_ARRAYS, [now, *columns])
        return sorted(ids)

    def mark_not_written(self, ids: list[int]) -> None:
        """The application's transaction these entries belong to was rolled back."""
        if not ids:
            return
        with self.engine.begin() as connection:
            connection.execute(
                update(write_heals).where(write_heals.c.id.in_(ids)).values(state="not_written")
            )

    def entry(self, entry_id: int) -> HealEntry:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(write_heals).where(write_heals.c.id == entry_id)
            ).first()
        if row is None:
            raise NotFound(f"no write heal log entry {entry_id}")
        return HealEntry(**row._mapping)

    def entries(self, database: str, table: str) -> list[HealEntry]:
        query = (
            select(write_heals)
            .where(write_heals.c.database == database, write_heals.c.table_name == table)
            .order_by(write_heals.c.id)
        )
        with self.engine.connect() as connection:
            return [HealEntry(**row._mapping) for row in connection.execute(query)]

    def set_state(self, entry_id: int, state: str, expected: str, actor: str) -> bool:
        """Move an entry from ``expected`` to ``state``; False if it was not in ``expected``
        (two people rolling back one write: only one does it)."""
        values: dict[str, Any] = {"state": state}
        if state == "rolled_back":
            values |= {"rolled_back_at": time.time(), "rolled_back_by": actor}
        statement = (
            update(write_heals)
            .where(write_heals.c.id == entry_id, write_heals.c.state == expected)
            .values(**values)
        )
        with self.engine.begin() as connection:
            return connection.execute(statement).rowcount == 1

    # -- rules --------------------------------------------------------------------------------

    def rules(self, database: str) -> RuleBook:
        query = select(
            write_heal_rules.c.table_name,
            write_heal_rules.c.source_key,
            write_heal_rules.c.column_name,
            write_heal_rules.c.learned,
            write_heal_rules.c.rejected_at,
        ).where(write_heal_rules.c.database == database)
        learned: dict[tuple[str, str], str] = {}
        rejected: set[tuple[str, str, str]] = set()
        with self.engine.connect() as connection:
            for table, key, column, is_learned, rejected_at in connection.execute(query):
                if rejected_at is not None:
                    rejected.add((table, key, column))
                elif is_learned:
                    learned[(table, key)] = column
        return RuleBook(learned, frozenset(rejected))

    def stamp(self, database: str) -> tuple[float | None, int]:
        """Changes whenever a rule of ``database`` does: writers reload their rules on it."""
        query = select(func.max(write_heal_rules.c.updated_at), func.count()).where(
            write_heal_rules.c.database == database
        )
        with self.engine.connect() as connection:
            latest, count = connection.execute(query).one()
        return latest, count

    def learn(self, database: str, table: str, key: str, column: str, actor: str) -> None:
        """A deterministic rule, from a person or from promotion; lifts an earlier rejection."""
        self._upsert(
            database,
            table,
            key,
            column,
            learned=True,
            learned_by=actor,
            rejected_at=None,
            rejected_by=None,
            reason=None,
        )

    def reject(
        self, database: str, table: str, key: str, column: str, actor: str, reason: str
    ) -> None:
        self._upsert(
            database,
            table,
            key,
            column,
            learned=False,
            rejected_at=time.time(),
            rejected_by=actor,
            reason=reason,
        )

    def count_model_answer(self, database: str, table: str, key: str, column: str) -> None:
        self._upsert(database, table, key, column, model_seen=write_heal_rules.c.model_seen + 1)

    def promote(self, min_seen: int, actor: str) -> list[HealRule]:
        """Learn every model answer given at least ``min_seen`` times and never rejected."""
        statement = (
            update(write_heal_rules)
            .where(
                write_heal_rules.c.model_seen >= min_seen,
                write_heal_rules.c.rejected_at.is_(None),
                write_heal_rules.c.learned.is_(False),
            )
            .values(learned=True, learned_by=actor, updated_at=time.time())
            .returning(
                *(write_heal_rules.c[name] for name in MAPPING), write_heal_rules.c.model_seen
            )
        )
        with self.engine.begin() as connection:
            return [HealRule(*row) for row in connection.execute(statement)]

    def _upsert(self, database: str, table: str, key: str, column: str, **changes: Any) -> None:
        mapping = dict(zip(MAPPING, (database, table, key, column), strict=True))
        now = time.time()
        initial = {"learned": False, "model_seen": 0, **changes, **mapping, "updated_at": now}
        if "model_seen" in changes:  # an increment: a new row starts at one answer
            initial["model_seen"] = 1
        statement = (
            self._insert(write_heal_rules)
            .values(**initial)
            .on_conflict_do_update(index_elements=MAPPING, set_={**changes, "updated_at": now})
        )
        with self.engine.begin() as connection:
            connection.execute(statement)
