"""The allow-list of actions: a pattern may name only an action registered here."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

from selfmend.errors import ConfigurationError
from selfmend.remedy.base import Action


class Catalogue:
    def __init__(self, actions: Iterable[Action]) -> None:
        self._actions: dict[str, Action] = {}
        for action in actions:
            if action.name in self._actions:
                raise ConfigurationError(f"two actions are named {action.name!r}")
            self._actions[action.name] = action

    def get(self, name: str) -> Action:
        try:
            return self._actions[name]
        except KeyError:
            raise ConfigurationError(
                f"unknown action {name!r}; known actions: {', '.join(sorted(self._actions))}"
            ) from None

    def __contains__(self, name: str) -> bool:
        return name in self._actions

    def names(self) -> list[str]:
        return sorted(self._actions)

    def params_models(self) -> dict[str, type[BaseModel] | None]:
        """Each action's parameter model (``params_model``), or None for an action that declares
        none: what a pattern's ``params`` are checked against when the patterns load."""
        return {
            name: getattr(action, "params_model", None) for name, action in self._actions.items()
        }
