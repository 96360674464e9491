"""Which live settings the applications read, and when one last did.

The client reports the keys its application asked ``client.control`` for; the push ingest
records them here. ``set_control`` asks before it changes a setting: a setting no application
reads changes nothing when it is set, so a fix through it would only look applied.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Engine, bindparam, select

from selfmend.store.engine import reads
from selfmend.store.tables import settings_read
from selfmend.store.upsert import insert_or_update

_LAST_READ = select(settings_read.c.last_read_at).where(settings_read.c.key == bindparam("key"))


class SettingsReadStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)
        # Reports may arrive out of order (a batch sent again later): the latest read wins.
        self._record = insert_or_update(
            settings_read,
            ["key"],
            {
                "last_read_at": "CASE WHEN excluded.last_read_at > old.last_read_at "
                "THEN excluded.last_read_at ELSE old.last_read_at END"
            },
        )

    def record(self, reports: Iterable[tuple[Iterable[str], float]], connection: Connection) -> int:
        """Store ``(keys, read at)`` reports in the caller's transaction; returns the keys."""
        latest: dict[str, float] = {}
        for keys, at in reports:
            for key in keys:
                latest[key] = max(at, latest.get(key, at))
        if latest:
            rows = [{"key": key, "last_read_at": at} for key, at in sorted(latest.items())]
            connection.execute(self._record, rows)
        return len(latest)

    def last_read(self, key: str) -> float | None:
        """When an application last read ``key``, or None if none ever reported it."""
        with self.reads.connect() as connection:
            return connection.execute(_LAST_READ, {"key": key}).scalar_one_or_none()
