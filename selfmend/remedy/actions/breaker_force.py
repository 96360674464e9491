"""breaker_force: hold a named circuit breaker open or closed, release a hold, or trip it.

Open sheds every call to a dependency that is failing in a way the breaker does not see (wrong
answers, not errors); closed lets calls through a breaker that is flapping on a dependency known
to be healthy. The hold is in the shared state, so every process follows it until released.

Tripped is the fix for a dependency failing while its breaker stays closed (thresholds too
loose for this failure, too few failing processes): the breaker opens as a breach would, so
calls go to the fallback at once, and after ``reset_timeout`` its probes let the dependency
back in once it answers. A hold open would never let it back in: nothing would end it but a
release no one is there to give. A held breaker is not tripped (the operator's hold wins).

Undo restores what the plan found: its hold, released, or open (tripped again); a trip of a
closed breaker is undone by closing it. Medium risk: held open or tripped, every call to the
dependency takes its fallback or fails.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from selfmend.errors import ActionError
from selfmend.models import Risk
from selfmend.remedy.base import Plan, parse_params
from selfmend.resilience.breaker.control import HOLDS, BreakerControl
from selfmend.resilience.breaker.storage import State

BREAKER_NAME = r"^[A-Za-z0-9_.:-]+$"
_HELD = {"open": State.FORCED_OPEN, "closed": State.FORCED_CLOSED}
_HOLD_OF = {state: hold for hold, state in _HELD.items()}
_HOLD_OF |= {State.OPEN: "tripped", State.HALF_OPEN: "tripped"}


class BreakerForceParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    breaker: str = Field(min_length=1, max_length=200, pattern=BREAKER_NAME)
    hold: Literal["open", "closed", "released", "tripped"]


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
        if parsed.hold == "tripped" and current in HOLDS:
            raise ActionError(
                f"{self.name}: breaker {parsed.breaker} is {current}, held by an operator; "
                "a trip would not change it"
            )
        doing = "trip" if parsed.hold == "tripped" else "hold"
        opened = " open" if parsed.hold == "tripped" else f" {parsed.hold}"
        return Plan(
            self.name,
            parsed.breaker,
            parsed.model_dump(),
            {"hold": _HOLD_OF.get(current, "released")},
            f"{doing} breaker {parsed.breaker}{opened} (it is {current})",
        )

    def apply(self, plan: Plan) -> dict[str, Any]:
        return self._set(plan.params["breaker"], plan.params["hold"], "apply")

    def rollback(self, plan: Plan) -> dict[str, Any]:
        breaker, found, applied = plan.params["breaker"], plan.undo["hold"], plan.params["hold"]
        if applied == "tripped" and found == "released":
            found = "closed_again"  # it was closed: a release would leave it open
        elif applied != "tripped" and found == "tripped":
            found = "reopened"  # it was open: end the hold, then open it again
        return self._set(breaker, found, "rollback")

    def _set(self, breaker: str, hold: str, step: str) -> dict[str, Any]:
        before = self.control.state(breaker).state
        reason = f"{self.name} {step}"
        if hold == "released":
            after = self.control.release(breaker, self.actor, reason).state
        elif hold == "tripped":
            after = self.control.trip(breaker, self.actor, reason).state
        elif hold == "closed_again":
            after = self.control.close(breaker, self.actor, reason).state
        elif hold == "reopened":
            self.control.release(breaker, self.actor, reason)
            after = self.control.trip(breaker, self.actor, reason).state
        else:
            after = self.control.hold(breaker, _HELD[hold], self.actor, reason).state
        return {"changed": after is not before, "breaker": breaker, "state": str(after)}
