"""The remediation claim: the incident moves to ``remediating`` and its ``applying`` row is written
in one transaction, within the caps on concurrent remediations and on actions per hour.

Two workers must not both take the last slot. The transaction begins with the incident's update,
so SQLite holds its write lock before anything is counted; on PostgreSQL every claim first takes
the same transaction-level advisory lock. Counting and claiming then see one state of the store,
and the caps hold exactly, however many workers claim at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Engine, Update, bindparam, func, or_, select, text

from selfmend.models import ExecutionState, IncidentStatus
from selfmend.store.executions import Execution, ExecutionLog, row_values
from selfmend.store.incidents import move_statement, statuses
from selfmend.store.tables import executions, incidents

IN_FLIGHT = (IncidentStatus.REMEDIATING, IncidentStatus.VERIFYING)
HOUR = 3600.0
_CLAIM_LOCK = 0x5E1F_3E0D  # the advisory lock key all of selfmend's claims share


@dataclass(frozen=True)
class Caps:
    concurrent: int
    per_hour: int


@dataclass(frozen=True)
class Claim:
    """The ``applying`` row if this call claimed the incident; else why not: a cap held it back
    (``capped``), or another delivery holds the claim (both None)."""

    execution: Execution | None = None
    capped: str | None = None


class _HeldBack(Exception):
    def __init__(self, claim: Claim) -> None:
        self.claim = claim


# What the caps count, read by the statement that takes the incident: on PostgreSQL after the
# advisory lock, on SQLite under the write lock the update holds.
_IN_FLIGHT = (
    select(func.count())
    .select_from(incidents)
    .where(
        incidents.c.id != bindparam("incident_id"),
        or_(*(incidents.c.status == str(status) for status in IN_FLIGHT)),
    )
    .scalar_subquery()
)
_STARTED = (
    select(func.count())
    .select_from(executions)
    .where(
        executions.c.state == str(ExecutionState.APPLYING),
        executions.c.created_at > bindparam("hour_ago"),
    )
    .scalar_subquery()
)


@cache
def _take_and_count(startable: tuple[str, ...]) -> Update:
    """Move the incident to remediating, returning the counts: one statement, not two."""
    return move_statement(startable, closing=False).returning(_IN_FLIGHT, _STARTED)


class Claims:
    def __init__(self, engine: Engine, executions: ExecutionLog) -> None:
        self.engine = engine
        self.executions = executions
        self._postgres = engine.dialect.name == "postgresql"

    def claim(
        self,
        incident_id: int,
        startable: Iterable[IncidentStatus],
        row: dict[str, Any],
        caps: Caps,
        logged_first: dict[str, Any] | None = None,
    ) -> Claim:
        """Claim the incident for applying ``row``'s action (``row_values`` fields, the
        ``applying`` step), after ``logged_first`` (the plan's row) in the same transaction; or
        leave the store as it was."""
        values = row_values(**{**row, "state": ExecutionState.APPLYING, "once": True})
        try:
            with self.engine.begin() as connection:
                if self._postgres:
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK}
                    )
                now = time.time()
                counted = connection.execute(
                    _take_and_count(statuses(startable)),
                    {
                        "incident_id": incident_id,
                        "to": str(IncidentStatus.REMEDIATING),
                        "now": now,
                        "hour_ago": now - HOUR,
                    },
                ).first()
                if counted is None:  # not in a startable status: another delivery moved it
                    raise _HeldBack(Claim())
                capped = _capped(*counted, caps)
                if capped is not None:
                    raise _HeldBack(Claim(capped=capped))
                if logged_first is not None:
                    self.executions.append(connection, row_values(**logged_first))
                execution = self.executions.append(connection, values)
                if execution is None:  # a concurrent delivery wrote the claim first
                    raise _HeldBack(Claim())
        except _HeldBack as held:
            return held.claim
        return Claim(execution)


def _capped(in_flight_now: int, started_this_hour: int, caps: Caps) -> str | None:
    if in_flight_now >= caps.concurrent:
        return (
            f"cap: {in_flight_now} other remediations in flight "
            f"(SELFMEND_MAX_CONCURRENT_REMEDIATIONS={caps.concurrent})"
        )
    if started_this_hour >= caps.per_hour:
        return (
            f"cap: {started_this_hour} actions applied in the last hour "
            f"(SELFMEND_MAX_ACTIONS_PER_HOUR={caps.per_hour})"
        )
    return None
