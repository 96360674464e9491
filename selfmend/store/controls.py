"""Live settings the application reads, and the kill switches every apply reads first.

Both live in the store, not in worker memory: they survive restarts and every process sees the
same value (Celery's ``revoke`` does not survive a restart; these do).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from selfmend.store.tables import controls, kill_switches

GLOBAL = "*"

_UNSET = object()


class ControlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._upsert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    def get(self, key: str, default: Any = None) -> Any:
        with self.engine.connect() as connection:
            row = connection.execute(select(controls.c.value).where(controls.c.key == key)).first()
        return default if row is None else row[0]

    def exists(self, key: str) -> bool:
        return self.get(key, _UNSET) is not _UNSET

    def set(self, key: str, value: Any, actor: str) -> None:
        values = {"key": key, "value": value, "updated_by": actor, "updated_at": time.time()}
        statement = self._upsert(controls).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=["key"], set_={k: v for k, v in values.items() if k != "key"}
        )
        with self.engine.begin() as connection:
            connection.execute(statement)

    def delete(self, key: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(controls.delete().where(controls.c.key == key))

    def all(self) -> dict[str, Any]:
        with self.engine.connect() as connection:
            return dict(connection.execute(select(controls.c.key, controls.c.value)).all())

    def kill_switch(self, action: str | None = None) -> bool:
        """On if the global switch is on, or the one for ``action``."""
        scopes = [GLOBAL] if action is None else [GLOBAL, action]
        query = select(kill_switches.c.enabled).where(kill_switches.c.scope.in_(scopes))
        with self.engine.connect() as connection:
            return any(connection.scalars(query))

    def set_kill_switch(self, enabled: bool, actor: str, reason: str, scope: str = GLOBAL) -> None:
        values = {
            "scope": scope,
            "enabled": enabled,
            "actor": actor,
            "reason": reason,
            "updated_at": time.time(),
        }
        statement = (
            self._upsert(kill_switches)
            .values(**values)
            .on_conflict_do_update(
                index_elements=["scope"], set_={k: v for k, v in values.items() if k != "scope"}
            )
        )
        with self.engine.begin() as connection:
            connection.execute(statement)
