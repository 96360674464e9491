"""breaker_thresholds: move a named circuit breaker's thresholds, a bounded step at a time.

A breaker that opens on a dependency's normal blips needs a higher threshold, one that stays
closed while the dependency drowns a lower one. The new values are overrides in the shared
state, laid over the settings the application declared, so every process takes them on its
next call. Each threshold moves by at most ``max_factor`` (up or down) per apply, and only a
threshold the breaker has can move (a count breaker gets no rate). Undo restores the overrides
the plan found. Low risk: bounded, and the breaker keeps protecting the service either way.

``tighten`` names thresholds to tighten by ``max_factor`` without knowing their values, so a
pattern can act on whichever breaker its incident names: lower counts, rates and seconds, so a
breaker that stayed closed while its dependency failed (or dragged) opens by itself and then
probes its recovery by itself. Named thresholds the breaker does not have are skipped (a
breaker has a count or a rate; ``timeout_seconds`` only if the application declared one, which
is also how selfmend knows the application reads it).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfmend.errors import ActionError, ConfigurationError, StepTooLarge
from selfmend.models import Risk
from selfmend.remedy.actions.breaker_force import BREAKER_NAME
from selfmend.remedy.base import Plan, parse_params
from selfmend.resilience.breaker.control import BreakerControl
from selfmend.resilience.breaker.settings import THRESHOLDS

Tightened = Literal["failure_threshold", "failure_rate", "slow_call_seconds", "timeout_seconds"]


def tightened(threshold: str, current: float, factor: float) -> float:
    """``current`` divided by ``factor``; a count rounds up, so it never moves further."""
    if threshold == "failure_threshold":
        return max(1, math.ceil(current / factor))
    return current / factor


class BreakerThresholdsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    breaker: str = Field(min_length=1, max_length=200, pattern=BREAKER_NAME)
    failure_threshold: int | None = Field(None, ge=1)
    failure_rate: float | None = Field(None, gt=0, le=1)
    slow_call_seconds: float | None = Field(None, gt=0)
    timeout_seconds: float | None = Field(None, gt=0)
    reset_timeout: float | None = Field(None, gt=0)
    tighten: list[Tightened] = Field(
        default_factory=list, description="Thresholds to divide by max_factor, if it has them."
    )
    max_factor: float = Field(2.0, gt=1, le=10, description="Largest ratio one apply may move.")

    @model_validator(mode="after")
    def _something_to_move(self) -> BreakerThresholdsParams:
        if not self.changes() and not self.tighten:
            raise ValueError(f"give at least one of {', '.join(THRESHOLDS)}, or tighten")
        return self

    def changes(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in THRESHOLDS if getattr(self, name) is not None}


class BreakerThresholds:
    name = "breaker_thresholds"
    params_model = BreakerThresholdsParams
    risk = Risk.LOW
    reversible = True

    def __init__(self, control: BreakerControl) -> None:
        self.control = control

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(BreakerThresholdsParams, self.name, params)
        try:
            in_force = self.control.in_force(parsed.breaker).model_dump()
        except ConfigurationError as error:
            raise ActionError(f"{self.name}: {error}") from None
        changes = {**self._tightened(parsed, in_force), **parsed.changes()}
        for threshold, value in changes.items():
            self._check_step(parsed, threshold, in_force[threshold], value)
        before = self.control.settings(parsed.breaker).overrides
        overrides = {**before, **changes}
        try:
            self.control.check_overrides(parsed.breaker, overrides)
        except ConfigurationError as error:
            raise ActionError(f"{self.name}: {error}") from None
        moves = ", ".join(f"{k} {in_force[k]:g} → {v:g}" for k, v in changes.items())
        return Plan(
            self.name,
            parsed.breaker,
            {"breaker": parsed.breaker, "overrides": overrides},
            {"overrides": before},
            f"breaker {parsed.breaker}: {moves}",
        )

    def _tightened(
        self, params: BreakerThresholdsParams, in_force: dict[str, Any]
    ) -> dict[str, float]:
        """The ``tighten`` thresholds the breaker has, each divided by ``max_factor``; refused
        when none of them can move."""
        moves = {
            name: tightened(name, in_force[name], params.max_factor)
            for name in params.tighten
            if in_force[name] is not None
        }
        moves = {name: value for name, value in moves.items() if value != in_force[name]}
        if params.tighten and not moves:
            raise ActionError(
                f"{self.name}: breaker {params.breaker} has none of {', '.join(params.tighten)} "
                "left to tighten"
            )
        return moves

    def _check_step(
        self, params: BreakerThresholdsParams, threshold: str, current: float | None, value: float
    ) -> None:
        if current is None:
            raise ActionError(
                f"{self.name}: breaker {params.breaker} has no {threshold} to move; "
                "its application declares the kind of threshold it uses"
            )
        ratio = max(value / current, current / value)
        if ratio > params.max_factor:
            raise StepTooLarge(
                f"{self.name}: {threshold} {current:g} → {value:g} moves by a factor of "
                f"{ratio:.3g}, over max_factor {params.max_factor:g} for breaker {params.breaker}"
            )

    def apply(self, plan: Plan) -> dict[str, Any]:
        return self._set(plan.params["breaker"], plan.params["overrides"])

    def rollback(self, plan: Plan) -> dict[str, Any]:
        return self._set(plan.params["breaker"], plan.undo["overrides"])

    def _set(self, breaker: str, overrides: dict[str, Any]) -> dict[str, Any]:
        if self.control.settings(breaker).overrides == overrides:
            return {"changed": False, "breaker": breaker, "overrides": overrides}
        self.control.set_overrides(breaker, overrides)
        return {"changed": True, "breaker": breaker, "overrides": overrides}
