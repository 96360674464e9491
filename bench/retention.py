"""Store size and analyze time over 30 simulated days of 10,000 series, with the retention stage
running once a simulated day: both should stay flat once every tier reached its retention.

    python -m bench.retention [--series 10000] [--days 30] [--interval 300] [--postgres]

Each simulated day:
1. the day's raw samples of every series are written through the batch path, one every
   ``--interval`` seconds (not every 15 s: 10,000 series at 15 s are 57.6 million rows a day,
   1.7 billion over 30 days, more than this bench can write on a small machine in a reasonable
   time), and the analysis cursor is moved past them (the minute-by-minute passes of a real
   day are not replayed);
2. the retention stage runs as the beat would at the end of the day: raw samples older than
   ``--raw-hours`` folded into minute and hour aggregates, aggregates and events pruned by age;
3. one analyze pass, timed: 10,000 series with the last minute's four new points each (15 s
   apart), read, scored, cursors and detector state saved, as every real pass does;
4. the store's size on disk (SQLite: the database file after a WAL checkpoint; PostgreSQL:
   ``pg_database_size``) and the rows of each tier are printed.

The retention windows default to raw 24 h, minute 48 h and hour 72 h, so every tier is full by
day 3. With the production default for hours (90 days) the hour tier grows by 24 rows per series
per day until day 90; at the real 15 s rate that is 1/240 of the raw tier's rows a day.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import structlog
from sqlalchemy import func, select, text, update

from selfmend.config import Settings
from selfmend.models import Sample
from selfmend.store import Store
from selfmend.store.retention import Retention, RetentionPolicy
from selfmend.store.tables import sample_rollups, samples, series
from selfmend.system import System
from tests import resources

DAY = 86400.0
PASS_POINTS, PASS_STEP = 4, 15.0  # one real analyze pass: a minute of 15 s samples
SERIES_PER_WRITE = 500


def write_day(store: Store, ids: np.ndarray, start: float, interval: float, seed: int) -> int:
    """The day's raw samples, ``interval`` apart, up to the last minute (the timed pass's)."""
    times = start + np.arange(0.0, DAY - 60.0, interval)
    rng = np.random.default_rng(seed)
    written = 0
    for first in range(0, len(ids), SERIES_PER_WRITE):
        chosen = ids[first : first + SERIES_PER_WRITE]
        values = rng.normal(100.0, 5.0, (len(chosen), len(times)))
        rows = [
            (int(series_id), float(ts), float(value))
            for series_id, row in zip(chosen, values, strict=True)
            for ts, value in zip(times, row, strict=True)
        ]
        with store.engine.begin() as connection:
            if store.engine.dialect.name == "sqlite":
                connection.exec_driver_sql("INSERT INTO samples VALUES (?, ?, ?)", rows)
            else:
                store.samples.insert_rows(rows, connection)
        written += len(rows)
    with store.engine.begin() as connection:  # the day's real passes are not replayed
        connection.execute(update(series).values(analyzed_until=start + DAY - 60.0))
    return written


def write_pass(store: Store, keys: list[str], end: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    times = end - PASS_STEP * np.arange(PASS_POINTS)[::-1]
    batch = [
        Sample(series=key, ts=float(ts), value=float(rng.normal(100.0, 5.0)))
        for key in keys
        for ts in times
    ]
    for first in range(0, len(batch), 20_000):
        store.samples.insert(batch[first : first + 20_000])


def store_megabytes(store: Store, path: Path | None) -> float:
    with store.engine.connect() as connection:
        if path is None:
            size = connection.execute(text("SELECT pg_database_size(current_database())"))
            return size.scalar_one() / 1e6
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6


def tier_rows(store: Store) -> tuple[int, int, int]:
    with store.engine.connect() as connection:
        raw = connection.execute(select(func.count()).select_from(samples)).scalar_one()
        by_resolution = dict(
            connection.execute(
                select(sample_rollups.c.resolution, func.count()).group_by(
                    sample_rollups.c.resolution
                )
            ).all()
        )
    return raw, by_resolution.get(60, 0), by_resolution.get(3600, 0)


def run(args: argparse.Namespace) -> None:
    path = None
    if args.postgres:
        url = resources.fresh_database("bench_retention")
    else:
        path = resources.temp_folder("bench-retention") / "store.db"
        url = f"sqlite:///{path}"
    Store.from_url(url, migrate=True).close()
    home = resources.temp_folder("bench-retention-home")
    system = System.from_settings(Settings(home=home, store_url=url, mode="observe"))
    store = system.store
    policy = RetentionPolicy(
        raw_hours=args.raw_hours,
        minute_hours=args.minute_hours,
        hour_hours=args.hour_hours,
        event_hours=args.minute_hours,
        audit_archive_hours=args.hour_hours,
    )
    retention = Retention(store.engine, policy)
    start = (time.time() - args.days * DAY) // DAY * DAY
    keys = [Sample(series=f"bench.metric_{i}", ts=1.0, value=0.0).key for i in range(args.series)]
    write_pass(store, keys, start - 60.0, seed=0)  # the series exist, with a detector each
    system.analyzer.run(now=start)
    with store.engine.connect() as connection:
        ids = np.array(
            connection.execute(select(series.c.id).order_by(series.c.id)).scalars().all()
        )
    figures = []
    for day in range(1, args.days + 1):
        day_start = start + (day - 1) * DAY
        write_day(store, ids, day_start, args.interval, seed=day)
        report = retention.run(now=day_start + DAY)
        write_pass(store, keys, day_start + DAY, seed=1000 + day)
        began = time.perf_counter()
        analyzed = system.analyzer.run(now=day_start + DAY)
        analyze = time.perf_counter() - began
        assert analyzed.points == args.series * PASS_POINTS, analyzed
        size = store_megabytes(store, path)
        raw, minute, hour = tier_rows(store)
        figures.append((size, analyze))
        print(
            f"day {day}: store {size:.0f} MB, raw rows {raw:,}, minute rows {minute:,}, "
            f"hour rows {hour:,}, retention {report.seconds:.1f} s "
            f"({report.folded:,} folded in {report.batches} batches), analyze {analyze:.2f} s",
            flush=True,
        )
    if len(figures) >= 3:
        (size3, analyze3), (size_n, analyze_n) = figures[2], figures[-1]
        print(
            f"day {len(figures)} / day 3: store size {size_n / size3:.2f}x, "
            f"analyze time {analyze_n / analyze3:.2f}x"
        )
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--interval", type=float, default=300.0, help="seconds between samples")
    parser.add_argument("--raw-hours", type=float, default=24.0)
    parser.add_argument("--minute-hours", type=float, default=48.0)
    parser.add_argument("--hour-hours", type=float, default=72.0)
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="on PostgreSQL (SELFMEND_TEST_POSTGRES, database from tests/resources.py)",
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.series:,} series, one raw sample per "
        f"{args.interval:g} s, {args.days} days, retention raw {args.raw_hours:g} h, "
        f"minute {args.minute_hours:g} h, hour {args.hour_hours:g} h; "
        f"{'PostgreSQL' if args.postgres else 'SQLite'}",
        flush=True,
    )
    run(args)


if __name__ == "__main__":
    main()
