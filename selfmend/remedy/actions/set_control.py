"""set_control: change a live setting the application reads through ``client.control``.

A setting is set to a value, or moved by a numeric ``delta`` clamped to ``minimum``/``maximum``
and bounded by ``max_step``. Undo restores the old value, or removes a setting that was unset.

Only a setting some application read within ``lookback_seconds`` (its client reports the keys
it reads) is changed: setting one nobody reads changes nothing, and would pass for a fix while
the fault goes on. The plan refuses it, so the next candidate fix is tried or a person told.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfmend.errors import ActionError, StepTooLarge
from selfmend.models import Risk
from selfmend.remedy.base import Plan, parse_params
from selfmend.store.controls import ControlStore
from selfmend.store.settings_read import SettingsReadStore

RESERVED_PREFIX = "selfmend."
_MISSING = object()


class SetControlParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")
    value: Any = None
    delta: float | None = Field(None, allow_inf_nan=False)
    minimum: float | None = None
    maximum: float | None = None
    max_step: float = Field(50.0, gt=0, description="Largest change one apply may make.")

    @model_validator(mode="after")
    def _value_or_delta(self) -> SetControlParams:
        if (self.delta is None) == ("value" not in self.model_fields_set):
            raise ValueError("give exactly one of value or delta")
        if self.key.startswith(RESERVED_PREFIX):
            raise ValueError(f"keys under {RESERVED_PREFIX!r} are selfmend's own")
        return self


class SetControl:
    name = "set_control"
    params_model = SetControlParams
    risk = Risk.LOW
    reversible = True

    def __init__(
        self,
        controls: ControlStore,
        settings_read: SettingsReadStore,
        *,
        lookback_seconds: float,
        actor: str = "selfmend",
    ) -> None:
        self.controls = controls
        self.settings_read = settings_read
        self.lookback_seconds = lookback_seconds
        self.actor = actor

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(SetControlParams, self.name, params)
        self._check_read(parsed.key)
        current = self.controls.get(parsed.key, _MISSING)
        target_value = self._target_value(parsed, current)
        undo = {"existed": False} if current is _MISSING else {"existed": True, "value": current}
        shown = "unset" if current is _MISSING else repr(current)
        return Plan(
            self.name,
            parsed.key,
            {"key": parsed.key, "value": target_value},
            undo,
            f"set {parsed.key} from {shown} to {target_value!r}",
        )

    def _check_read(self, key: str) -> None:
        last_read = self.settings_read.last_read(key)
        if last_read is None or last_read < time.time() - self.lookback_seconds:
            hours = self.lookback_seconds / 3600
            when = "ever" if last_read is None else f"in the last {hours:g} h"
            raise ActionError(
                f"{self.name}: no application reads {key} (no client reported reading it "
                f"{when}), so changing it would change nothing"
            )

    def _target_value(self, params: SetControlParams, current: Any) -> Any:
        if params.delta is None:
            return params.value
        if current is _MISSING or isinstance(current, bool) or not isinstance(current, int | float):
            raise ActionError(
                f"{self.name}: control {params.key} holds no number to move "
                f"(it is {'unset' if current is _MISSING else repr(current)})"
            )
        if abs(params.delta) > params.max_step:
            raise StepTooLarge(
                f"{self.name}: delta {params.delta:g} exceeds max_step "
                f"{params.max_step:g} for {params.key}"
            )
        moved = current + params.delta
        if params.minimum is not None:
            moved = max(moved, params.minimum)
        if params.maximum is not None:
            moved = min(moved, params.maximum)
        return type(current)(moved) if isinstance(current, int) else moved

    def apply(self, plan: Plan) -> dict[str, Any]:
        key, value = plan.params["key"], plan.params["value"]
        if self.controls.get(key, _MISSING) == value:
            return {"changed": False, "key": key, "value": value}
        self.controls.set(key, value, self.actor)
        return {"changed": True, "key": key, "value": value}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        key = plan.params["key"]
        if plan.undo["existed"]:
            self.controls.set(key, plan.undo["value"], self.actor)
            return {"key": key, "restored": plan.undo["value"]}
        self.controls.delete(key, self.actor)
        return {"key": key, "restored": None, "removed": True}
