"""celery_pool_restart: replace the workers' pool processes, the fix for memory that only grows.

A leak in a task or a library a task loads grows each process until the host swaps or the
kernel kills one mid-task. Restarting the pool gives fresh processes; each finishes its current
task first, and one blocked waiting for work may stay until its next task, so a quiet worker's
pool is replaced as work arrives. The workers must allow it (``worker_pool_restarts = True`` in
their Celery config); the application's workers are reached on their own broker
(``SELFMEND_MONITOR_CELERY_BROKER_URL``). The old processes are gone, so it is not reversible;
medium risk, one node list per apply.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from selfmend.errors import ActionError
from selfmend.models import Risk
from selfmend.remedy.actions.celery_ports import WorkerPools, reached, refused
from selfmend.remedy.base import Plan, parse_params


class PoolRestartParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: list[str] | None = Field(None, description="Worker nodes; every one if unset.")


class CeleryPoolRestart:
    name = "celery_pool_restart"
    params_model = PoolRestartParams
    risk = Risk.MEDIUM
    reversible = False

    def __init__(self, pools: WorkerPools | None) -> None:
        self._pools = pools

    @property
    def pools(self) -> WorkerPools:
        return reached(self._pools, self.name)

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(PoolRestartParams, self.name, params)
        processes = self.pools.pool_processes(parsed.destination)
        if not processes:
            raise ActionError(f"{self.name}: no worker answered, so there is no pool to restart")
        nodes = sorted(processes)
        return Plan(
            self.name,
            ",".join(nodes),
            {"destination": nodes, "processes": processes},
            {},
            f"restart the pools of {', '.join(nodes)} (processes {processes})",
        )

    def apply(self, plan: Plan) -> dict[str, Any]:
        planned: dict[str, list[int]] = plan.params["processes"]
        now = self.pools.pool_processes(plan.params["destination"])
        pending = sorted(node for node, pids in now.items() if set(pids) & set(planned[node]))
        if not pending:  # every process the plan saw is gone already
            return {"changed": False, "processes": now}
        refused(self.name, self.pools.restart_pools(pending), "restart their pools")
        return {"changed": True, "nodes": pending}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        return {"changed": False, "reversible": False}
