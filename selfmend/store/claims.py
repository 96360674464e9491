"""The remediation claim: the incident moves to ``remediating`` and its ``applying`` row is written
in one transaction, within the caps on concurrent remediations and on actions per hour, and only
if the same action on the same target is neither in its cooldown nor being applied for another
incident.

Two workers must not both take the last slot, nor both apply one fix to one target because both
read the cooldown before either claimed. The transaction begins with the incident's update, so
SQLite holds its write lock before anything is counted; on PostgreSQL every claim first takes the
same transaction-level advisory lock. Counting and claiming then see one state of the store, and
the caps and the cooldown hold exactly, however many workers claim at once. (The safety gate
reads the cooldown earlier too, without the lock, to say so before planning an approval or a dry
run; the claim is what makes it hold.)
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Engine, Update, bindparam, func, or_, select, text

from selfmend.models import ExecutionState, IncidentStatus
from selfmend.store.executions import Execution, ExecutionLog, last_applied, row_values
from selfmend.store.incidents import move_statement, statuses
from selfmend.store.tables import executions, incidents

IN_FLIGHT = (IncidentStatus.REMEDIATING, IncidentStatus.VERIFYING, IncidentStatus.ROLLING_BACK)
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


# Another incident's claim of the same action on the same target, neither applied nor failed yet:
# the lowest such incident id, or NULL. IN rather than a join or a correlated EXISTS, because
# RETURNING renders its columns unqualified: each name must resolve in its own FROM alone.
_REMEDIATING = select(incidents.c.id).where(incidents.c.status == str(IncidentStatus.REMEDIATING))
_CLAIMED = (
    executions.c.action == bindparam("claim_action"),
    executions.c.target == bindparam("claim_target"),
    executions.c.incident_id.in_(_REMEDIATING),
)
_SETTLED = select(executions.c.incident_id).where(
    *_CLAIMED,
    or_(
        executions.c.state == str(ExecutionState.APPLIED),
        executions.c.state == str(ExecutionState.FAILED),
    ),
)
_APPLYING_ELSEWHERE = (
    select(func.min(executions.c.incident_id))
    .where(
        *_CLAIMED,
        executions.c.state == str(ExecutionState.APPLYING),
        executions.c.incident_id != bindparam("incident_id"),
        executions.c.incident_id.not_in(_SETTLED),
    )
    .scalar_subquery()
)


@cache
def _take_and_count(startable: tuple[str, ...]) -> Update:
    """Move the incident to remediating, returning the counts, when the action last ran on the
    target, and any other claim of it there: one statement, not several."""
    return move_statement(startable, closing=False).returning(
        _IN_FLIGHT,
        _STARTED,
        last_applied("claim_action", "claim_target").scalar_subquery(),
        _APPLYING_ELSEWHERE,
    )


def cooldown_hold(
    action: str, target: str, last_applied_at: float | None, cooldown_seconds: float, now: float
) -> str | None:
    """Why the cooldown holds ``action`` on ``target`` back now, or None: the one rule the gate
    reads early and the claim applies under its lock."""
    if last_applied_at is None:
        return None
    waited = now - last_applied_at
    if waited >= cooldown_seconds:
        return None
    return (
        f"cooldown: {action} on {target} ran {waited:.0f} s ago (cooldown {cooldown_seconds:.0f} s)"
    )


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
        *,
        cooldown_seconds: float = 0.0,
    ) -> Claim:
        """Claim the incident for applying ``row``'s action (``row_values`` fields, the
        ``applying`` step), after ``logged_first`` (the plan's row) in the same transaction; or
        leave the store as it was. Held back (``capped``) by a cap, by the action's cooldown on
        the row's target, or by another incident's claim of the same action there."""
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
                        "claim_action": row["action"],
                        "claim_target": row["target"],
                    },
                ).first()
                if counted is None:  # not in a startable status: another delivery moved it
                    raise _HeldBack(Claim())
                in_flight_now, started_this_hour, last_applied_at, applying_for = counted
                capped = _busy(row["action"], row["target"], applying_for) or cooldown_hold(
                    row["action"], row["target"], last_applied_at, cooldown_seconds, now
                )
                capped = capped or _capped(in_flight_now, started_this_hour, caps)
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


def _busy(action: str, target: str, applying_for: int | None) -> str | None:
    """Two fixes applied to one target at once would each plan its undo from the other's change."""
    if applying_for is None:
        return None
    return f"in flight: {action} on {target} is being applied for incident {applying_for}"


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
