"""Which fix an incident is verifying now: verify judges the execution it was sent, and only
while that execution is the incident's current fix (its latest applied row, with no verdict yet,
while the incident is verifying). Anything else is a late, replayed or racing verify.
"""

from __future__ import annotations

from selfmend.models import ExecutionState, IncidentStatus
from selfmend.remedy.executor import Remediation
from selfmend.store.executions import Execution, ExecutionLog
from selfmend.store.incidents import Incident

# What follows a verdict on a fix: the verdict's row, then its rollback (done or failed).
_JUDGED = frozenset(
    {
        ExecutionState.VERIFIED,
        ExecutionState.UNCREDITED,
        ExecutionState.ROLLBACK_OWED,
        ExecutionState.ROLLED_BACK,
        ExecutionState.FAILED,
    }
)


def sent(history: list[Execution], remediation: Remediation) -> Execution | None:
    """The applied row of the fix this verify was sent: by its execution id, or for a message
    without one, by its action's keyed step."""
    if remediation.execution_id is not None:
        return next(
            (
                e
                for e in history
                if e.id == remediation.execution_id and e.state is ExecutionState.APPLIED
            ),
            None,
        )
    action = remediation.action or ""
    return ExecutionLog.step_in(history, remediation.incident_id, action, ExecutionState.APPLIED)


def not_current(
    incident: Incident,
    history: list[Execution],
    applied: Execution | None,
    remediation: Remediation | None = None,
) -> str | None:
    """Why ``applied`` is not the fix the incident is verifying now, or None if it is: the
    latest applied row, with no verdict on it yet, while the incident is verifying."""
    if applied is None:
        sent_id = remediation.execution_id if remediation else None
        return f"execution {sent_id} is no applied fix of incident {incident.id}"
    latest = next((e for e in reversed(history) if e.state is ExecutionState.APPLIED), None)
    if latest is not None and latest.id != applied.id:
        return f"superseded by {latest.action} (execution {latest.id})"
    verdict = next(
        (
            e
            for e in history
            if e.id > applied.id and e.action == applied.action and e.state in _JUDGED
        ),
        None,
    )
    if verdict is not None:
        return f"already judged: {verdict.state}"
    if incident.status is not IncidentStatus.VERIFYING:
        return f"incident {incident.id} is {incident.status}"
    return None
