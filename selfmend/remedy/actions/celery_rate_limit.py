"""celery_rate_limit: throttle one task on the workers (``rate_limit``), to spare what it calls.

A task that floods a database or an API is slowed to ``rate`` ("10/m", "2/s", "100/h") on the
workers that registered it. Undo puts back the limit each node had, or none. Medium risk: a
limit slows legitimate work too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from selfmend.errors import ActionError
from selfmend.models import Risk
from selfmend.remedy.actions.celery_ports import TaskControl, reached, refused
from selfmend.remedy.actions.task_alias import TASK_NAME
from selfmend.remedy.base import Plan, parse_params


class RateLimitParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=200, pattern=TASK_NAME)
    rate: str = Field(pattern=r"^[1-9][0-9]{0,5}/[smh]$", description="e.g. 10/m")
    destination: list[str] | None = None


class CeleryRateLimit:
    name = "celery_rate_limit"
    params_model = RateLimitParams
    risk = Risk.MEDIUM
    reversible = True

    def __init__(self, tasks: TaskControl | None) -> None:
        self._tasks = tasks

    @property
    def tasks(self) -> TaskControl:
        return reached(self._tasks, self.name)

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(RateLimitParams, self.name, params)
        before = self.tasks.rate_limits(parsed.task, parsed.destination)
        if not before:
            raise ActionError(f"{self.name}: no worker that answered has registered {parsed.task}")
        nodes = sorted(before)
        return Plan(
            self.name,
            parsed.task,
            {"task": parsed.task, "rate": parsed.rate, "destination": nodes},
            {"limits": before},
            f"rate-limit {parsed.task} to {parsed.rate} on {', '.join(nodes)}",
        )

    def apply(self, plan: Plan) -> dict[str, Any]:
        task, rate = plan.params["task"], plan.params["rate"]
        limits = self.tasks.rate_limits(task, plan.params["destination"])
        pending = sorted(node for node, limit in limits.items() if limit != rate)
        if not pending:
            return {"changed": False, "limits": limits}
        refused(self.name, self.tasks.set_rate_limit(task, rate, pending), "set the rate limit")
        return {"changed": True, "nodes": pending, "rate": rate}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        task, before = plan.params["task"], plan.undo["limits"]
        limits = self.tasks.rate_limits(task, sorted(before))
        restored = []
        for node, limit in sorted(before.items()):
            if limits.get(node) != limit:
                refused(self.name, self.tasks.set_rate_limit(task, limit, [node]), "restore it")
                restored.append(node)
        return {"changed": bool(restored), "nodes": restored, "limits": before}
