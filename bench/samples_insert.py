"""Samples stored per second through the batch path, one process, PostgreSQL and SQLite.

    python -m bench.samples_insert [--rows 200000] [--postgres postgresql://postgres@127.0.0.1:5432]

Each figure is the steady state: series already known, ids cached in the process. The stores are
this run's (``tests.resources``: a database on the ``--postgres`` server, a SQLite file in a temp
folder), gone when it exits.
"""

from __future__ import annotations

import argparse
import platform
import time

from selfmend.models import Sample
from selfmend.store import Store
from tests import resources


def make_samples(count: int, series: int = 100) -> list[Sample]:
    start = time.time() - count
    return [
        Sample(
            series=f"bench.metric_{i % series}", ts=start + i, value=float(i), labels={"host": "a"}
        )
        for i in range(count)
    ]


def rate(store: Store, samples: list[Sample], batch: int) -> float:
    store.samples.insert(samples[:batch])  # series created, ids cached: measure the steady path
    began = time.perf_counter()
    for offset in range(0, len(samples), batch):
        store.samples.insert(samples[offset : offset + batch])
    return len(samples) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--postgres", default=resources.POSTGRES, help="the server")
    args = parser.parse_args()
    samples = make_samples(args.rows)
    print(
        f"machine: {platform.processor() or platform.machine()}, python "
        f"{platform.python_version()}, {args.rows} samples in batches of {args.batch}"
    )
    targets = {
        "postgresql": resources.fresh_database("bench_samples", args.postgres),
        "sqlite": f"sqlite:///{resources.temp_folder('bench-samples')}/bench.db",
    }
    for name, url in targets.items():
        store = Store.from_url(url, migrate=True)
        with store.engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM samples")
        print(f"{name:>10}: {rate(store, samples, args.batch):>10,.0f} samples/s (batch path)")
        store.close()


if __name__ == "__main__":
    main()
