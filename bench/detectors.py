"""Detector throughput and one analyze pass at scale.

    python -m bench.detectors [--points 1000000] [--series 10000] [--repeat 3] [--postgres URL]
                              [--detector NAME]

- ``score_many`` points/s for each statistical detector on one core (numba compiled first);
- how often each detector raises a false alarm (its default threshold) on noise of four kinds:
  Gaussian, Student's t with 3 degrees of freedom, Poisson counts of mean 2 and log-normal. A
  calibrated detector alarms about as often on each, at the rate its threshold names;
- one analyze pass with ``--detector`` (default: the workers' default) over ``--series``
  series of 60 new points each, on SQLite and, with ``--postgres``, on PostgreSQL: seconds for
  the whole pass (read cursors and points, detect, save state and anomalies in one
  transaction) in the worker that ran the previous pass and
  in one that did not, and the detector state's JSON size per series.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from typing import Any

import numpy as np
import structlog
from sqlalchemy import select

from bench import noises
from selfmend.config import Settings
from selfmend.detect.choice import CLASSES, DEFAULT, detector_class
from selfmend.models import Sample
from selfmend.store import Store
from selfmend.store.tables import series as series_table
from selfmend.system import System
from tests import resources

NEW_POINTS = 60
HISTORY = 240


def score_many_rate(make, points: int) -> float:
    rng = np.random.default_rng(0)
    timestamps = np.arange(points, dtype=float) * 15.0
    values = rng.normal(100, 5, points)
    make().score_many(timestamps[:1000], values[:1000])  # compile outside the timing
    began = time.perf_counter()
    make().score_many(timestamps, values)
    return points / (time.perf_counter() - began)


NOISES = noises.some("gaussian", "student_t3", "poisson2", "lognormal")


def false_alarms(make, noise: str, series: int = 50, points: int = 10_000) -> float:
    """Alarms per point on noise, where every alarm is false (after the first 200 points)."""
    rng = np.random.default_rng(3)
    timestamps = np.arange(points, dtype=float) * 15.0
    alarms = 0
    for _ in range(series):
        detector = make()
        scores = detector.score_many(timestamps, NOISES[noise](rng, points))
        alarms += int((scores[200:] >= detector.threshold).sum())
    return alarms / (series * (points - 200))


def fill(system: System, count: int, start: float, points: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(100, 5, (count, points))
    for first in range(0, count, 500):
        batch = [
            Sample(
                series=f"bench.metric_{i}",
                ts=start + j * 15.0,
                value=float(values[i, j]),
                labels={"host": f"h{i % 50}"},
            )
            for i in range(first, min(first + 500, count))
            for j in range(points)
        ]
        system.store.samples.insert(batch)


def analyze_passes(store_url: str, count: int, repeat: int, detector: str) -> dict[str, Any]:
    """``repeat`` rounds of two passes over ``count`` series of 60 new points each: one by the
    worker that ran the previous pass (warm), one by a new worker (cold: it restores every
    detector from the store). Seconds of each pass, the state sizes, and the anomalies
    and signals (incidents opened or joined) found, all false: the data is noise."""
    home = resources.temp_folder("bench-detectors")
    settings = Settings(
        home=home,
        store_url=store_url,
        mode="observe",
        detectors=[{"series": "*", "detector": detector}],
    )
    system = System.from_settings(settings)
    now = time.time()
    start = now - (HISTORY + 2 * repeat * NEW_POINTS) * 15.0
    fill(system, count, start, HISTORY, seed=1)
    system.analyzer.run(now=start + HISTORY * 15.0)  # every series has a saved detector
    figures: dict[str, Any] = {"warm": [], "cold": [], "anomalies": 0, "signals": 0}
    analyzer = system.analyzer
    for number in range(2 * repeat):
        kind = "warm" if number % 2 == 0 else "cold"
        if kind == "cold":  # a new worker, which then runs the next (warm) pass
            analyzer = System.from_settings(settings).analyzer
        since = start + (HISTORY + number * NEW_POINTS) * 15.0
        fill(system, count, since, NEW_POINTS, seed=2 + number)
        began = time.perf_counter()
        report = analyzer.run(now=since + NEW_POINTS * 15.0)
        figures[kind].append(time.perf_counter() - began)
        assert report.series == count and report.points == count * NEW_POINTS, report
        figures["anomalies"] += report.anomalies
        figures["signals"] += len(report.new_incidents) + len(report.grouped)
    with system.store.engine.connect() as connection:
        states = connection.execute(select(series_table.c.detector_state)).scalars().all()
    figures["sizes"] = [len(json.dumps(state["model"])) for state in states]
    return figures


def spread(seconds: list[float]) -> str:
    return f"{np.median(seconds):.2f} s (range {min(seconds):.2f}-{max(seconds):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds of warm and cold passes")
    parser.add_argument("--postgres", help="e.g. postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--detector", default=DEFAULT.detector, choices=sorted(CLASSES))
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(
        f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}"
    )
    for name in CLASSES:
        make = detector_class(name)
        print(f"score_many {name}: {score_many_rate(make, args.points):,.0f} points/s")
        rates = ", ".join(f"{noise} {false_alarms(make, noise):.1e}" for noise in NOISES)
        print(f"  false alarms per point on noise: {rates}")
    # This run's database and folders (tests.resources, SELFMEND_TEST_SLOT), gone when it exits.
    stores = {"sqlite": f"sqlite:///{resources.temp_folder('bench-detectors')}/bench.db"}
    if args.postgres:
        stores["postgresql"] = resources.fresh_database("bench_detectors", args.postgres)
        Store.from_url(stores["postgresql"], migrate=True).close()  # as `selfmend db upgrade`
    for store, url in stores.items():
        figures = analyze_passes(url, args.series, args.repeat, args.detector)
        sizes = figures["sizes"]
        passes = 2 * args.repeat
        print(
            f"analyze pass, {store}, {args.detector}: {args.series:,} series x {NEW_POINTS} "
            f"points, median of {args.repeat}: warm {spread(figures['warm'])}, "
            f"cold {spread(figures['cold'])}; "
            f"state {np.mean(sizes):.0f} B mean, {max(sizes)} B max; on noise, per pass: "
            f"{figures['anomalies'] / passes:.0f} anomalies stored, "
            f"{figures['signals'] / passes:.1f} raised as incidents"
        )


if __name__ == "__main__":
    main()
