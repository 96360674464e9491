"""Escalation: an incident handed to a person, with the reason in the audit log.

The executor escalates what it will not fix (no fix, every candidate tried, flapping, a refused
proposal, a failed apply); the backlog escalates approval requests nobody answered in time.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from selfmend.models import ExecutionState, IncidentStatus, Risk
from selfmend.store import Store
from selfmend.store.incidents import Incident

log = structlog.get_logger(__name__)

ESCALATE = "escalate"


def escalate(
    store: Store, incident: Incident, reason: str, actor: str, expected: Iterable[IncidentStatus]
) -> bool:
    """Log the escalation and move the incident on from one of ``expected``; False if another
    stage moved it first (the row still says why this one gave up)."""
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
    moved = store.incidents.advance(incident.id, expected, IncidentStatus.ESCALATED)
    log.warning("incident.escalated", incident_id=incident.id, reason=reason)
    return moved
