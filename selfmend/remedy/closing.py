"""A person closes an incident: the fault was dealt with by hand (a schema change accepted, an
escalated fault fixed in the code) and nothing is left for selfmend to do.

An incident being remediated, verified or rolled back is refused: its verification owns the
verdict, and the kill switch stops the fix if it must be stopped. The close and its audit row
move together.
"""

from __future__ import annotations

from selfmend.errors import InvalidInput
from selfmend.models import ExecutionState, IncidentStatus, Risk
from selfmend.store import Store
from selfmend.store.executions import row_values

CLOSE = "close"
CLOSABLE = (IncidentStatus.OPEN, IncidentStatus.AWAITING_APPROVAL, IncidentStatus.ESCALATED)
_BUSY = {
    IncidentStatus.REMEDIATING: "its fix is being applied or verified",
    IncidentStatus.VERIFYING: "its fix is being applied or verified",
    IncidentStatus.ROLLING_BACK: "its fix failed verification and is being rolled back",
}


def close_incident(store: Store, incident_id: int, actor: str, reason: str) -> None:
    """Resolve the incident as ``actor``, with ``reason`` in its audit log."""
    incident = store.incidents.get(incident_id)
    if incident.status not in CLOSABLE:
        why = _BUSY.get(incident.status, "it is closed already")
        raise InvalidInput(f"incident {incident_id} is {incident.status}: {why}")
    row = row_values(
        incident_id=incident_id,
        action=CLOSE,
        target=incident.target,
        state=ExecutionState.CLOSED,
        risk=Risk.LOW,
        actor=actor,
        reason=reason,
    )
    with store.engine.begin() as connection:
        if not store.incidents.advance(incident_id, CLOSABLE, IncidentStatus.RESOLVED, connection):
            raise InvalidInput(f"incident {incident_id} moved on while it was being closed")
        store.executions.append(connection, row)
