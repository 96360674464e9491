"""Approvals: a person's yes to an action waiting on it, recorded in the executions log.

The approval lives in the store, so it survives restarts; the backlog hands approved incidents
back to remediation on the next analyze pass. A request stands for a bounded time: nobody's
yes after it expired counts, and the incident goes to a person instead.
"""

from __future__ import annotations

import time

from selfmend.errors import InvalidInput
from selfmend.models import ExecutionState, IncidentStatus
from selfmend.remedy.backlog import request_expired
from selfmend.store import Store
from selfmend.store.executions import Execution


def approve(
    store: Store,
    incident_id: int,
    actor: str,
    reason: str = "approved",
    *,
    timeout_seconds: float,
) -> Execution:
    """Record a person's yes; refused when the incident does not wait for one, or when its
    request is older than ``timeout_seconds`` (the backlog escalates it)."""
    incident = store.incidents.get(incident_id)
    if incident.status is not IncidentStatus.AWAITING_APPROVAL:
        raise InvalidInput(f"incident {incident_id} is {incident.status}, not awaiting approval")
    history = store.executions.history(incident_id)
    expired = request_expired(history, time.time(), timeout_seconds)
    if expired is not None:
        raise InvalidInput(
            f"incident {incident_id}: the request to approve {expired.action} is older than "
            f"{timeout_seconds:.0f} s (SELFMEND_APPROVAL_TIMEOUT_SECONDS) and no longer stands; "
            "the incident is escalated instead"
        )
    request = [e for e in history if e.state is ExecutionState.AWAITING_APPROVAL][-1]
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
