"""celery_pool: grow or shrink the worker pools by broadcasting ``pool_grow`` / ``pool_shrink``.

The pools are reached through the ``WorkerPools`` port (``celery_ports``). Undo reverses the
change.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfmend.errors import ActionError
from selfmend.models import Risk
from selfmend.remedy.actions.celery_ports import WorkerPools, reached, refused
from selfmend.remedy.base import Plan, parse_params

MAX_STEP = 4


class CeleryPoolParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grow: int = Field(0, ge=0, le=MAX_STEP)
    shrink: int = Field(0, ge=0, le=MAX_STEP)
    destination: list[str] | None = None
    minimum: int = Field(1, ge=1, description="Never shrink a pool below this.")

    @model_validator(mode="after")
    def _one_direction(self) -> CeleryPoolParams:
        if (self.grow > 0) == (self.shrink > 0):
            raise ValueError(f"give exactly one of grow or shrink, from 1 to {MAX_STEP}")
        return self


class CeleryPool:
    name = "celery_pool"
    params_model = CeleryPoolParams
    risk = Risk.MEDIUM
    reversible = True

    def __init__(self, pools: WorkerPools | None) -> None:
        self._pools = pools

    @property
    def pools(self) -> WorkerPools:
        return reached(self._pools, self.name)

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(CeleryPoolParams, self.name, params)
        sizes = self.pools.sizes(parsed.destination)
        if not sizes:
            raise ActionError(f"{self.name}: no worker answered, so there is no pool to resize")
        delta = parsed.grow or -parsed.shrink
        if delta < 0 and min(sizes.values()) + delta < parsed.minimum:
            raise ActionError(
                f"{self.name}: shrinking by {-delta} would leave a pool below "
                f"{parsed.minimum} (sizes {sizes})"
            )
        nodes = sorted(sizes)
        expected = {node: size + delta for node, size in sizes.items()}
        return Plan(
            self.name,
            ",".join(nodes),
            {"delta": delta, "destination": nodes, "expected": expected},
            {"delta": -delta, "destination": nodes, "sizes": sizes},
            f"{'grow' if delta > 0 else 'shrink'} pools of {', '.join(nodes)} by {abs(delta)}",
        )

    def apply(self, plan: Plan) -> dict[str, Any]:
        expected: dict[str, int] = plan.params["expected"]
        sizes = self.pools.sizes(plan.params["destination"])
        pending = [node for node, size in sizes.items() if size != expected.get(node)]
        if not pending:
            return {"changed": False, "sizes": sizes}
        return self._resize(plan.params["delta"], pending)

    def rollback(self, plan: Plan) -> dict[str, Any]:
        original: dict[str, int] = plan.undo["sizes"]
        sizes = self.pools.sizes(plan.undo["destination"])
        changed = [node for node, size in sizes.items() if size != original.get(node)]
        if not changed:
            return {"changed": False, "sizes": sizes}
        return self._resize(plan.undo["delta"], changed)

    def _resize(self, delta: int, nodes: list[str]) -> dict[str, Any]:
        refused(self.name, self.pools.resize(delta, nodes), "resize their pools")
        return {"changed": True, "delta": delta, "nodes": nodes}
