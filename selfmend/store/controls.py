"""Live settings the application reads, and the kill switches every apply reads first.

Both live in the store, not in worker memory: they survive restarts and every process sees the
same value (Celery's ``revoke`` does not survive a restart; these do).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, bindparam, func, or_, select

from selfmend.store.engine import reads
from selfmend.store.tables import controls, kill_switches
from selfmend.store.upsert import insert_or_update, replacing

GLOBAL = "*"

_UNSET = object()
# Built once: every remediation reads a setting and the kill switches.
_VALUE = select(controls.c.value).where(controls.c.key == bindparam("key"))
# How many switches are on: the global one, or (``ACTION_SWITCHES_ON``) the global one and the
# action's own. Equalities rather than an expanding IN, which is rendered at every execution.
_ON = select(func.count()).select_from(kill_switches).where(kill_switches.c.enabled.is_(True))
_GLOBAL_SWITCHES_ON = _ON.where(kill_switches.c.scope == GLOBAL)
ACTION_SWITCHES_ON = _ON.where(
    or_(kill_switches.c.scope == GLOBAL, kill_switches.c.scope == bindparam("action"))
)


class ControlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)
        self._set = insert_or_update(
            controls, ["key"], replacing(["value", "updated_by", "updated_at"])
        )
        self._switch = insert_or_update(
            kill_switches, ["scope"], replacing(["enabled", "actor", "reason", "updated_at"])
        )

    def get(self, key: str, default: Any = None) -> Any:
        with self.reads.connect() as connection:
            row = connection.execute(_VALUE, {"key": key}).first()
        return default if row is None else row[0]

    def exists(self, key: str) -> bool:
        return self.get(key, _UNSET) is not _UNSET

    def set(self, key: str, value: Any, actor: str) -> None:
        values = {"key": key, "value": value, "updated_by": actor, "updated_at": time.time()}
        with self.engine.begin() as connection:
            connection.execute(self._set, values)

    def delete(self, key: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(controls.delete().where(controls.c.key == key))

    def all(self) -> dict[str, Any]:
        with self.reads.connect() as connection:
            return dict(connection.execute(select(controls.c.key, controls.c.value)).all())

    def kill_switch(self, action: str | None = None) -> bool:
        """On if the global switch is on, or the one for ``action``."""
        query = _GLOBAL_SWITCHES_ON if action is None else ACTION_SWITCHES_ON
        with self.reads.connect() as connection:
            return connection.execute(query, {"action": action}).scalar_one() > 0

    def set_kill_switch(self, enabled: bool, actor: str, reason: str, scope: str = GLOBAL) -> None:
        values = {
            "scope": scope,
            "enabled": enabled,
            "actor": actor,
            "reason": reason,
            "updated_at": time.time(),
        }
        with self.engine.begin() as connection:
            connection.execute(self._switch, values)
