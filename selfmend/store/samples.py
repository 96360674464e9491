"""Samples and series: the batch write path and the reads the detectors and verifier use.

Writes go through ``insert`` in batches: COPY on PostgreSQL, executemany elsewhere — never one ORM
object per sample. Series ids are resolved once per process and cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
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
        query = (
            select(series.c.key, samples.c.ts, samples.c.value)
            .join(series, series.c.id == samples.c.series_id)
            .where(series.c.name == name, samples.c.ts > since)
            .order_by(series.c.key, samples.c.ts)
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

    def new_points(self, cursors: Sequence[SeriesCursor]) -> dict[int, list[tuple[float, float]]]:
        """Points each series received after its cursor, in one query."""
        if not cursors:
            return {}
        ids = [cursor.id for cursor in cursors]
        query = (
            select(samples.c.series_id, samples.c.ts, samples.c.value)
            .join(series, series.c.id == samples.c.series_id)
            .where(samples.c.series_id.in_(ids), samples.c.ts > series.c.analyzed_until)
            .order_by(samples.c.series_id, samples.c.ts)
        )
        points: dict[int, list[tuple[float, float]]] = {}
        with self.engine.connect() as connection:
            for series_id, ts, value in connection.execute(query):
                points.setdefault(series_id, []).append((ts, value))
        return points

    def save_cursor(self, series_id: int, analyzed_until: float, state: dict[str, Any]) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(series)
                .where(series.c.id == series_id)
                .values(analyzed_until=analyzed_until, detector_state=state)
            )

    def insert_anomalies(self, series_id: int, found: Sequence[Anomaly]) -> None:
        if not found:
            return
        with self.engine.begin() as connection:
            connection.execute(
                insert(anomalies),
                [
                    {"series_id": series_id, **anomaly.model_dump(exclude={"series"})}
                    for anomaly in found
                ],
            )

    def count(self) -> int:
        with self.engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(samples)).scalar_one()
