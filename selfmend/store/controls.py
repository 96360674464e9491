"""Live settings the application reads, and the kill switches every apply reads first.

Both live in the store, not in worker memory: they survive restarts and every process sees the
same value (Celery's ``revoke`` does not survive a restart; these do). Every set and delete
appends a ``control_changes`` row in the same transaction: who, the old value and the new.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, or_, select

from selfmend.store.engine import reads
from selfmend.store.tables import control_changes, controls, kill_switches
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
_SWITCH = select(kill_switches.c.enabled).where(kill_switches.c.scope == bindparam("scope"))


@dataclass(frozen=True)
class ControlChange:
    """One change of a live setting (``kind`` control), a kill switch (``kind`` kill_switch) or
    a series' sensitivity (``kind`` sensitivity, ``key`` the series' key): ``old`` None when it
    was not set, ``new`` None when it was deleted."""

    kind: str
    key: str
    old: Any
    new: Any
    actor: str
    reason: str | None
    created_at: float


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
        now = time.time()
        values = {"key": key, "value": value, "updated_by": actor, "updated_at": now}
        with self.engine.begin() as connection:
            old = connection.execute(_VALUE, {"key": key}).first()
            connection.execute(self._set, values)
            record_change(connection, "control", key, old and old[0], value, actor, None, now)

    def delete(self, key: str, actor: str) -> None:
        """Remove a setting, as ``actor``; deleting one that is not set records nothing."""
        with self.engine.begin() as connection:
            old = connection.execute(_VALUE, {"key": key}).first()
            if old is None:
                return
            connection.execute(controls.delete().where(controls.c.key == key))
            record_change(connection, "control", key, old[0], None, actor, None, time.time())

    def all(self) -> dict[str, Any]:
        with self.reads.connect() as connection:
            return dict(connection.execute(select(controls.c.key, controls.c.value)).all())

    def kill_switch(self, action: str | None = None) -> bool:
        """On if the global switch is on, or the one for ``action``."""
        query = _GLOBAL_SWITCHES_ON if action is None else ACTION_SWITCHES_ON
        with self.reads.connect() as connection:
            return connection.execute(query, {"action": action}).scalar_one() > 0

    def set_kill_switch(self, enabled: bool, actor: str, reason: str, scope: str = GLOBAL) -> None:
        now = time.time()
        values = {
            "scope": scope,
            "enabled": enabled,
            "actor": actor,
            "reason": reason,
            "updated_at": now,
        }
        with self.engine.begin() as connection:
            old = connection.execute(_SWITCH, {"scope": scope}).first()
            connection.execute(self._switch, values)
            record_change(
                connection, "kill_switch", scope, old and old[0], enabled, actor, reason, now
            )

    def changes(
        self, key: str | None = None, limit: int = 100, kind: str | None = None
    ) -> list[ControlChange]:
        """The latest changes, newest first: of everything, or of ``key`` and of ``kind`` (a
        setting, a switch's scope and a series may share a key)."""
        query = select(control_changes).order_by(control_changes.c.id.desc()).limit(limit)
        if key is not None:
            query = query.where(control_changes.c.key == key)
        if kind is not None:
            query = query.where(control_changes.c.kind == kind)
        with self.reads.connect() as connection:
            return [
                ControlChange(
                    row.kind, row.key, row.old, row.new, row.actor, row.reason, row.created_at
                )
                for row in connection.execute(query)
            ]


def record_change(
    connection: Connection,
    kind: str,
    key: str,
    old: Any,
    new: Any,
    actor: str,
    reason: str | None,
    at: float,
) -> None:
    """Append the audit row of a change in the caller's transaction, which makes the change."""
    connection.execute(
        control_changes.insert(),
        {
            "kind": kind,
            "key": key,
            "old": old,
            "new": new,
            "actor": actor,
            "reason": reason,
            "created_at": at,
        },
    )
