"""Telling a person: an incident moves on and its message joins the outbox in one transaction.

The executor escalates what it will not fix (no fix, every candidate tried, flapping, a refused
proposal, a failed apply) and asks for approval of a high-risk fix; the verifier reports an
incident every candidate failed on; the backlog escalates approval requests nobody answered.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from sqlalchemy import Connection

from selfmend.models import ExecutionState, IncidentStatus, Risk
from selfmend.remedy.notify import ESCALATED, message
from selfmend.store import Store
from selfmend.store.executions import Execution
from selfmend.store.incidents import Incident

log = structlog.get_logger(__name__)

ESCALATE = "escalate"


def advance_and_tell(
    store: Store,
    incident: Incident,
    expected: Iterable[IncidentStatus],
    status: IncidentStatus,
    kind: str,
    reason: str,
) -> bool:
    """Move the incident on and queue the message about it, both or neither; False if another
    stage moved the incident first."""
    history = store.executions.history(incident.id)
    with store.engine.begin() as connection:
        moved = store.incidents.advance(incident.id, expected, status, connection)
        if moved:
            tell(store, connection, incident.id, kind, reason, history)
    return moved


def tell(
    store: Store,
    connection: Connection,
    incident_id: int,
    kind: str,
    reason: str,
    history: list[Execution],
) -> None:
    """Queue the message about the incident as it now stands, in the caller's transaction."""
    moved_on = store.incidents.get(incident_id, connection)
    payload = message(kind, moved_on, history, reason)
    store.notifications.enqueue(connection, incident_id, kind, payload)


def escalate(
    store: Store, incident: Incident, reason: str, actor: str, expected: Iterable[IncidentStatus]
) -> bool:
    """Log the escalation and hand the incident to a person; False if another stage moved it
    first (the row still says why this one gave up)."""
    store.executions.record(
        incident_id=incident.id,
        action=ESCALATE,
        target=incident.target,
        state=ExecutionState.SKIPPED,
        risk=Risk.LOW,
        actor=actor,
        reason=reason,
        once=False,
    )
    moved = advance_and_tell(store, incident, expected, IncidentStatus.ESCALATED, ESCALATED, reason)
    log.warning("incident.escalated", incident_id=incident.id, reason=reason)
    return moved
