"""feature_flag: dial the share of users a feature flag is on for (``selfmend.flags``).

Turning a feature off is the fix when the feature is what broke; turning one up is a rollout
step. The share moves by at most ``max_step`` points an apply, and only for a flag the
application has read (an unknown name is refused, not created). Undo restores the old value.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from selfmend.errors import ActionError, StepTooLarge
from selfmend.flags import control_key, share, stored
from selfmend.models import Risk
from selfmend.remedy.base import Plan, parse_params
from selfmend.store.controls import ControlStore

_MISSING = object()


class FeatureFlagParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=190, pattern=r"^[A-Za-z0-9_.:-]+$")
    percent: float = Field(ge=0, le=100, description="The share of units it is on for.")
    max_step: float = Field(100.0, gt=0, le=100, description="Points one apply may move it.")


class FeatureFlag:
    name = "feature_flag"
    params_model = FeatureFlagParams
    risk = Risk.MEDIUM
    reversible = True

    def __init__(self, controls: ControlStore, actor: str = "selfmend") -> None:
        self.controls = controls
        self.actor = actor

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(FeatureFlagParams, self.name, params)
        key = control_key(parsed.name)
        current = self.controls.get(key, _MISSING)
        if current is _MISSING:
            raise ActionError(f"{self.name}: no flag {parsed.name}: the application never read it")
        before = share(parsed.name, current)
        if abs(parsed.percent - before) > parsed.max_step:
            raise StepTooLarge(
                f"{self.name}: {parsed.name} from {before:g} % to {parsed.percent:g} % exceeds "
                f"max_step {parsed.max_step:g}"
            )
        return Plan(
            self.name,
            parsed.name,
            {"key": key, "value": stored(parsed.percent)},
            {"value": current},
            f"turn flag {parsed.name} from {before:g} % to {parsed.percent:g} % of units",
        )

    def apply(self, plan: Plan) -> dict[str, Any]:
        key, value = plan.params["key"], plan.params["value"]
        changed = self.controls.get(key) != value
        if changed:
            self.controls.set(key, value, self.actor)
        return {"changed": changed, "key": key, "value": value}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        self.controls.set(plan.params["key"], plan.undo["value"], self.actor)
        return {"key": plan.params["key"], "restored": plan.undo["value"]}
