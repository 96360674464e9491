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
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, Integer, bindparam, cast, func, select, text, tuple_

from selfmend.errors import InvalidInput
from selfmend.store.engine import reads
from selfmend.store.tables import sample_rollups, samples, series

MINUTE, HOUR = 60, 3600
RESOLUTIONS = (MINUTE, HOUR)
_LAST_KEY = (2**31 - 1, math.inf)  # past every (series_id, ts): the end of the last batch

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
_BATCH = (
    "(series_id, ts) > (:after_series, :after_ts) AND (series_id, ts) <= (:end_series, :end_ts) "
    "AND ts < :cutoff"
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
            self._fold = [text(_postgres_fold())]
        else:
            # On SQLite the first INSERT takes the write lock, which the transaction holds until
            # it commits: no sample can arrive between the two reads and the DELETE.
            folds = [_fold_into("sqlite", r, "samples") for r in RESOLUTIONS]
            self._fold = [*map(text, folds), text(f"DELETE FROM samples WHERE {_BATCH}")]

    def fold_batch(self, after: tuple[int, float], cutoff: float, rows: int) -> tuple[int, tuple]:
        """Fold about ``rows`` raw samples older than ``cutoff``, the first in (series_id, ts)
        order after ``after``, in one transaction. Returns how many were folded and the key to
        continue after; fewer than ``rows`` folded means none older than ``cutoff`` is left."""
        end = self._batch_end(after, cutoff, rows)
        bounds = {
            "after_series": after[0],
            "after_ts": after[1],
            "end_series": end[0],
            "end_ts": end[1],
            "cutoff": cutoff,
        }
        with self.engine.begin() as connection:
            results = [connection.execute(statement, bounds) for statement in self._fold]
            last = results[-1]  # PostgreSQL: count(*) of the deleted; SQLite: the DELETE
            folded = last.scalar_one() if self.dialect == "postgresql" else last.rowcount
        return folded, end

    def _batch_end(self, after: tuple[int, float], cutoff: float, rows: int) -> tuple[int, float]:
        """The key of the ``rows``-th sample to fold, or past the last one if fewer are left.
        The (series_id, ts) index serves it; a batch ends on a key, so samples that share it
        fold together and the batch may be a few rows over."""
        key = tuple_(samples.c.series_id, samples.c.ts)
        query = (
            select(samples.c.series_id, samples.c.ts)
            .where(key > tuple_(*after), samples.c.ts < cutoff)
            .order_by(samples.c.series_id, samples.c.ts)
            .offset(rows - 1)
            .limit(1)
        )
        with self.reads.connect() as connection:
            found = connection.execute(query).first()
        return _LAST_KEY if found is None else (found[0], found[1])

    def prune_batch(self, resolution: int, cutoff: float, rows: int) -> int:
        """Delete up to ``rows`` aggregates of ``resolution`` whose bucket ended by ``cutoff``."""
        old = (
            select(sample_rollups.c.series_id, sample_rollups.c.resolution, sample_rollups.c.bucket)
            .where(
                sample_rollups.c.resolution == resolution,
                sample_rollups.c.bucket <= cutoff - resolution,
            )
            .limit(rows)
        )
        key = tuple_(
            sample_rollups.c.series_id, sample_rollups.c.resolution, sample_rollups.c.bucket
        )
        with self.engine.begin() as connection:
            return connection.execute(sample_rollups.delete().where(key.in_(old))).rowcount

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
        merged: dict[float, list[float]] = {}
        for part in (self._folded, self._raw):
            query = part(key, first, end, resolution)
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
