"""Approvals: a person's yes to an action waiting on it, recorded in the executions log.

The approval lives in the store, so it survives restarts; the analyze stage hands approved
incidents back to remediation.
"""

from __future__ import annotations

from selfmend.errors import InvalidInput
from selfmend.models import ExecutionState, IncidentStatus
from selfmend.store import Store
from selfmend.store.executions import Execution


def approve(store: Store, incident_id: int, actor: str, reason: str = "approved") -> Execution:
    incident = store.incidents.get(incident_id)
    if incident.status is not IncidentStatus.AWAITING_APPROVAL:
        raise InvalidInput(f"incident {incident_id} is {incident.status}, not awaiting approval")
    waiting = [
        e
        for e in store.executions.history(incident_id)
        if e.state is ExecutionState.AWAITING_APPROVAL
    ]
    request = waiting[-1]
    approval = store.executions.record(
        incident_id=incident_id,
        action=request.action,
        target=request.target,
        state=ExecutionState.APPROVED,
        risk=request.risk,
        actor=actor,
        reason=reason,
        params=request.params,
    )
    return approval or store.executions.step(incident_id, request.action, ExecutionState.APPROVED)
