"""Incidents: opened once per (pattern, target) while open, advanced by compare-and-set.

The incident row is the state machine. Each stage reads it and moves it on only from the status
it expects, so two workers (or a redelivered message) cannot both advance the same incident.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, Update, bindparam, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from selfmend.errors import NotFound
from selfmend.models import ExecutionState, IncidentStatus, Severity
from selfmend.store.engine import reads
from selfmend.store.tables import executions, incidents


@dataclass(frozen=True)
class Incident:
    id: int
    pattern: str
    target: str
    severity: Severity
    status: IncidentStatus
    series_key: str | None
    root_cause: str | None
    evidence: dict[str, Any]
    reopen_count: int
    opened_at: float
    updated_at: float
    closed_at: float | None

    @classmethod
    def from_row(cls, row: Any) -> Incident:
        values = dict(row._mapping)
        values.pop("open_key")
        values["severity"] = Severity(values["severity"])
        values["status"] = IncidentStatus(values["status"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "severity": str(self.severity), "status": str(self.status)}


# Built once: the remediate and verify stages run these for every incident, and building a
# statement and its cache key costs more than SQLite takes to run it.
_BY_ID = select(incidents).where(incidents.c.id == bindparam("id"))


def statuses(expected: Iterable[IncidentStatus]) -> tuple[str, ...]:
    """``expected`` as ``move_statement``'s cache key: one order for one set."""
    return tuple(sorted(str(status) for status in expected))


@cache
def move_statement(expected: tuple[str, ...], closing: bool) -> Update:
    """The compare-and-set from one set of statuses, built once per set. The statuses are
    equalities, not an expanding IN, which SQLAlchemy renders anew at every execution: 20 µs of
    a 60 µs update on SQLite."""
    statement = (
        update(incidents)
        .where(
            incidents.c.id == bindparam("incident_id"),
            or_(*(incidents.c.status == status for status in expected)),
        )
        .values(status=bindparam("to"), updated_at=bindparam("now"))
    )
    return statement.values(open_key=None, closed_at=bindparam("now")) if closing else statement


class IncidentStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)

    def open(
        self,
        *,
        pattern: str,
        target: str,
        severity: Severity,
        series_key: str | None,
        root_cause: str,
        evidence: dict[str, Any],
        reopens_since: float = 0.0,
    ) -> tuple[Incident, bool]:
        """Open an incident, or return the one still open for (pattern, target).

        A new incident's ``reopen_count`` is how many incidents of the same (pattern, target)
        closed after ``reopens_since``: the remediate stage calls it flapping from a bound.
        Returns ``(incident, created)``.
        """
        now = time.time()
        open_key = f"{pattern}|{target}"
        reopen_count = self._closed_count(pattern, target, reopens_since)
        try:
            with self.engine.begin() as connection:
                new_id = connection.execute(
                    insert(incidents).values(
                        pattern=pattern,
                        target=target,
                        severity=str(severity),
                        status=str(IncidentStatus.OPEN),
                        series_key=series_key,
                        root_cause=root_cause,
                        evidence=evidence,
                        open_key=open_key,
                        reopen_count=reopen_count,
                        opened_at=now,
                        updated_at=now,
                    )
                ).inserted_primary_key[0]
            return self.get(new_id), True
        except IntegrityError:
            with self.reads.connect() as connection:
                row = connection.execute(
                    select(incidents).where(incidents.c.open_key == open_key)
                ).first()
            if row is None:  # closed between our insert and this read: open it anew
                return self.open(
                    pattern=pattern,
                    target=target,
                    severity=severity,
                    series_key=series_key,
                    root_cause=root_cause,
                    evidence=evidence,
                    reopens_since=reopens_since,
                )
            return Incident.from_row(row), False

    def regroup(self, incident_id: int, members: list[dict[str, Any]], root_cause: str) -> None:
        """Replace the incident's members (ranked, root cause first) and its root cause."""
        with self.engine.begin() as connection:
            evidence = connection.execute(
                select(incidents.c.evidence).where(incidents.c.id == incident_id)
            ).scalar_one()
            connection.execute(
                update(incidents)
                .where(incidents.c.id == incident_id)
                .values(
                    evidence={**evidence, "members": members},
                    root_cause=root_cause,
                    updated_at=time.time(),
                )
            )

    def natural_recoveries(
        self, pattern: str, target: str, since: float, limit: int = 50
    ) -> list[float]:
        """Seconds from opening to resolution of the latest incidents of (pattern, target)
        closed since, that resolved with no fix applied and no person closing them: how long
        the series takes to come back by itself."""
        query = (
            select(incidents.c.closed_at - incidents.c.opened_at)
            .where(
                incidents.c.pattern == pattern,
                incidents.c.target == target,
                incidents.c.status == str(IncidentStatus.RESOLVED),
                incidents.c.closed_at > since,
                ~_logged(ExecutionState.APPLIED),
                ~_logged(ExecutionState.CLOSED),
            )
            .order_by(incidents.c.closed_at.desc())
            .limit(limit)
        )
        with self.reads.connect() as connection:
            return [float(seconds) for seconds in connection.execute(query).scalars()]

    def _closed_count(self, pattern: str, target: str, since: float) -> int:
        """Incidents of (pattern, target) closed since, that had a fix applied: flapping is a
        fix that held and a fault that came back. One that cleared by itself (a false alarm, a
        blip) says nothing about the fix, and counting it would stop the fix of a real fault."""
        query = (
            select(func.count())
            .select_from(incidents)
            .where(
                incidents.c.pattern == pattern,
                incidents.c.target == target,
                incidents.c.open_key.is_(None),
                incidents.c.closed_at > since,
                _logged(ExecutionState.APPLIED),
            )
        )
        with self.reads.connect() as connection:
            return connection.execute(query).scalar_one()

    def open_since(self, since: float) -> list[Incident]:
        """Incidents open at some moment after ``since``: still open, or closed after it. The
        analyze stage's learning leaves their stretches out of the series they were on."""
        query = select(incidents).where(
            or_(incidents.c.closed_at.is_(None), incidents.c.closed_at > since)
        )
        with self.reads.connect() as connection:
            return [Incident.from_row(row) for row in connection.execute(query.order_by("id"))]

    def get(self, incident_id: int, connection: Connection | None = None) -> Incident:
        if connection is None:
            with self.reads.connect() as own:
                return self.get(incident_id, own)
        row = connection.execute(_BY_ID, {"id": incident_id}).first()
        if row is None:
            raise NotFound(f"incident {incident_id} does not exist")
        return Incident.from_row(row)

    def advance(
        self,
        incident_id: int,
        expected: Iterable[IncidentStatus],
        status: IncidentStatus,
        connection: Connection | None = None,
    ) -> bool:
        """Move to ``status`` only from one of ``expected``; False if another got there first.
        Inside the caller's transaction when a ``connection`` is given."""
        if connection is None:
            with self.engine.begin() as own:
                return self.advance(incident_id, expected, status, own)
        statement = move_statement(statuses(expected), status.closed)
        result = connection.execute(
            statement, {"incident_id": incident_id, "to": str(status), "now": time.time()}
        )
        return result.rowcount == 1

    def list(self, status: IncidentStatus | None = None, limit: int = 100) -> list[Incident]:
        query = select(incidents).order_by(incidents.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(incidents.c.status == str(status))
        with self.reads.connect() as connection:
            return [Incident.from_row(row) for row in connection.execute(query)]

    def count_by_status(self) -> dict[str, int]:
        query = select(incidents.c.status, func.count()).group_by(incidents.c.status)
        with self.reads.connect() as connection:
            return dict(connection.execute(query).all())

    def with_status(self, statuses: Iterable[IncidentStatus]) -> list[Incident]:
        query = select(incidents).where(incidents.c.status.in_([str(s) for s in statuses]))
        with self.reads.connect() as connection:
            return [Incident.from_row(row) for row in connection.execute(query.order_by("id"))]


def _logged(state: ExecutionState) -> Any:
    """Whether the incident's audit log has a row in ``state``, as a correlated EXISTS."""
    return (
        select(executions.c.id)
        .where(executions.c.incident_id == incidents.c.id, executions.c.state == str(state))
        .exists()
    )
