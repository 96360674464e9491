"""An attempt: one incident's try of one planned action, and the audit-log rows it writes.

The remediate and verify stages both write rows about the same attempt; this holds what those
rows share, and rebuilds the attempt from its ``applying`` claim row when a later stage (or a
redelivered message) picks it up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfmend.models import ExecutionState, Risk
from selfmend.remedy.base import Action, Plan
from selfmend.store import Store
from selfmend.store.executions import Execution
from selfmend.store.incidents import Incident


@dataclass(frozen=True)
class Attempt:
    store: Store
    actor: str
    incident: Incident
    action: Action
    plan: Plan
    risk: Risk

    @classmethod
    def from_claim(
        cls, store: Store, actor: str, incident: Incident, action: Action, claim: Execution
    ) -> Attempt:
        plan = Plan(action.name, claim.target, claim.params, claim.undo or {}, claim.reason)
        return cls(store, actor, incident, action, plan, claim.risk)

    def log(
        self,
        state: ExecutionState,
        reason: str,
        *,
        once: bool = True,
        result: dict[str, Any] | None = None,
    ) -> Execution | None:
        """Append a row; keyed (``once``) rows return None when the step was already taken."""
        return self.store.executions.record(**self.row(state, reason, once=once, result=result))

    def row(
        self,
        state: ExecutionState,
        reason: str,
        *,
        once: bool = True,
        result: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The fields of this attempt's row for one step."""
        return dict(
            incident_id=self.incident.id,
            action=self.action.name,
            target=self.plan.target,
            state=state,
            risk=self.risk,
            actor=self.actor,
            reason=reason,
            params=self.plan.params,
            undo=self.plan.undo,
            result=result,
            once=once,
        )
