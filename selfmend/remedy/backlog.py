"""The backlog: waiting incidents that are due for remediation again, swept on every analyze
pass. The incident row and its audit log say what each waits for, so a lost message or a
restart never strands one:

- **approved**: a person approved the action it waits on;
- **next candidate**: its fix was rolled back and verification left another candidate open;
- **held back**: a cooldown, a cap or a kill switch skipped it ``retry_seconds`` ago;
- **stranded**: open for ``retry_seconds`` with nothing in its log, as when its remediate
  message was lost (a broker restarted without persistence) or failed before its first row;
  or claimed and neither applied nor given up ``retry_seconds`` past the broker's redelivery
  of a message whose worker died (``redelivery_seconds``): that message was lost too;
- **unverified**: its fix applied, its verification overdue by ``retry_seconds`` (the verify
  message was lost, or its retries ran out): verify is sent again for the applied fix;
- **rollback owed**: its fix failed verification and is still applied ``retry_seconds`` after
  the verdict (the verifier's worker died before the rollback): the sweep rolls it back itself
  (``rolled_back``), and an incident that gets another candidate is due at once;
- an approval request nobody answered within ``approval_timeout_seconds`` is escalated.

Sending either stage twice is harmless: remediate claims and verify judges by compare-and-set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from selfmend.models import ExecutionState, IncidentStatus
from selfmend.remedy.escalation import ESCALATE, escalate
from selfmend.remedy.executor import Remediation
from selfmend.remedy.rollback import Rollbacks, owed
from selfmend.store import Store
from selfmend.store.executions import Execution
from selfmend.store.incidents import Incident

ACTOR = "selfmend.backlog"


@dataclass
class Due:
    approved: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    stranded: list[int] = field(default_factory=list)
    expired: list[int] = field(default_factory=list)
    unverified: list[dict[str, Any]] = field(default_factory=list)  # Remediation.as_dict()s
    rolled_back: list[int] = field(default_factory=list)  # whose owed rollback it took up

    @property
    def to_remediate(self) -> list[int]:
        return self.approved + self.retried + self.stranded


def request_expired(history: list[Execution], now: float, timeout: float) -> Execution | None:
    """The latest approval request, if nobody approved it and it is older than ``timeout``."""
    requests = [e for e in history if e.state is ExecutionState.AWAITING_APPROVAL]
    if not requests or any(e.state is ExecutionState.APPROVED for e in history):
        return None
    return requests[-1] if now - requests[-1].created_at > timeout else None


_WAITING = (
    IncidentStatus.OPEN,
    IncidentStatus.AWAITING_APPROVAL,
    IncidentStatus.REMEDIATING,
    IncidentStatus.VERIFYING,
    IncidentStatus.ROLLING_BACK,
)


def _last(history: list[Execution], state: ExecutionState) -> Execution | None:
    return next((e for e in reversed(history) if e.state is state), None)


def _last_step(history: list[Execution]) -> Execution:
    """The latest row that moved the incident: an ignored verify only says it came late."""
    return next(
        (e for e in reversed(history) if e.state is not ExecutionState.IGNORED), history[-1]
    )


class Backlog:
    def __init__(
        self,
        store: Store,
        *,
        retry_seconds: float,
        approval_timeout_seconds: float,
        verification_seconds: float,
        redelivery_seconds: float,
        rollbacks: Rollbacks,
    ) -> None:
        """``verification_seconds``: the longest a verification may rightly take;
        ``redelivery_seconds``: when the broker delivers again a message whose worker died;
        ``rollbacks``: what pays a rollback a verdict owes."""
        self.store = store
        self.rollbacks = rollbacks
        self.retry_seconds = retry_seconds
        self.approval_timeout_seconds = approval_timeout_seconds
        self.verification_seconds = verification_seconds
        self.redelivery_seconds = redelivery_seconds

    def sweep(self, now: float) -> Due:
        due = Due()
        for incident in self.store.incidents.with_status(_WAITING):
            history = self.store.executions.history(incident.id)
            waited = now - incident.updated_at
            if incident.status is IncidentStatus.AWAITING_APPROVAL:
                self._answer(incident, history, now, due)
            elif incident.status is IncidentStatus.REMEDIATING:
                if waited >= self.redelivery_seconds + self.retry_seconds:
                    due.stranded.append(incident.id)
            elif incident.status is IncidentStatus.VERIFYING:
                applied = _last(history, ExecutionState.APPLIED)
                if applied and waited >= self.verification_seconds + self.retry_seconds:
                    overdue = Remediation.already_applied(
                        applied, "verification overdue: sent again"
                    )
                    due.unverified.append(overdue.as_dict())
            elif incident.status is IncidentStatus.ROLLING_BACK:
                if waited >= self.retry_seconds:
                    self._pay(incident, history, due)
            elif not history:
                if waited >= self.retry_seconds:
                    due.stranded.append(incident.id)
            elif self._held_back_long_enough(_last_step(history), now):
                due.retried.append(incident.id)
        return due

    def _pay(self, incident: Incident, history: list[Execution], due: Due) -> None:
        debt = owed(history)
        if debt is None:
            return
        due.rolled_back.append(incident.id)
        if self.rollbacks.pay(incident, debt, ACTOR) is IncidentStatus.OPEN:
            due.retried.append(incident.id)  # the next candidate is due now

    def _answer(self, incident: Incident, history: list[Execution], now: float, due: Due) -> None:
        if any(e.state is ExecutionState.APPROVED for e in history):
            due.approved.append(incident.id)
            return
        request = request_expired(history, now, self.approval_timeout_seconds)
        if request is not None:
            reason = (
                f"nobody approved {request.action} on {request.target} within "
                f"{self.approval_timeout_seconds:.0f} s"
            )
            if escalate(self.store, incident, reason, ACTOR, [IncidentStatus.AWAITING_APPROVAL]):
                due.expired.append(incident.id)

    def _held_back_long_enough(self, last: Execution, now: float) -> bool:
        if last.state is ExecutionState.ROLLED_BACK:
            return True  # verification reopened it: the next candidate is due now
        held = last.state is ExecutionState.SKIPPED and last.action != ESCALATE
        return held and now - last.created_at >= self.retry_seconds
