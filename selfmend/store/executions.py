"""The executions log: append-only, one row per state change, with actor and reason.

It is both the audit log and the transaction log. Each step of an incident's action carries the
idempotency key ``<incident>:<action>:<state>``, unique in the table, so a redelivered message
cannot take the same step twice: the insert that would repeat it is skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, Select, bindparam, select

from selfmend.models import ExecutionState, Risk
from selfmend.store.engine import reads
from selfmend.store.tables import executions
from selfmend.store.upsert import insert_or_ignore


@dataclass(frozen=True)
class Execution:
    id: int
    incident_id: int
    action: str
    target: str
    state: ExecutionState
    risk: Risk
    params: dict[str, Any]
    undo: dict[str, Any] | None
    result: dict[str, Any] | None
    actor: str
    reason: str
    idempotency_key: str | None
    created_at: float

    @classmethod
    def from_row(cls, row: Any) -> Execution:
        values = dict(row._mapping)
        values["state"] = ExecutionState(values["state"])
        values["risk"] = Risk(values["risk"])
        return cls(**values)

    @classmethod
    def from_values(cls, new_id: int, values: dict[str, Any]) -> Execution:
        """The row just inserted from ``row_values``."""
        return cls(
            id=new_id,
            **{**values, "state": ExecutionState(values["state"]), "risk": Risk(values["risk"])},
        )


def step_key(incident_id: int, action: str, state: ExecutionState) -> str:
    return f"{incident_id}:{action}:{state}"


def row_values(
    *,
    incident_id: int,
    action: str,
    target: str,
    state: ExecutionState,
    risk: Risk,
    actor: str,
    reason: str,
    params: dict[str, Any] | None = None,
    undo: dict[str, Any] | None = None,
    result: dict[str, Any] | None = None,
    once: bool = True,
) -> dict[str, Any]:
    """The columns of one executions row; ``once`` keys it by (incident, action, state)."""
    return dict(
        incident_id=incident_id,
        action=action,
        target=target,
        state=str(state),
        risk=str(risk),
        params=params or {},
        undo=undo,
        result=result,
        actor=actor,
        reason=reason,
        idempotency_key=step_key(incident_id, action, state) if once else None,
        created_at=time.time(),
    )


# Built once, as the remediate and verify stages run them for every incident.
_HISTORY = (
    select(executions)
    .where(executions.c.incident_id == bindparam("incident_id"))
    .order_by(executions.c.id)
)
_STEP = select(executions).where(executions.c.idempotency_key == bindparam("key"))


def last_applied(action: str = "action", target: str = "target") -> Select:
    """When an action last ran on a target, what the cooldown counts from; the bound
    parameters' names are given, as an update of a table with a ``target`` column needs
    another."""
    return (
        select(executions.c.created_at)
        .where(
            executions.c.action == bindparam(action),
            executions.c.target == bindparam(target),
            executions.c.state == str(ExecutionState.APPLIED),
        )
        .order_by(executions.c.created_at.desc())
        .limit(1)
    )


LAST_APPLIED = last_applied()


class ExecutionLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)
        self._append = insert_or_ignore(executions, ["idempotency_key"], returning="id")

    def record(
        self,
        *,
        incident_id: int,
        action: str,
        target: str,
        state: ExecutionState,
        risk: Risk,
        actor: str,
        reason: str,
        params: dict[str, Any] | None = None,
        undo: dict[str, Any] | None = None,
        result: dict[str, Any] | None = None,
        once: bool = True,
    ) -> Execution | None:
        """Append a row. With ``once`` the step is keyed; returns None if it was already taken."""
        values = row_values(
            incident_id=incident_id,
            action=action,
            target=target,
            state=state,
            risk=risk,
            actor=actor,
            reason=reason,
            params=params,
            undo=undo,
            result=result,
            once=once,
        )
        with self.engine.begin() as connection:
            return self.append(connection, values)

    def record_rows(self, rows: list[dict[str, Any]]) -> list[Execution | None]:
        """Several rows (``record``'s fields each) in one transaction."""
        with self.engine.begin() as connection:
            return [self.append(connection, row_values(**row)) for row in rows]

    def append(self, connection: Connection, values: dict[str, Any]) -> Execution | None:
        """Insert ``row_values`` in the caller's transaction; None if its keyed step was
        already taken (the insert is skipped, so the transaction stays usable)."""
        new_id = connection.execute(self._append, values).scalar()
        return None if new_id is None else Execution.from_values(new_id, values)

    @staticmethod
    def step_in(
        history: list[Execution], incident_id: int, action: str, state: ExecutionState
    ) -> Execution | None:
        """The keyed row of one step in an incident's ``history``, as ``step`` would read it."""
        key = step_key(incident_id, action, state)
        return next((e for e in history if e.idempotency_key == key), None)

    def step(self, incident_id: int, action: str, state: ExecutionState) -> Execution | None:
        """The keyed row of one step, if it was taken."""
        with self.reads.connect() as connection:
            row = connection.execute(_STEP, {"key": step_key(incident_id, action, state)}).first()
        return Execution.from_row(row) if row else None

    def history(self, incident_id: int, connection: Connection | None = None) -> list[Execution]:
        if connection is None:
            with self.reads.connect() as own:
                return self.history(incident_id, own)
        rows = connection.execute(_HISTORY, {"incident_id": incident_id})
        return [Execution.from_row(row) for row in rows]

    def recent(self, limit: int = 50) -> list[Execution]:
        query = select(executions).order_by(executions.c.id.desc()).limit(limit)
        with self.reads.connect() as connection:
            return [Execution.from_row(row) for row in connection.execute(query)]
