"""task_alias: route messages sent under a wrong task name to the registered task they meant.

The integration check (``selfmend.detect.task_names``) proposes the parameters. The alias is
stored (``TaskAliasStore``) and the application's workers pick it up within seconds
(``selfmend_celery.task_aliases``). It changes which code a message runs, so the risk is high
and a person approves it. Only a name some worker has registered may be the target, and a name
a worker has registered is never shadowed; the worker checks both again before routing.
Undo restores the alias that was there before, or removes it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from selfmend.detect.task_names import TaskRegistry
from selfmend.errors import ActionError
from selfmend.models import Risk
from selfmend.remedy.base import Plan, parse_params
from selfmend.store.task_aliases import MAX_NAME_LENGTH, TaskAliasStore

TASK_NAME = r"^[A-Za-z_][A-Za-z0-9_.:-]*$"


class TaskAliasParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=TASK_NAME)
    target: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=TASK_NAME)

    @model_validator(mode="after")
    def _two_names(self) -> TaskAliasParams:
        if self.name == self.target:
            raise ValueError("name and target are the same task name")
        return self


class TaskAlias:
    name = "task_alias"
    params_model = TaskAliasParams
    risk = Risk.HIGH
    reversible = True

    def __init__(
        self, aliases: TaskAliasStore, registry: TaskRegistry | None, actor: str = "selfmend"
    ) -> None:
        self.aliases = aliases
        self._registry = registry
        self.actor = actor

    @property
    def registry(self) -> TaskRegistry:
        if self._registry is None:
            raise ActionError(f"{self.name}: no Celery app is wired in to see the registered tasks")
        return self._registry

    def plan(self, params: dict[str, Any]) -> Plan:
        parsed = parse_params(TaskAliasParams, self.name, params)
        self._check_registered(parsed)
        previous = self.aliases.get(parsed.name)
        shown = "" if previous is None else f" (was {previous})"
        return Plan(
            self.name,
            parsed.name,
            {"name": parsed.name, "target": parsed.target},
            {"previous": previous},
            f"route task name {parsed.name} to registered task {parsed.target}{shown}",
        )

    def _check_registered(self, params: TaskAliasParams) -> None:
        registered = self.registry.registered()
        if not registered:
            raise ActionError(f"{self.name}: no worker answered, so no task is known to alias to")
        shadowing = sorted(node for node, names in registered.items() if params.name in names)
        if shadowing:
            raise ActionError(
                f"{self.name}: {params.name} is a registered task on {', '.join(shadowing)}; "
                "an alias would never be used"
            )
        if not any(params.target in names for names in registered.values()):
            raise ActionError(
                f"{self.name}: no worker has registered {params.target}; an alias may only "
                f"point at a registered task (workers asked: {', '.join(sorted(registered))})"
            )

    def apply(self, plan: Plan) -> dict[str, Any]:
        name, target = plan.params["name"], plan.params["target"]
        if self.aliases.get(name) == target:
            return {"changed": False, "name": name, "target": target}
        self.aliases.set(name, target, self.actor)
        return {"changed": True, "name": name, "target": target}

    def rollback(self, plan: Plan) -> dict[str, Any]:
        name, previous = plan.params["name"], plan.undo["previous"]
        if self.aliases.get(name) == previous:
            return {"changed": False, "name": name, "target": previous}
        if previous is None:
            self.aliases.delete(name, self.actor)
        else:
            self.aliases.set(name, previous, self.actor)
        return {"changed": True, "name": name, "target": previous}
