"""User actions, registered through the ``selfmend.actions`` entry point group.

A distribution of the application's declares, in its pyproject.toml::

    [project.entry-points."selfmend.actions"]
    purge_cdn = "shop.ops:PurgeCDN"

The object is called with selfmend's store and returns the action (a class whose ``__init__``
takes the store is such a callable). Each is checked when the workers start: it must have the
entry point's name, a ``Risk``, ``reversible`` and plan / apply / rollback, and may not take a
built-in's name.
Patterns then name it like any other action, and it passes the same gate.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points

from selfmend.errors import ConfigurationError
from selfmend.models import Risk
from selfmend.remedy.base import Action
from selfmend.store import Store

ENTRY_POINT_GROUP = "selfmend.actions"
ActionFactory = Callable[[Store], Action]
_METHODS = ("plan", "apply", "rollback")


def plugin_actions(store: Store) -> list[Action]:
    return [_load(entry_point, store) for entry_point in entry_points(group=ENTRY_POINT_GROUP)]


def _load(entry_point: EntryPoint, store: Store) -> Action:
    where = f"entry point {entry_point.name!r} ({entry_point.value}) in {ENTRY_POINT_GROUP}"
    try:
        action = entry_point.load()(store)
    except Exception as error:
        raise ConfigurationError(f"{where}: could not load: {error}") from error
    if getattr(action, "name", None) != entry_point.name:
        raise ConfigurationError(
            f"{where}: the action's name is {getattr(action, 'name', None)!r}; it must be "
            f"{entry_point.name!r}, the name patterns use"
        )
    if not isinstance(getattr(action, "risk", None), Risk):
        raise ConfigurationError(
            f"{where}: risk must be a selfmend.models.Risk ({', '.join(Risk)})"
        )
    if not isinstance(getattr(action, "reversible", None), bool):
        raise ConfigurationError(f"{where}: reversible must be True or False")
    missing = [method for method in _METHODS if not callable(getattr(action, method, None))]
    if missing:
        raise ConfigurationError(f"{where}: no {', '.join(missing)} method")
    return action
