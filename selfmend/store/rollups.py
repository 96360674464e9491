"""Minute and hour aggregates of samples: raw samples past their retention are folded into them,
and readers (detectors, forecasters) get one series of aggregates whether its points are still
raw or already folded.

Folding deletes each raw sample in the transaction that adds it to its two aggregates, so a
sample is counted once or not yet, never twice or never: a run that dies rolls back whole, and a
second run finds only what the first did not fold. An aggregate keeps min, max, sum and count,
which merge exactly when a later run (or a late sample) folds more into the same bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    and_,
    bindparam,
    cast,
    delete,
    func,
    select,
    text,
    union_all,
)

from selfmend.errors import InvalidInput
from selfmend.store.engine import reads
from selfmend.store.tables import sample_rollups, samples, series

MINUTE, HOUR = 60, 3600
RESOLUTIONS = (MINUTE, HOUR)

_MERGE = {
    "sqlite": "min(sample_rollups.min_value, excluded.min_value), "
    "max_value = max(sample_rollups.max_value, excluded.max_value)",
    "postgresql": "least(sample_rollups.min_value, excluded.min_value), "
    "max_value = greatest(sample_rollups.max_value, excluded.max_value)",
}
_BUCKET = {  # the start of a sample's bucket; ts is positive, so truncation is floor
    "sqlite": "CAST(ts / {r} AS INTEGER) * {r}",
    "postgresql": "floor(ts / {r}) * {r}",
}
_BATCH = "series_id IN :ids AND ts < :cutoff AND ts <= :until"
SERIES_PER_READ = 1000
_SERIES_AFTER = (
    select(series.c.id)
    .where(series.c.id > bindparam("after"))
    .order_by(series.c.id)
    .limit(SERIES_PER_READ)
)
_OLD_COUNTS = (
    select(samples.c.series_id, func.count())
    .where(
        samples.c.series_id.in_(bindparam("ids", expanding=True)),
        samples.c.ts < bindparam("cutoff"),
    )
    .group_by(samples.c.series_id)
)
_SLICE_END = (
    select(samples.c.ts)
    .where(samples.c.series_id == bindparam("series_id"), samples.c.ts < bindparam("cutoff"))
    .order_by(samples.c.ts)
    .offset(bindparam("skip"))
    .limit(1)
)


def _fold_into(dialect: str, resolution: int, source: str) -> str:
    bucket = _BUCKET[dialect].format(r=resolution)
    where = "" if source == "moved" else f" WHERE {_BATCH}"
    return (
        "INSERT INTO sample_rollups "
        "(series_id, resolution, bucket, min_value, max_value, value_sum, value_count) "
        f"SELECT series_id, {resolution}, {bucket}, min(value), max(value), sum(value), count(*) "
        f"FROM {source}{where} GROUP BY series_id, {bucket} "
        "ON CONFLICT (series_id, resolution, bucket) DO UPDATE SET "
        f"min_value = {_MERGE[dialect]}, "
        "value_sum = sample_rollups.value_sum + excluded.value_sum, "
        "value_count = sample_rollups.value_count + excluded.value_count"
    )


def _postgres_fold() -> str:
    """One statement: PostgreSQL runs every data-modifying CTE to completion on the same deleted
    rows, so what is deleted is exactly what is folded, even with writers at work."""
    minute, hour = (_fold_into("postgresql", r, "moved") for r in RESOLUTIONS)
    return (
        f"WITH moved AS (DELETE FROM samples WHERE {_BATCH} RETURNING series_id, ts, value), "
        f"by_minute AS ({minute} RETURNING 1), by_hour AS ({hour} RETURNING 1) "
        "SELECT count(*) FROM moved"
    )


@dataclass(frozen=True)
class Rollup:
    """The samples of one series in ``[bucket, bucket + resolution)``."""

    bucket: float
    min: float
    max: float
    mean: float
    count: int


class Rollups:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads = reads(engine)
        self.dialect = engine.dialect.name
        if self.dialect == "postgresql":
            statements = [_postgres_fold()]
        else:
            # On SQLite the first INSERT takes the write lock, which the transaction holds until
            # it commits: no sample can arrive between the two reads and the DELETE.
            statements = [_fold_into("sqlite", r, "samples") for r in RESOLUTIONS]
            statements.append(f"DELETE FROM samples WHERE {_BATCH}")
        ids = bindparam("ids", expanding=True)
        self._fold = [text(statement).bindparams(ids) for statement in statements]

    def groups(self, cutoff: float, rows: int) -> Iterator[list[int]]:
        """Series in groups whose samples older than ``cutoff`` are together at most ``rows``;
        a series with more comes alone, and ``fold_batch`` takes it in slices. Counting reads
        only those samples: each series' old points are the front of its index range."""
        after = -1
        while True:
            with self.reads.connect() as connection:
                ids = connection.execute(_SERIES_AFTER, {"after": after}).scalars().all()
                if not ids:
                    return
                counts = dict(connection.execute(_OLD_COUNTS, {"ids": ids, "cutoff": cutoff}).all())
            after = ids[-1]
            group: list[int] = []
            size = 0
            for series_id in (i for i in ids if counts.get(i)):
                if group and size + counts[series_id] > rows:
                    yield group
                    group, size = [], 0
                group.append(series_id)
                size += counts[series_id]
            if group:
                yield group

    def fold_batch(self, ids: list[int], cutoff: float, rows: int) -> int:
        """Fold the samples older than ``cutoff`` of the series ``ids`` in one transaction, or,
        for one series, its oldest ``rows`` (and any sharing the last one's time); returns how
        many were folded. Fewer than ``rows`` from one series means none is left."""
        until = math.inf
        if len(ids) == 1:
            with self.reads.connect() as connection:
                bounds = {"series_id": ids[0], "cutoff": cutoff, "skip": rows - 1}
                until = connection.execute(_SLICE_END, bounds).scalar() or math.inf
        bounds = {"ids": ids, "cutoff": cutoff, "until": until}
        with self.engine.begin() as connection:
            results = [connection.execute(statement, bounds) for statement in self._fold]
            last = results[-1]  # PostgreSQL: count(*) of the deleted; SQLite: the DELETE
            return last.scalar_one() if self.dialect == "postgresql" else last.rowcount

    def prune_batch(self, resolution: int, cutoff: float, rows: int) -> int:
        """Delete the oldest aggregates of ``resolution`` whose bucket ended by ``cutoff``: whole
        buckets, up to the one that holds the ``rows``-th, so a batch is at most ``rows`` plus
        one bucket's series. A range of the (resolution, bucket) index rather than a list of
        keys, which SQLite looks up one by one."""
        table = sample_rollups
        old = and_(table.c.resolution == resolution, table.c.bucket <= cutoff - resolution)
        edge = select(table.c.bucket).where(old).order_by(table.c.bucket).offset(rows - 1).limit(1)
        with self.reads.connect() as connection:
            last = connection.execute(edge).scalar()
        upto = cutoff - resolution if last is None else last
        gone = delete(table).where(table.c.resolution == resolution, table.c.bucket <= upto)
        with self.engine.begin() as connection:
            return connection.execute(gone).rowcount

    def window(
        self,
        key: str,
        since: float,
        until: float,
        resolution: int = MINUTE,
        connection: Connection | None = None,
    ) -> list[Rollup]:
        """The aggregates of one series for the buckets that start in ``[since, until)``, oldest
        first: folded aggregates merged with the raw samples not folded yet, so the series is
        whole across the raw retention's edge."""
        if resolution not in RESOLUTIONS:
            raise InvalidInput(f"resolution {resolution!r}: must be one of {RESOLUTIONS} seconds")
        if connection is None:
            with self.reads.connect() as own:
                return self.window(key, since, until, resolution, own)
        first = math.ceil(since / resolution) * resolution
        end = math.ceil(until / resolution) * resolution
        # One statement, so one snapshot: read in two, a fold committing between them would
        # move a batch from the raw samples (not read yet) to aggregates (read already).
        query = union_all(
            self._folded(key, first, end, resolution), self._raw(key, first, end, resolution)
        )
        merged: dict[float, list[float]] = {}
        for bucket, low, high, total, count in connection.execute(query):
            _merge(merged, float(bucket), [low, high, total, count])
        return [
            Rollup(bucket, low, high, total / count, int(count))
            for bucket, (low, high, total, count) in sorted(merged.items())
        ]

    def _folded(self, key: str, first: float, end: float, resolution: int):
        table = sample_rollups
        return (
            select(table.c.bucket, table.c.min_value, table.c.max_value)
            .add_columns(table.c.value_sum, table.c.value_count)
            .join(series, series.c.id == table.c.series_id)
            .where(
                series.c.key == bindparam("key", key),
                table.c.resolution == resolution,
                table.c.bucket >= first,
                table.c.bucket < end,
            )
        )

    def _raw(self, key: str, first: float, end: float, resolution: int):
        if self.dialect == "postgresql":
            bucket = func.floor(samples.c.ts / resolution) * resolution
        else:
            bucket = cast(samples.c.ts / resolution, Integer) * resolution
        value = samples.c.value
        return (
            select(bucket, func.min(value), func.max(value), func.sum(value), func.count())
            .join(series, series.c.id == samples.c.series_id)
            .where(series.c.key == bindparam("key", key), samples.c.ts >= first, samples.c.ts < end)
            .group_by(bucket)
        )


def _merge(merged: dict[float, list[float]], bucket: float, part: list[float]) -> None:
    """Merge an aggregate into ``merged[bucket]`` as the fold's upsert does."""
    if bucket not in merged:
        merged[bucket] = part
        return
    low, high, total, count = merged[bucket]
    merged[bucket] = [min(low, part[0]), max(high, part[1]), total + part[2], count + part[3]]
