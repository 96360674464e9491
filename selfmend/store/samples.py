"""Samples and series: the batch write path and the reads the detectors and verifier use.

Writes go through ``insert`` in batches: COPY on PostgreSQL, executemany elsewhere — never one ORM
object per sample. Series ids are resolved once per process and cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    bindparam,
    func,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from selfmend.models import Anomaly, LogEvent, Sample
from selfmend.store.tables import anomalies, log_events, samples, series

_COPY_SAMPLES = "COPY samples (series_id, ts, value) FROM STDIN (FORMAT BINARY)"


@dataclass(frozen=True)
class SeriesCursor:
    """A series as the analyzer resumes it: where it stopped and the detector's saved state."""

    id: int
    key: str
    name: str
    labels: dict[str, str]
    analyzed_until: float
    detector_state: dict[str, Any] | None


@dataclass(frozen=True)
class NewPoints:
    timestamps: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class CursorUpdate:
    """Where a series' analysis now stands: the last point scored and the detector after it."""

    series_id: int
    key: str
    until: float
    state: dict[str, Any]


class SampleStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ids: dict[str, int] = {}
        self._postgres = engine.dialect.name == "postgresql"

    def insert(self, batch: Sequence[Sample], connection: Connection | None = None) -> int:
        """Append a batch of validated samples; returns how many were written."""
        if not batch:
            return 0
        if connection is None:
            with self.engine.begin() as own:
                return self.insert(batch, own)
        ids = self._series_ids(connection, batch)
        rows = [(ids[sample.key], sample.ts, sample.value) for sample in batch]
        self.insert_rows(rows, connection)
        return len(rows)

    def insert_rows(self, rows: Sequence[tuple[int, float, float]], connection: Connection) -> None:
        """The raw path: ``(series_id, ts, value)`` tuples whose series already exist."""
        if self._postgres:
            cursor = connection.connection.driver_connection.cursor()
            with cursor.copy(_COPY_SAMPLES) as copy:
                copy.set_types(["int4", "float8", "float8"])
                for row in rows:
                    copy.write_row(row)
        else:
            connection.execute(
                insert(samples),
                [{"series_id": sid, "ts": ts, "value": value} for sid, ts, value in rows],
            )

    def _series_ids(self, connection: Connection, batch: Sequence[Sample]) -> dict[str, int]:
        missing = {s.key: s for s in batch if s.key not in self._ids}
        if not missing:
            return self._ids
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        statement = (
            dialect_insert(series)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(series.c.key)
        )
        created = set(
            connection.scalars(
                statement,
                [
                    {"key": key, "name": s.series, "labels": s.labels, "analyzed_until": 0.0}
                    for key, s in missing.items()
                ],
            )
        )
        found = dict(
            connection.execute(
                select(series.c.key, series.c.id).where(series.c.key.in_(list(missing)))
            ).all()
        )
        # A series created in this transaction is cached only once seen committed: a rollback
        # must not leave an id behind that points nowhere.
        self._ids.update({key: id_ for key, id_ in found.items() if key not in created})
        return {**self._ids, **found}

    def insert_logs(self, events: Sequence[LogEvent], connection: Connection | None = None) -> int:
        if not events:
            return 0
        if connection is None:
            with self.engine.begin() as own:
                return self.insert_logs(events, own)
        connection.execute(insert(log_events), [event.model_dump() for event in events])
        return len(events)

    def window(
        self, key: str, since: float, until: float | None = None
    ) -> list[tuple[float, float]]:
        """``(ts, value)`` of one series with ``since < ts <= until``, oldest first."""
        query = (
            select(samples.c.ts, samples.c.value)
            .join(series, series.c.id == samples.c.series_id)
            .where(series.c.key == key, samples.c.ts > since)
            .order_by(samples.c.ts)
        )
        if until is not None:
            query = query.where(samples.c.ts <= until)
        with self.engine.connect() as connection:
            return [(ts, value) for ts, value in connection.execute(query)]

    def windows_by_name(self, name: str, since: float) -> dict[str, list[tuple[float, float]]]:
        """Every series called ``name`` (any labels): key → ``(ts, value)`` since ``since``."""
        query = self._series_points(series.c.key, series.c.name == name, since).order_by(
            series.c.key, "ts"
        )
        result: dict[str, list[tuple[float, float]]] = {}
        with self.engine.connect() as connection:
            for key, ts, value in connection.execute(query):
                result.setdefault(key, []).append((ts, value))
        return result

    def logs_since(self, since: float) -> list[LogEvent]:
        query = (
            select(log_events.c.ts, log_events.c.level, log_events.c.message, log_events.c.logger)
            .where(log_events.c.ts > since)
            .order_by(log_events.c.ts)
        )
        with self.engine.connect() as connection:
            return [
                LogEvent(ts=ts, level=level, message=message, logger=logger)
                for ts, level, message, logger in connection.execute(query)
            ]

    def cursors(self, shard: int = 0, shards: int = 1) -> list[SeriesCursor]:
        query = select(
            series.c.id,
            series.c.key,
            series.c.name,
            series.c.labels,
            series.c.analyzed_until,
            series.c.detector_state,
        )
        if shards > 1:
            query = query.where(series.c.id % shards == shard)
        with self.engine.connect() as connection:
            return [SeriesCursor(*row) for row in connection.execute(query.order_by(series.c.id))]

    def new_points(self, shard: int = 0, shards: int = 1) -> dict[int, NewPoints]:
        """Points each series of the shard received after its cursor, in one query.

        Rows are fetched as plain tuples straight into numpy: an analyze pass reads hundreds of
        thousands of them, and building a SQLAlchemy row for each costs more than the query.
        """
        in_shard = series.c.id % shards == shard if shards > 1 else true()
        query = self._series_points(series.c.id, in_shard, series.c.analyzed_until).order_by(
            series.c.id, "ts"
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).cursor.fetchall()
        if not rows:
            return {}
        table = np.array(rows, dtype=float)
        starts = np.flatnonzero(np.diff(table[:, 0], prepend=-1.0))
        return {
            int(table[begin, 0]): NewPoints(table[begin:end, 1], table[begin:end, 2])
            for begin, end in zip(starts, [*starts[1:], len(table)], strict=True)
        }

    def _series_points(self, column: Any, chosen: Any, since: Any) -> Select[Any]:
        """``column``, ts and value of the samples after ``since`` of the series ``chosen``.

        Series by series, so each reads only its own range of the (series_id, ts) index, however
        long the table. PostgreSQL's planner would rather scan the whole samples table into a
        hash join; LATERAL spells out the per-series read, and its OFFSET 0 keeps the planner
        from flattening it back into that join. SQLite, which has no LATERAL, plans the plain
        join that way already.
        """
        if self._postgres:
            points = (
                select(samples.c.ts, samples.c.value)
                .where(samples.c.series_id == series.c.id, samples.c.ts > since)
                .offset(0)
                .lateral()
            )
            return (
                select(column, points.c.ts, points.c.value)
                .join_from(series, points, true())
                .where(chosen)
            )
        after = and_(samples.c.series_id == series.c.id, samples.c.ts > since)
        return (
            select(column, samples.c.ts, samples.c.value)
            .select_from(series.join(samples, after))
            .where(chosen)
        )

    def save_analysis(self, cursors: Sequence[CursorUpdate], found: Sequence[Anomaly]) -> None:
        """An analyze pass's cursors and anomalies, in one transaction: a pass that fails
        half-way saves nothing, and the next pass scores the same points again."""
        if not cursors:
            return
        with self.engine.begin() as connection:
            connection.execute(
                update(series)
                .where(series.c.id == bindparam("series_id"))
                .values(analyzed_until=bindparam("until"), detector_state=bindparam("state")),
                [{"series_id": c.series_id, "until": c.until, "state": c.state} for c in cursors],
            )
            if found:
                ids = {c.key: c.series_id for c in cursors}
                connection.execute(
                    insert(anomalies),
                    [
                        {"series_id": ids[a.series], **a.model_dump(exclude={"series"})}
                        for a in found
                    ],
                )

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(samples)).scalar_one()
