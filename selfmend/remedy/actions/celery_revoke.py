"""celery_revoke_stuck: stop tasks that have run longer than any of their kind should.

A task stuck on a dead connection holds a worker process forever. The plan lists the running
tasks of ``task`` (or any) started over ``older_than_seconds`` ago, at most ``max_tasks``,
oldest first; apply revokes exactly those with ``terminate``, so their processes are stopped
and replaced. A stopped task is not resumed (a late-acked one is delivered again by the broker,
as it would be after a crash): not reversible, medium risk.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from selfmend.models import Risk
from selfmend.remedy.actions.celery_ports import TaskControl, reached
from selfmend.remedy.actions.task_alias import TASK_NAME
from selfmend.remedy.base import Plan, parse_params


class RevokeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    older_than_seconds: float = Field(gt=0, allow_inf_nan=False)
    task: str | None = Field(None, max_length=200, pattern=TASK_NAME)
    max_tasks: int = Field(5, ge=1, le=20, description="Tasks one apply may stop at most.")
    destination: list[str] | None = None


class CeleryRevokeStuck:
    name = "celery_revoke_stuck"
    params_model = RevokeParams
    risk = Risk.MEDIUM
    reversible = False

    def __init__(self, tasks: TaskControl | None) -> None:
        self._tasks = tasks

    @property
    def tasks(self) -> TaskControl:
        return reached(self._tasks, self.name)

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(RevokeParams, self.name, params)
        stuck = self._stuck(parsed)
        listed = ", ".join(f"{t['name']} {t['id']} ({t['age']:.0f} s)" for t in stuck) or "none now"
        return Plan(
            self.name,
            parsed.task or "*",
            {**parsed.model_dump(), "tasks": stuck},
            {},
            f"stop tasks running over {parsed.older_than_seconds:g} s: {listed}",
        )

    def _stuck(self, params: RevokeParams) -> list[dict[str, Any]]:
        now = time.time()
        running = [
            {"id": task["id"], "name": task["name"], "node": node, "age": now - task["time_start"]}
            for node, tasks in self.tasks.active(params.destination).items()
            for task in tasks
            if params.task in (None, task["name"]) and task.get("time_start")
        ]
        old = [task for task in running if task["age"] > params.older_than_seconds]
        return sorted(old, key=lambda task: -task["age"])[: params.max_tasks]

    def apply(self, plan: Plan) -> dict[str, Any]:
        planned = {task["id"] for task in plan.params["tasks"]}
        running = {
            task["id"] for tasks in self.tasks.active(plan.params["destination"]).values()
            for task in tasks
        }  # fmt: skip
        still = sorted(planned & running)
        if not still:
            return {"changed": False, "stopped": []}
        self.tasks.revoke(still, terminate=True)
        return {"changed": True, "stopped": still}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        return {"changed": False, "reversible": False}
