"""Samples and series: the batch write path and the reads the detectors and verifier use.

Writes go through ``insert`` in batches: COPY on PostgreSQL, executemany elsewhere — never one ORM
object per sample. Series ids are resolved once per process and cached.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    true,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from selfmend.models import Anomaly, LogEvent, Sample, parse_series_key
from selfmend.store import pg_bulk
from selfmend.store.engine import reads
from selfmend.store.rollups import MINUTE, Rollup, Rollups
from selfmend.store.tables import log_events, push_batches, samples, series

_COPY_SAMPLES = "COPY samples (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
_COPY_ANOMALIES = (
    "COPY anomalies (series_id, ts, value, score, detector) FROM STDIN (FORMAT BINARY)"
)
_ANOMALY_TYPES = ("int4", "float8", "float8", "float8", "text")
_UPDATE_CURSORS_FROM_ARRAYS = (
    "UPDATE series SET analyzed_until = batch.until, detector_state = batch.state::json "
    "FROM unnest(%b::int4[], %b::float8[], %b::text[]) AS batch(id, until, state) "
    "WHERE series.id = batch.id"
)
_UPDATE_CURSOR = "UPDATE series SET analyzed_until = ?, detector_state = ? WHERE id = ?"
_INSERT_ANOMALY = (
    "INSERT INTO anomalies (series_id, ts, value, score, detector) VALUES (?, ?, ?, ?, ?)"
)
WEEK = 7 * 86400.0
_POINT_ROW = np.dtype([("series_id", "i8"), ("ts", "f8"), ("value", "f8")])
_IDS_PER_QUERY = 5000  # parameters per IN list on SQLite, well inside its cap of 32,766
_CURSOR_COLUMNS = (series.c.id, series.c.key, series.c.name, series.c.analyzed_until)
_WINDOW = (  # built once: every verification reads one
    select(samples.c.ts, samples.c.value)
    .join(series, series.c.id == samples.c.series_id)
    .where(
        series.c.key == bindparam("key"),
        samples.c.ts > bindparam("since"),
        samples.c.ts <= bindparam("until"),
    )
    .order_by(samples.c.ts)
)


@dataclass(frozen=True)
class SeriesCursor:
    """A series and where its analysis stopped; its detector's saved state is read apart
    (``detector_states``), only for the series a worker does not hold warm. Its labels are
    in its key (``parse_series_key``): the pass does not parse them from JSON per series."""

    id: int
    key: str
    name: str
    analyzed_until: float


@dataclass(frozen=True)
class NewPoints:
    timestamps: np.ndarray
    values: np.ndarray


class RecentWindows:
    """A ``SeriesReader`` over points read ahead: key → ``(ts, value)`` of a name since a time."""

    def __init__(self, by_key: Mapping[str, list[tuple[float, float]]]) -> None:
        self._by_name: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for key, points in by_key.items():
            self._by_name.setdefault(parse_series_key(key)[0], {})[key] = points

    def __call__(self, name: str, since: float) -> dict[str, list[tuple[float, float]]]:
        return {
            key: [(ts, value) for ts, value in points if ts > since]
            for key, points in self._by_name.get(name, {}).items()
        }


@dataclass(frozen=True)
class CursorUpdate:
    """Where a series' analysis now stands: the last point scored and the detector after it."""

    series_id: int
    key: str
    until: float
    state: dict[str, Any]


def in_shard(shard: int, shards: int, series_id: Any = series.c.id) -> ColumnElement[bool]:
    """The rows of the shard's series: a series belongs to shard ``id % shards``."""
    return series_id % shards == shard if shards > 1 else true()


def _in_time_order(timestamps: np.ndarray, values: np.ndarray) -> NewPoints:
    """The points sorted by time, if they came otherwise (a late write, a reused page)."""
    if timestamps.size > 1 and np.any(timestamps[1:] < timestamps[:-1]):
        order = np.argsort(timestamps, kind="stable")
        return NewPoints(timestamps[order], values[order])
    return NewPoints(timestamps, values)


class SampleStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)
        self._ids: dict[str, int] = {}
        self._postgres = engine.dialect.name == "postgresql"
        self._rollups = Rollups(engine)

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
            pg_bulk.copy_in(connection, _COPY_SAMPLES, ["int4", "float8", "float8"], rows)
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

    def first_seen(self, payloads: Sequence[str], connection: Connection) -> list[str]:
        """The pushed batches not stored before, each once, their digests now recorded in the
        caller's transaction; digests older than a week are forgotten."""
        now = time.time()
        digests = {hashlib.sha256(payload.encode()).hexdigest(): payload for payload in payloads}
        dialect_insert = postgresql.insert if self._postgres else sqlite.insert
        fresh = set(
            connection.scalars(
                dialect_insert(push_batches)
                .on_conflict_do_nothing(index_elements=["digest"])
                .returning(push_batches.c.digest),
                [{"digest": digest, "stored_at": now} for digest in digests],
            )
        )
        connection.execute(delete(push_batches).where(push_batches.c.stored_at < now - WEEK))
        return [payload for digest, payload in digests.items() if digest in fresh]

    def insert_logs(self, events: Sequence[LogEvent], connection: Connection | None = None) -> int:
        if not events:
            return 0
        if connection is None:
            with self.engine.begin() as own:
                return self.insert_logs(events, own)
        connection.execute(insert(log_events), [event.model_dump() for event in events])
        return len(events)

    def window(
        self,
        key: str,
        since: float,
        until: float | None = None,
        connection: Connection | None = None,
    ) -> list[tuple[float, float]]:
        """``(ts, value)`` of one series with ``since < ts <= until``, oldest first."""
        if connection is None:
            with self.reads.connect() as own:
                return self.window(key, since, until, own)
        bounds = {"key": key, "since": since, "until": math.inf if until is None else until}
        return [(ts, value) for ts, value in connection.execute(_WINDOW, bounds)]

    def rollup_window(
        self,
        key: str,
        since: float,
        until: float,
        resolution: int = MINUTE,
        connection: Connection | None = None,
    ) -> list[Rollup]:
        """Min, max, mean and count of one series per minute (``resolution`` 60) or hour
        (3600), for the buckets that start in ``[since, until)``: what a reader of more history
        than the raw retention keeps uses, whether the points are still raw or rolled up."""
        return self._rollups.window(key, since, until, resolution, connection)

    def windows_by_name(self, names: Collection[str], since: float) -> RecentWindows:
        """Every series called one of ``names`` (any labels), its points since ``since``, in one
        query: a pass's patterns then cost one read rather than one per condition."""
        query = self._series_points(series.c.key, series.c.name.in_(sorted(names)), since).order_by(
            series.c.key, "ts"
        )
        by_key: dict[str, list[tuple[float, float]]] = {}
        with self.reads.connect() as connection:
            for key, ts, value in connection.execute(query):
                by_key.setdefault(key, []).append((ts, value))
        return RecentWindows(by_key)

    def logs_since(self, since: float) -> list[LogEvent]:
        query = (
            select(log_events.c.ts, log_events.c.level, log_events.c.message, log_events.c.logger)
            .where(log_events.c.ts > since)
            .order_by(log_events.c.ts)
        )
        with self.reads.connect() as connection:
            return [
                LogEvent(ts=ts, level=level, message=message, logger=logger)
                for ts, level, message, logger in connection.execute(query)
            ]

    def cursors(self, shard: int = 0, shards: int = 1) -> list[SeriesCursor]:
        query = select(*_CURSOR_COLUMNS).where(in_shard(shard, shards)).order_by(series.c.id)
        with self.reads.connect() as connection:
            return [SeriesCursor(*row) for row in connection.execute(query)]

    def detector_states(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The saved detector state of each of these series that has one."""
        states: dict[int, dict[str, Any]] = {}
        with self.reads.connect() as connection:
            for chosen in self._among(ids):
                query = select(series.c.id, series.c.detector_state).where(
                    chosen, series.c.detector_state.is_not(None)
                )
                states.update(connection.execute(query).tuples().all())
        return states

    def _among(self, ids: Sequence[int]) -> list[ColumnElement[bool]]:
        """Filters that together choose the series ``ids``: one array parameter on PostgreSQL,
        which a cold worker's ten thousand ids would otherwise cost as many parameters; IN
        lists within SQLite's cap on parameters."""
        if self._postgres:
            return [series.c.id == any_(bindparam("ids", list(ids), type_=ARRAY(Integer)))]
        return [
            series.c.id.in_(ids[first : first + _IDS_PER_QUERY])
            for first in range(0, len(ids), _IDS_PER_QUERY)
        ]

    def new_points(self, shard: int = 0, shards: int = 1) -> list[tuple[SeriesCursor, NewPoints]]:
        """Each series of the shard that received points after its cursor, by id: its cursor
        and those points, oldest first.

        An analyze pass reads hundreds of thousands of points, and a Python object per point
        costs more than the query. PostgreSQL gathers each series' points into two float8
        arrays, read in binary straight into numpy (``pg_bulk``), beside the cursor's columns:
        one query, one scan of ``series`` per shard. SQLite's rows go from the driver's cursor
        into one numpy table, split by series and matched with the shard's cursors.
        """
        if self._postgres:
            return self._new_point_arrays(in_shard(shard, shards))
        query = self._series_points(
            series.c.id, in_shard(shard, shards), series.c.analyzed_until
        ).order_by(series.c.id, "ts")
        with self.reads.connect() as connection:
            table = np.fromiter(connection.execute(query).cursor, dtype=_POINT_ROW)
        if not table.size:
            return []
        starts = np.flatnonzero(np.diff(table["series_id"], prepend=-1))
        points = {
            int(table["series_id"][begin]): NewPoints(
                table["ts"][begin:end], table["value"][begin:end]
            )
            for begin, end in zip(starts, [*starts[1:], len(table)], strict=True)
        }
        return [(c, points[c.id]) for c in self.cursors(shard, shards) if c.id in points]

    def _new_point_arrays(self, chosen: Any) -> list[tuple[SeriesCursor, NewPoints]]:
        # Unordered aggregates cost a third less than ordered ones; both see the rows in the same
        # order, which is nearly always time order already (samples are appended as they come).
        points = (
            select(
                postgresql.array_agg(samples.c.ts).label("ts"),
                postgresql.array_agg(samples.c.value).label("value"),
            )
            .where(samples.c.series_id == series.c.id, samples.c.ts > series.c.analyzed_until)
            .lateral()
        )
        query = (
            select(*_CURSOR_COLUMNS, points.c.ts, points.c.value)
            .join_from(series, points, true())
            .where(chosen, points.c.ts.is_not(None))
        )
        with self.reads.connect() as connection:
            rows = pg_bulk.fetch(connection, query)
        # Sorted here, not by the server: ORDER BY would sort the arrays too, past work_mem.
        rows.sort(key=lambda row: row[0])
        return [
            (SeriesCursor(*row[:4]), _in_time_order(timestamps, values))
            for *row, timestamps, values in rows
        ]

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
        """Cursors and anomalies of some series of an analyze pass, in one transaction: each
        series is saved with its anomalies or not at all, and the next pass scores the points
        of one not saved again.

        Ten thousand series' states are written on every pass, so the statements skip
        SQLAlchemy's per-row parameter processing: on PostgreSQL one ``UPDATE ... FROM unnest``
        of binary arrays and a binary COPY, on SQLite the driver's own ``executemany``.
        """
        if not cursors:
            return
        ids = {c.key: c.series_id for c in cursors}
        states = [json.dumps(c.state) for c in cursors]
        rows = [(ids[a.series], a.ts, a.value, a.score, a.detector) for a in found]
        with self.engine.begin() as connection:
            if self._postgres:
                columns = [[c.series_id for c in cursors], [c.until for c in cursors], states]
                pg_bulk.execute(connection, _UPDATE_CURSORS_FROM_ARRAYS, columns)
                pg_bulk.copy_in(connection, _COPY_ANOMALIES, _ANOMALY_TYPES, rows)
                return
            connection.exec_driver_sql(
                _UPDATE_CURSOR,
                [(c.until, state, c.series_id) for c, state in zip(cursors, states, strict=True)],
            )
            if rows:
                connection.exec_driver_sql(_INSERT_ANOMALY, rows)

    def count(self) -> int:
        with self.reads.connect() as connection:
            return connection.execute(select(func.count()).select_from(samples)).scalar_one()
