"""Breaker storage in selfmend's store (SQLite by default, PostgreSQL): the embedded default,
shared by every process that uses the same store.

Each step is one transaction whose first statement writes, so SQLite takes its write lock
before reading (no stale read can be written over) and PostgreSQL checks the state in the
same statement that changes it: a transition is one conditional ``UPDATE`` on (state,
version), a call joins the window through an ``INSERT … SELECT`` that holds only while the
breaker is closed at the version the call was admitted under.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, and_, case, exists, func, insert, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

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
        state, version, since, settings_version = connection.execute(
            select(*_SNAPSHOT).where(breakers.c.name == name)
        ).one()
        return Snapshot(State(state), version, since, settings_version)

    def read(self, name: str) -> Snapshot:
        self._ensure(name)
        with self.engine.connect() as connection:
            return self._snapshot(connection, name)

    def record(
        self, name: str, version: int, failed: bool, process: str, window_size: int
    ) -> Recorded:
        self._ensure(name)
        with self.engine.begin() as connection:
            if self._join_window(connection, name, version, failed, process):
                window = self._window(connection, name, version, window_size)
                return Recorded(self._snapshot(connection, name), window=window)
            successes = None if failed else self._probe_succeeded(connection, name, version)
            return Recorded(self._snapshot(connection, name), probe_successes=successes)

    def _join_window(
        self, connection: Connection, name: str, version: int, failed: bool, process: str
    ) -> bool:
        closed_at_version = exists().where(
            breakers.c.name == name,
            breakers.c.version == version,
            breakers.c.state == str(State.CLOSED),
        )
        values = select(literal(name), literal(version), literal(failed), literal(process))
        statement = (
            insert(breaker_calls)
            .from_select(
                ["breaker", "version", "failed", "process"], values.where(closed_at_version)
            )
            .returning(breaker_calls.c.id)
        )
        return connection.execute(statement).first() is not None

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

    @staticmethod
    def _probe_succeeded(connection: Connection, name: str, version: int) -> int | None:
        counted = connection.execute(
            update(breakers)
            .where(
                breakers.c.name == name,
                breakers.c.version == version,
                breakers.c.state == str(State.HALF_OPEN),
            )
            .values(successes=breakers.c.successes + 1)
            .returning(breakers.c.successes)
        ).scalar_one_or_none()
        return counted

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
