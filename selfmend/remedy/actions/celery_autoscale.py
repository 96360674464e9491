"""celery_autoscale: move the limits of the workers' autoscalers (``--autoscale=max,min``).

More headroom for a backlog that comes in bursts, or a lower ceiling for workers that starve
their host. Only workers started with an autoscaler answer; each limit moves by at most
``MAX_STEP`` processes per apply. Undo restores each node's limits. Medium risk.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfmend.errors import ActionError, StepTooLarge
from selfmend.models import Risk
from selfmend.remedy.actions.celery_ports import WorkerPools, reached, refused
from selfmend.remedy.base import Plan, parse_params

MAX_STEP = 4


class AutoscaleParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    maximum: int = Field(ge=1, le=256)
    minimum: int = Field(ge=0, le=256)
    destination: list[str] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> AutoscaleParams:
        if self.minimum > self.maximum:
            raise ValueError(f"minimum ({self.minimum}) exceeds maximum ({self.maximum})")
        return self


class CeleryAutoscale:
    name = "celery_autoscale"
    params_model = AutoscaleParams
    risk = Risk.MEDIUM
    reversible = True

    def __init__(self, pools: WorkerPools | None) -> None:
        self._pools = pools

    @property
    def pools(self) -> WorkerPools:
        return reached(self._pools, self.name)

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(AutoscaleParams, self.name, params)
        limits = self.pools.autoscale_limits(parsed.destination)
        if not limits:
            raise ActionError(f"{self.name}: no worker that answered runs an autoscaler")
        for node, (maximum, minimum) in limits.items():
            step = max(abs(parsed.maximum - maximum), abs(parsed.minimum - minimum))
            if step > MAX_STEP:
                raise StepTooLarge(
                    f"{self.name}: {node} would move by {step} processes "
                    f"(from max={maximum} min={minimum}); at most {MAX_STEP} per apply"
                )
        nodes = sorted(limits)
        return Plan(
            self.name,
            ",".join(nodes),
            {"maximum": parsed.maximum, "minimum": parsed.minimum, "destination": nodes},
            {"limits": {node: list(pair) for node, pair in limits.items()}},
            f"autoscale {', '.join(nodes)} to max={parsed.maximum} min={parsed.minimum}",
        )

    def apply(self, plan: Plan) -> dict[str, Any]:
        wanted = (plan.params["maximum"], plan.params["minimum"])
        limits = self.pools.autoscale_limits(plan.params["destination"])
        pending = sorted(node for node, pair in limits.items() if tuple(pair) != wanted)
        if not pending:
            return {"changed": False, "limits": limits}
        refused(self.name, self.pools.autoscale(*wanted, pending), "autoscale")
        return {"changed": True, "nodes": pending}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        before = {node: tuple(pair) for node, pair in plan.undo["limits"].items()}
        limits = self.pools.autoscale_limits(sorted(before))
        restored = []
        for node, pair in sorted(before.items()):
            if tuple(limits.get(node, ())) != pair:
                refused(self.name, self.pools.autoscale(*pair, [node]), "restore autoscaling")
                restored.append(node)
        return {"changed": bool(restored), "nodes": restored}
