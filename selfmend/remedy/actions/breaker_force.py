"""breaker_force: hold a named circuit breaker open or closed, or release a hold.

Open sheds every call to a dependency that is failing in a way the breaker does not see (wrong
answers, not errors); closed lets calls through a breaker that is flapping on a dependency known
to be healthy. The hold is in the shared state, so every process follows it until released.
Undo restores the hold the plan found (or releases). Medium risk: held open, every call to the
dependency takes its fallback or fails.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from selfmend.models import Risk
from selfmend.remedy.base import Plan, parse_params
from selfmend.resilience.breaker.control import BreakerControl
from selfmend.resilience.breaker.storage import State

BREAKER_NAME = r"^[A-Za-z0-9_.:-]+$"
_HELD = {"open": State.FORCED_OPEN, "closed": State.FORCED_CLOSED}
_HOLD_OF = {state: hold for hold, state in _HELD.items()}


class BreakerForceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    breaker: str = Field(min_length=1, max_length=200, pattern=BREAKER_NAME)
    hold: Literal["open", "closed", "released"]


class BreakerForce:
    name = "breaker_force"
    params_model = BreakerForceParams
    risk = Risk.MEDIUM
    reversible = True

    def __init__(self, control: BreakerControl, actor: str = "selfmend") -> None:
        self.control = control
        self.actor = actor

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(BreakerForceParams, self.name, params)
        current = self.control.state(parsed.breaker).state
        return Plan(
            self.name,
            parsed.breaker,
            parsed.model_dump(),
            {"hold": _HOLD_OF.get(current, "released")},
            f"hold breaker {parsed.breaker} {parsed.hold} (it is {current})",
        )

    def apply(self, plan: Plan) -> dict[str, Any]:
        return self._set(plan.params["breaker"], plan.params["hold"], "apply")

    def rollback(self, plan: Plan) -> dict[str, Any]:
        return self._set(plan.params["breaker"], plan.undo["hold"], "rollback")

    def _set(self, breaker: str, hold: str, step: str) -> dict[str, Any]:
        before = self.control.state(breaker).state
        reason = f"{self.name} {step}"
        if hold == "released":
            after = self.control.release(breaker, self.actor, reason).state
        else:
            after = self.control.hold(breaker, _HELD[hold], self.actor, reason).state
        return {"changed": after is not before, "breaker": breaker, "state": str(after)}
