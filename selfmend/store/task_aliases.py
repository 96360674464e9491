"""Task aliases: a wrong task name → the registered task its messages should run.

Kept as live settings under the reserved ``selfmend.task_alias.`` prefix (one row per alias, so
two aliases never race on one value, and ``set_control`` cannot touch them). The application's
workers read them (``selfmend_celery.task_aliases``); ``selfmend status`` lists them.
"""

from __future__ import annotations

from typing import Any

from selfmend.store.controls import ControlStore

PREFIX = "selfmend.task_alias."
# The controls key holds 200 characters; the prefix takes the rest.
MAX_NAME_LENGTH = 200 - len(PREFIX)


class TaskAliasStore:
    def __init__(self, controls: ControlStore) -> None:
        self.controls = controls

    def get(self, name: str) -> Any:
        return self.controls.get(PREFIX + name)

    def set(self, name: str, target: str, actor: str) -> None:
        self.controls.set(PREFIX + name, target, actor)

    def delete(self, name: str, actor: str) -> None:
        self.controls.delete(PREFIX + name, actor)

    def all(self) -> dict[str, Any]:
        """Every alias as stored; a worker routes only to a name it has registered."""
        return {
            key.removeprefix(PREFIX): target
            for key, target in self.controls.all().items()
            if key.startswith(PREFIX)
        }
