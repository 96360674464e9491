"""Per-series sensitivities (``selfmend.sensitivity``): the value, who set it, why and
when, and the read the analyze pass makes of its shard's.

A change appends a ``control_changes`` row (kind ``sensitivity``, keyed by the series' key) in
its own transaction, as a live setting's or a kill switch's does: the audit log of who moved
a series' alarms, and from what.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, bindparam, select

from selfmend.errors import NotFound
from selfmend.sensitivity import DEFAULT
from selfmend.store.controls import record_change
from selfmend.store.engine import reads
from selfmend.store.samples import in_shard
from selfmend.store.tables import sensitivities, series
from selfmend.store.upsert import insert_or_update, replacing

KIND = "sensitivity"  # of its rows in control_changes

_SETTING = (
    select(
        series.c.id,
        sensitivities.c.sensitivity,
        sensitivities.c.set_by,
        sensitivities.c.reason,
        sensitivities.c.set_at,
    )
    .select_from(series.outerjoin(sensitivities, sensitivities.c.series_id == series.c.id))
    .where(series.c.key == bindparam("key"))
)


@dataclass(frozen=True)
class SensitivitySetting:
    """A series' sensitivity; ``set_by``, ``reason`` and ``set_at`` None while it is the default
    nobody set."""

    series: str
    sensitivity: float
    set_by: str | None
    reason: str | None
    set_at: float | None

    def describe(self) -> str:
        if self.set_at is None:
            return f"sensitivity {self.sensitivity:g} (the default)"
        when = datetime.fromtimestamp(self.set_at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"sensitivity {self.sensitivity:g}, set by {self.set_by} at {when}: {self.reason}"


class SensitivityStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)
        self._set = insert_or_update(
            sensitivities, ["series_id"], replacing(["sensitivity", "set_by", "reason", "set_at"])
        )

    def get(self, key: str) -> SensitivitySetting:
        """The setting of the series ``key``; ``NotFound`` when no such series was ever seen."""
        with self.reads.connect() as connection:
            row = connection.execute(_SETTING, {"key": key}).first()
        if row is None:
            raise NotFound(f"series {key!r} does not exist")
        if row.sensitivity is None:
            return SensitivitySetting(key, DEFAULT, None, None, None)
        return SensitivitySetting(key, row.sensitivity, row.set_by, row.reason, row.set_at)

    def set(self, key: str, value: float, actor: str, reason: str) -> SensitivitySetting:
        """Set the series' sensitivity and append its audit row, in one transaction. The value
        is not checked here: ``selfmend.sensitivity.set_sensitivity`` checks it."""
        now = time.time()
        with self.engine.begin() as connection:
            row = connection.execute(_SETTING, {"key": key}).first()
            if row is None:
                raise NotFound(f"series {key!r} does not exist")
            values = {
                "series_id": row.id,
                "sensitivity": value,
                "set_by": actor,
                "reason": reason,
                "set_at": now,
            }
            connection.execute(self._set, values)
            record_change(connection, KIND, key, row.sensitivity, value, actor, reason, now)
        return SensitivitySetting(key, value, actor, reason, now)

    def of_shard(self, shard: int = 0, shards: int = 1) -> dict[int, float]:
        """Series id → sensitivity of every series of the shard someone set one for: one query
        a pass, over a table that holds only those series."""
        query = select(sensitivities.c.series_id, sensitivities.c.sensitivity).where(
            in_shard(shard, shards, sensitivities.c.series_id)
        )
        with self.reads.connect() as connection:
            return dict(connection.execute(query).tuples().all())
