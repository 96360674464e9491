"""The remediate stage: plan the incident's fix, pass it through the gate, apply it once.

Every decision is a row in the executions log. Applying is claimed by the keyed ``applying``
row: a redelivered message finds the claim, and either returns what was applied or, if the first
delivery died before applying, applies the claimed plan again (actions check first, so that is
harmless). The incident row only moves forward by compare-and-set.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from selfmend.config import Mode
from selfmend.detect.patterns import Pattern
from selfmend.errors import ActionError, ConfigurationError, is_interruption
from selfmend.models import ExecutionState, IncidentStatus, Risk
from selfmend.remedy.attempt import Attempt
from selfmend.remedy.base import Action, Plan, with_labels
from selfmend.remedy.catalogue import Catalogue
from selfmend.remedy.choice import Candidate, FixChooser
from selfmend.remedy.escalation import advance_and_tell, escalate
from selfmend.remedy.notify import APPROVAL_REQUESTED
from selfmend.remedy.policy import GateFacts, Verdict, decide
from selfmend.store import Store
from selfmend.store.claims import Caps
from selfmend.store.executions import Execution, ExecutionLog, row_values
from selfmend.store.incidents import Incident

log = structlog.get_logger(__name__)

ACTOR = "selfmend.remediate"
MAX_LOST_DELIVERIES = 3
_STARTABLE = (IncidentStatus.OPEN, IncidentStatus.AWAITING_APPROVAL, IncidentStatus.REMEDIATING)


@dataclass(frozen=True)
class Remediation:
    """What remediate did; the verify stage reads it, and it is the task's JSON result."""

    incident_id: int
    decision: str
    reason: str
    action: str | None = None
    execution_id: int | None = None
    applied_at: float | None = None

    @property
    def applied(self) -> bool:
        return self.decision == "applied"

    @classmethod
    def already_applied(cls, applied: Execution, reason: str) -> Remediation:
        """The fix of an ``applied`` row, for a verify that is sent it again."""
        return cls(
            applied.incident_id,
            "applied",
            reason,
            applied.action,
            applied.id,
            applied.created_at,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Executor:
    def __init__(
        self,
        store: Store,
        catalogue: Catalogue,
        patterns: tuple[Pattern, ...],
        *,
        mode: Mode,
        cooldown_seconds: float,
        flap_reopens: int = 3,
        caps: Caps,
    ) -> None:
        self.store = store
        self.catalogue = catalogue
        self.chooser = FixChooser(store, {pattern.name: pattern for pattern in patterns})
        self.mode = mode
        self.cooldown_seconds = cooldown_seconds
        self.flap_reopens = flap_reopens
        self.caps = caps

    def remediate(self, incident_id: int) -> Remediation:
        with self.store.reading() as connection:  # read once, for every decision
            incident = self.store.incidents.get(incident_id, connection)
            history = self.store.executions.history(incident_id, connection)
        if incident.status not in _STARTABLE:
            return Remediation(incident_id, "noop", f"incident is {incident.status}")
        if incident.reopen_count >= self.flap_reopens:
            # The fix held each time, yet the fault keeps coming back: a person must look.
            return self._escalate(
                incident,
                f"flapping: {incident.pattern} on {incident.target} reopened "
                f"{incident.reopen_count} times within the flap window",
            )
        while True:
            try:
                candidate = self.chooser.next(incident, history=history)
                action = None if candidate is None else self.catalogue.get(candidate.spec.name)
            except (ConfigurationError, ValidationError) as error:
                return self._escalate(incident, f"the proposed fix is refused: {error}")
            if candidate is None or action is None:
                return self._escalate(incident, self._nothing_left(incident))
            remediation = self._try(incident, candidate, action, history)
            if remediation is not None:
                return remediation
            history = self.store.executions.history(incident.id)

    def _try(
        self, incident: Incident, candidate: Candidate, action: Action, history: list[Execution]
    ) -> Remediation | None:
        """Plan and gate one candidate; None if it could not be planned (nothing was changed,
        so the next candidate is tried)."""
        risk = _highest(action.risk, candidate.spec.risk)
        claimed = ExecutionLog.step_in(history, incident.id, action.name, ExecutionState.APPLYING)
        if claimed is not None:
            return self._resume(incident, action, claimed, history)
        try:
            pattern = self.chooser.patterns.get(incident.pattern)
            limit = pattern.recorded_limit(incident.evidence) if pattern else None
            params = with_labels(action.name, candidate.spec.params, incident.target, limit)
            plan = action.plan(params)
        except (ActionError, ConfigurationError) as error:
            unplanned = Plan(action.name, "-", {}, {}, "")
            failed = f"could not plan {action.name}: {error}"
            self._attempt(incident, action, unplanned, risk).log(ExecutionState.FAILED, failed)
            return None
        attempt = self._attempt(incident, action, plan, _highest(risk, plan.risk))
        return self._gate(attempt, candidate.reason(), history)

    def _nothing_left(self, incident: Incident) -> str:
        names = [spec.name for spec in self.chooser.candidates(incident)]
        if not names:
            return f"pattern {incident.pattern!r} has no automatic fix"
        return f"every candidate fix was tried: {', '.join(names)}"

    def _attempt(self, incident: Incident, action: Action, plan: Plan, risk: Risk) -> Attempt:
        return Attempt(self.store, ACTOR, incident, action, plan, risk)

    def _gate(self, attempt: Attempt, chosen: str, history: list[Execution]) -> Remediation:
        incident, name, target = attempt.incident, attempt.action.name, attempt.plan.target
        approval = ExecutionLog.step_in(history, incident.id, name, ExecutionState.APPROVED)
        reading = self.store.gate.read(name, target)
        decision = decide(
            GateFacts(
                mode=self.mode,
                action=name,
                target=target,
                risk=attempt.risk,
                kill_switch_on=reading.kill_switch_on,
                approved=approval is not None,
                last_applied_at=reading.last_applied_at,
                cooldown_seconds=self.cooldown_seconds,
                now=time.time(),
            )
        )
        planned = attempt.row(ExecutionState.PLANNED, f"{attempt.plan.summary}; chosen: {chosen}")
        if decision.verdict is not Verdict.APPLY:
            state, outcome = _HELD[decision.verdict]
            # A skip (cooldown, kill switch) may recur on a later try; the others happen once.
            held = attempt.row(state, decision.reason, once=decision.verdict is not Verdict.SKIP)
            self.store.executions.record_rows([planned, held])
            if decision.verdict is Verdict.AWAIT_APPROVAL:
                asked = f"{attempt.plan.summary} ({attempt.risk} risk)"
                advance_and_tell(
                    self.store,
                    incident,
                    [IncidentStatus.OPEN],
                    IncidentStatus.AWAITING_APPROVAL,
                    APPROVAL_REQUESTED,
                    asked,
                )
            return Remediation(incident.id, outcome, decision.reason, name)
        applying = attempt.row(ExecutionState.APPLYING, decision.reason)
        claim = self.store.claims.claim(
            incident.id,
            _STARTABLE,
            applying,
            self.caps,
            planned,
            cooldown_seconds=self.cooldown_seconds,
        )
        if claim.capped is not None:
            capped = attempt.row(ExecutionState.SKIPPED, claim.capped, once=False)
            self.store.executions.record_rows([planned, capped])
            return Remediation(incident.id, "skipped", claim.capped, name)
        if claim.execution is None:  # another delivery claimed it, or moved the incident on
            claimed = self.store.executions.step(incident.id, name, ExecutionState.APPLYING)
            if claimed is None:
                return Remediation(incident.id, "noop", "another remediation took this incident")
            history = self.store.executions.history(incident.id)
            return self._resume(incident, attempt.action, claimed, history)
        return self._apply(attempt, switch_read=True)

    def _resume(
        self, incident: Incident, action: Action, claim: Execution, history: list[Execution]
    ) -> Remediation:
        applied = ExecutionLog.step_in(history, incident.id, action.name, ExecutionState.APPLIED)
        if applied is not None:
            return Remediation.already_applied(applied, "already applied (redelivered message)")
        attempt = Attempt.from_claim(self.store, ACTOR, incident, action, claim)
        lost = sum(e.state is ExecutionState.RESUMED and e.action == action.name for e in history)
        if lost >= MAX_LOST_DELIVERIES:
            # acks_late redelivers a message whose worker died: one that kills its worker
            # every time would loop forever. The action's own check-first makes a repeat safe.
            reason = (
                f"the worker applying {action.name} was lost {lost + 1} times; "
                "stopped trying, as the apply itself may be what kills it"
            )
            attempt.log(ExecutionState.FAILED, reason, once=False)
            return self._escalate(incident, reason)
        attempt.log(
            ExecutionState.RESUMED,
            f"delivered again after the worker was lost ({lost + 1})",
            once=False,
        )
        log.warning("remediation.resumed", incident_id=incident.id, action=action.name)
        return self._apply(attempt)

    def _apply(self, attempt: Attempt, switch_read: bool = False) -> Remediation:
        """Apply the claimed plan; the kill switch is read first unless the gate just did."""
        incident, action, plan = attempt.incident, attempt.action, attempt.plan
        if not switch_read and self.store.controls.kill_switch(action.name):
            reason = f"kill switch is on for {action.name}"
            attempt.log(ExecutionState.SKIPPED, reason, once=False)
            self.store.incidents.advance(
                incident.id, [IncidentStatus.REMEDIATING], IncidentStatus.OPEN
            )
            return Remediation(incident.id, "skipped", "kill switch", action.name)
        try:
            result = action.apply(plan)
        except Exception as error:
            if is_interruption(error):  # the claim stays: the backlog sends the apply again
                raise
            log.exception("remediation.apply_failed", incident_id=incident.id, action=action.name)
            attempt.log(ExecutionState.FAILED, f"apply failed: {error}", once=False)
            return self._escalate(incident, f"{action.name} failed to apply: {error}")
        row = row_values(**attempt.row(ExecutionState.APPLIED, plan.summary, result=result))
        with self.store.engine.begin() as connection:  # the row and the incident move together
            applied = self.store.executions.append(connection, row)
            self.store.incidents.advance(
                incident.id, [IncidentStatus.REMEDIATING], IncidentStatus.VERIFYING, connection
            )
        if applied is None:  # a concurrent delivery logged it first
            applied = self.store.executions.step(incident.id, action.name, ExecutionState.APPLIED)
        log.info(
            "remediation.applied", incident_id=incident.id, action=action.name, target=plan.target
        )
        return Remediation(
            incident.id, "applied", plan.summary, action.name, applied.id, applied.created_at
        )

    def _escalate(self, incident: Incident, reason: str) -> Remediation:
        escalate(self.store, incident, reason, ACTOR, _STARTABLE)
        return Remediation(incident.id, "escalated", reason)


_HELD = {
    Verdict.SKIP: (ExecutionState.SKIPPED, "skipped"),
    Verdict.DRY_RUN: (ExecutionState.DRY_RUN, "dry_run"),
    Verdict.AWAIT_APPROVAL: (ExecutionState.AWAITING_APPROVAL, "awaiting_approval"),
}
_RISK_ORDER = [Risk.LOW, Risk.MEDIUM, Risk.HIGH, Risk.CRITICAL]


def _highest(*risks: Risk | None) -> Risk:
    """The highest of the action's, the pattern's and the plan's risk: each may only raise it."""
    return max((risk for risk in risks if risk is not None), key=_RISK_ORDER.index)
