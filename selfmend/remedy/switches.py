"""Kill switches a person sets: the global one, or one action's.

A switch for an action the catalogue does not hold would stop nothing while saying it did, so
it is refused, naming the actions there are. The CLI and the admin API both come through here.
"""

from __future__ import annotations

from collections.abc import Collection

from selfmend.errors import ConfigurationError
from selfmend.store import Store
from selfmend.store.controls import GLOBAL


def set_kill_switch(
    store: Store,
    actions: Collection[str],
    enabled: bool,
    *,
    action: str | None,
    actor: str,
    reason: str,
) -> None:
    """Turn the switch of ``action`` (every action when None) on or off, as ``actor``."""
    if action is not None and action not in actions:
        raise ConfigurationError(
            f"kill switch action: unknown action {action!r}; known actions: "
            f"{', '.join(sorted(actions))}"
        )
    store.controls.set_kill_switch(enabled, actor=actor, reason=reason, scope=action or GLOBAL)
