"""Breaker storage in selfmend's store (SQLite by default, PostgreSQL): the embedded default,
shared by every process that uses the same store.

Each step is one transaction whose first statement writes, so SQLite takes its write lock
before reading (no stale read can be written over) and PostgreSQL checks the state in the
same statement that changes it: a transition is one conditional ``UPDATE`` on (state,
version); a record step begins with an ``UPDATE`` of the breaker's row that returns its state
and holds the row until the step commits, so calls join the window only while the breaker is
closed at the version they were admitted under.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, case, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import InterfaceError, OperationalError

from selfmend.resilience.breaker.storage import (
    Claim,
    Moved,
    Recorded,
    SharedSettings,
    Snapshot,
    State,
    Window,
)
from selfmend.store.tables import breaker_calls, breakers

_SNAPSHOT = (breakers.c.state, breakers.c.version, breakers.c.since, breakers.c.settings_version)


def unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the store could not be reached or did not answer in time: a
    connection refused or dropped, a statement or lock timeout, a SQLite file that cannot be
    opened or stays locked. Not a wrong statement: SQLite reports one (no such table, a syntax
    error) as an ``OperationalError`` too, with the generic code ``SQLITE_ERROR``."""
    if not isinstance(error, (OperationalError, InterfaceError)):
        return False
    code = getattr(error.orig, "sqlite_errorcode", None)  # extended codes: primary in low byte
    return code is None or code & 0xFF != sqlite3.SQLITE_ERROR


def _snapshot_of(row: Row[Any]) -> Snapshot:
    """The snapshot in a row that begins with the ``_SNAPSHOT`` columns."""
    return Snapshot(State(row[0]), row[1], row[2], row[3])


class StoreStorage:
    shared = True

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        self._known: set[str] = set()

    def _ensure(self, name: str) -> None:
        """Create the breaker's row once, closed at version 0, if no process did yet."""
        if name in self._known:
            return
        row = {
            "name": name,
            "state": str(State.CLOSED),
            "version": 0,
            "since": 0.0,
            "probes": 0,
            "successes": 0,
            "overrides": {},
            "settings_version": 0,
        }
        with self.engine.begin() as connection:
            connection.execute(self._insert(breakers).values(**row).on_conflict_do_nothing())
        self._known.add(name)

    @staticmethod
    def _snapshot(connection: Connection, name: str) -> Snapshot:
        return _snapshot_of(
            connection.execute(select(*_SNAPSHOT).where(breakers.c.name == name)).one()
        )

    def read(self, name: str) -> Snapshot:
        self._ensure(name)
        with self.engine.connect() as connection:
            return self._snapshot(connection, name)

    def record(
        self,
        name: str,
        version: int,
        process: str,
        window_size: int,
        *,
        successes: int = 0,
        failed: bool = False,
    ) -> Recorded:
        self._ensure(name)
        with self.engine.begin() as connection:
            snapshot, probe_successes = self._hold(connection, name, version, successes, failed)
            if snapshot.version != version or snapshot.state is not State.CLOSED:
                return Recorded(snapshot, probe_successes=probe_successes)
            rows = {"breaker": name, "version": version, "process": process}
            if successes:  # more than the window holds would only be deleted again
                connection.execute(
                    insert(breaker_calls), [{**rows, "failed": False}] * min(successes, window_size)
                )
            if failed:  # a statement of its own, so its id comes after the successes'
                connection.execute(insert(breaker_calls).values(**rows, failed=True))
            window = self._window(connection, name, version, window_size)
            return Recorded(snapshot, window=window)

    @staticmethod
    def _hold(
        connection: Connection, name: str, version: int, successes: int, failed: bool
    ) -> tuple[Snapshot, int | None]:
        """The step's first statement: an ``UPDATE`` of the breaker's row, which holds it (a
        row lock on PostgreSQL, the write lock on SQLite) until the step commits, so no move
        comes between reading the state and counting the calls. It counts half-open probe
        successes admitted under ``version`` and returns the state, and the probe successes
        when it counted them."""
        probe = and_(breakers.c.version == version, breakers.c.state == str(State.HALF_OPEN))
        added = 0 if failed else successes  # a failed probe is not counted: it reopens
        row = connection.execute(
            update(breakers)
            .where(breakers.c.name == name)
            .values(successes=breakers.c.successes + case((probe, added), else_=0))
            .returning(*_SNAPSHOT, breakers.c.successes)
        ).one()
        snapshot = _snapshot_of(row)
        counted = snapshot.state is State.HALF_OPEN and snapshot.version == version and not failed
        return snapshot, row.successes if counted else None

    @staticmethod
    def _window(connection: Connection, name: str, version: int, size: int) -> Window:
        latest = (
            select(breaker_calls.c.id, breaker_calls.c.failed, breaker_calls.c.process)
            .where(breaker_calls.c.breaker == name, breaker_calls.c.version == version)
            .order_by(breaker_calls.c.id.desc())
            .limit(size)
            .subquery()
        )
        oldest_kept = select(func.min(latest.c.id)).scalar_subquery()
        connection.execute(
            breaker_calls.delete().where(
                breaker_calls.c.breaker == name,
                (breaker_calls.c.version != version) | (breaker_calls.c.id < oldest_kept),
            )
        )
        calls, failures, processes = connection.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((latest.c.failed, 1), else_=0)), 0),
                func.count(func.distinct(case((latest.c.failed, latest.c.process)))),
            )
        ).one()
        return Window(calls, failures, processes)

    def move(self, name: str, state: State, version: int, to: State, now: float) -> Moved:
        self._ensure(name)
        with self.engine.begin() as connection:
            won = (
                connection.execute(
                    update(breakers)
                    .where(
                        breakers.c.name == name,
                        breakers.c.state == str(state),
                        breakers.c.version == version,
                    )
                    .values(
                        state=str(to),
                        version=breakers.c.version + 1,
                        since=now,
                        probes=0,
                        successes=0,
                    )
                ).rowcount
                == 1
            )
            if won:
                connection.execute(breaker_calls.delete().where(breaker_calls.c.breaker == name))
            return Moved(won, self._snapshot(connection, name))

    def claim_probe(self, name: str, version: int, probes: int) -> Claim:
        self._ensure(name)
        with self.engine.begin() as connection:
            granted = connection.execute(
                update(breakers)
                .where(
                    and_(
                        breakers.c.name == name,
                        breakers.c.version == version,
                        breakers.c.state == str(State.HALF_OPEN),
                        breakers.c.probes < probes,
                    )
                )
                .values(probes=breakers.c.probes + 1)
            ).rowcount
            return Claim(granted == 1, self._snapshot(connection, name))

    def publish_settings(self, name: str, base: dict[str, Any]) -> None:
        self._ensure(name)
        with self.engine.begin() as connection:
            connection.execute(
                update(breakers).where(breakers.c.name == name).values(base_settings=base)
            )

    def settings(self, name: str) -> SharedSettings:
        self._ensure(name)
        with self.engine.connect() as connection:
            base, overrides, version = connection.execute(
                select(
                    breakers.c.base_settings, breakers.c.overrides, breakers.c.settings_version
                ).where(breakers.c.name == name)
            ).one()
        return SharedSettings(base, overrides, version)

    def set_overrides(self, name: str, overrides: dict[str, Any]) -> SharedSettings:
        self._ensure(name)
        with self.engine.begin() as connection:
            connection.execute(
                update(breakers)
                .where(breakers.c.name == name)
                .values(overrides=overrides, settings_version=breakers.c.settings_version + 1)
            )
        return self.settings(name)
