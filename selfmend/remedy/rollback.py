"""Rolling back a fix that failed verification, owed first and paid once.

The verdict owes the rollback: its ``rollback_owed`` row and the incident's move to
``rolling_back`` commit together, with what the incident becomes once it is paid (open for the
next candidate, or rolled back for good). The verifier pays at once; if its worker dies first,
the backlog pays on a later sweep, so a failed fix is never left applied. Paying twice is
harmless: the action's rollback checks first, and the incident leaves ``rolling_back`` by
compare-and-set in the transaction that writes the keyed ``rolled_back`` row, so it is recorded
done once.
"""

from __future__ import annotations

from typing import Any

import structlog

from selfmend.errors import is_interruption
from selfmend.models import ExecutionState, IncidentStatus
from selfmend.remedy.attempt import Attempt
from selfmend.remedy.catalogue import Catalogue
from selfmend.remedy.escalation import escalate, tell
from selfmend.remedy.notify import ROLLED_BACK
from selfmend.store import Store
from selfmend.store.executions import Execution, row_values
from selfmend.store.incidents import Incident

log = structlog.get_logger(__name__)


def owed(history: list[Execution]) -> Execution | None:
    """The incident's ``rollback_owed`` row that no ``rolled_back`` row of its action settled."""
    done = {e.action for e in history if e.state is ExecutionState.ROLLED_BACK}
    return next(
        (
            e
            for e in reversed(history)
            if e.state is ExecutionState.ROLLBACK_OWED and e.action not in done
        ),
        None,
    )


def owing(
    attempt: Attempt,
    then: IncidentStatus,
    after: dict[str, Any],
    why: str = "verification failed",
) -> dict[str, Any]:
    """The verdict's ``rollback_owed`` row (``Attempt.row`` fields): it carries the plan to undo
    and what the incident becomes once the rollback is done."""
    reason = f"{why}: {attempt.action.name} is to be rolled back"
    return attempt.row(
        ExecutionState.ROLLBACK_OWED, reason, result={"then": str(then), "after": after}
    )


class Rollbacks:
    def __init__(self, store: Store, catalogue: Catalogue) -> None:
        self.store = store
        self.catalogue = catalogue

    def pay(self, incident: Incident, debt: Execution, actor: str) -> IncidentStatus:
        """Roll back the fix ``debt`` (a ``rollback_owed`` row) names and move the incident on;
        its status afterwards. A rollback that fails, or whose action is no longer registered,
        escalates the incident to a person."""
        after = (debt.result or {}).get("after", {})
        try:
            action = self.catalogue.get(debt.action)
            attempt = Attempt.from_claim(self.store, actor, incident, action, debt)
            result = action.rollback(attempt.plan)
        except Exception as error:
            if is_interruption(error):  # still owed: the backlog pays it on its next sweep
                raise
            log.exception("rollback.failed", incident_id=incident.id, action=debt.action)
            self._failed(incident, debt, actor, error, after)
            return self.store.incidents.get(incident.id).status
        undone = "rolled back" if action.reversible else "not reversible, nothing undone"
        why = after.get("reason") or "verification failed"
        done = attempt.row(
            ExecutionState.ROLLED_BACK,
            f"{why}: {undone}",
            result={**after, "rollback": result},
        )
        self._settle(incident, debt, done)
        return self.store.incidents.get(incident.id).status

    def _failed(
        self,
        incident: Incident,
        debt: Execution,
        actor: str,
        error: Exception,
        after: dict[str, Any],
    ) -> None:
        self.store.executions.record(
            incident_id=incident.id,
            action=debt.action,
            target=debt.target,
            state=ExecutionState.FAILED,
            risk=debt.risk,
            actor=actor,
            reason=f"rollback failed: {error}",
            params=debt.params,
            undo=debt.undo,
            result=after,
        )
        reason = f"{debt.action} did not fix it, and rolling it back failed: {error}"
        escalate(self.store, incident, reason, actor, [IncidentStatus.ROLLING_BACK])

    def _settle(self, incident: Incident, debt: Execution, done: dict[str, Any]) -> None:
        """The done row, the incident's move and, when no candidate is left, the message to a
        person: together, and only by whoever moves the incident while ``debt`` is still what
        it owes (a payer that comes very late must not settle the next candidate's debt)."""
        then = IncidentStatus((debt.result or {})["then"])
        try:
            with self.store.engine.begin() as connection:
                if not self.store.incidents.advance(
                    incident.id, [IncidentStatus.ROLLING_BACK], then, connection
                ):
                    return  # another payer settled it first
                history = self.store.executions.history(incident.id, connection)
                still = owed(history)
                if still is None or still.id != debt.id:
                    raise _Settled()
                row = self.store.executions.append(connection, row_values(**done))
                if then is IncidentStatus.ROLLED_BACK and row is not None:
                    reason = (
                        f"{debt.action} did not fix it and is rolled back; "
                        "no other candidate fix is left"
                    )
                    tell(self.store, connection, incident.id, ROLLED_BACK, reason, [*history, row])
        except _Settled:
            return
        log.info("incident.rolled_back", incident_id=incident.id, then=str(then))


class _Settled(Exception):
    """Undoes the move of an incident whose debt another payer settled first."""
