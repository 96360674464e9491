"""Resilient writer throughput against a plain SQLAlchemy Core insert of the same rows.

    python -m bench.writer [--postgres URL] [--rows 20000] [--batch 1000] [--repeat 5]

On PostgreSQL, in one run: rows/s of ``insert_many`` when no row needs healing, rows/s of a
plain ``connection.execute(insert(table), rows)`` (executemany, one transaction per batch), and
their ratio (target: at least 0.8); then rows/s with a tenth of the rows healed (each healed
row is written with RETURNING and gets a log entry in selfmend's store), and its ratio to the
plain insert of the same round. The inserts take turns, round after round, so load from
elsewhere on the machine falls on all of them.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from datetime import datetime
from statistics import median

import structlog
from sqlalchemy import Engine, MetaData, Table, create_engine, insert

from selfmend.resilience.writer import ResilientWriter
from selfmend.store import Store
from tests import resources

ORDERS = """
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_name varchar(100) NOT NULL,
    quantity integer NOT NULL,
    amount double precision,
    paid boolean,
    created_at timestamp,
    note text
)
"""


def make_rows(count: int, healed_every: int = 0) -> list[dict]:
    now = datetime.now()
    rows = []
    for i in range(count):
        name_key = "customerName" if healed_every and i % healed_every == 0 else "customer_name"
        rows.append(
            {
                name_key: f"customer {i}",
                "quantity": i % 7 + 1,
                "amount": i * 1.25,
                "paid": i % 2 == 0,
                "created_at": now,
                "note": "bench",
            }
        )
    return rows


def batches(rows: list[dict], size: int) -> list[list[dict]]:
    return [rows[start : start + size] for start in range(0, len(rows), size)]


def plain_rate(engine: Engine, table: Table, chunks: list[list[dict]]) -> float:
    began = time.perf_counter()
    for chunk in chunks:
        with engine.begin() as connection:
            connection.execute(insert(table), chunk)
    return sum(map(len, chunks)) / (time.perf_counter() - began)


def resilient_rate(writer: ResilientWriter, chunks: list[list[dict]]) -> float:
    began = time.perf_counter()
    for chunk in chunks:
        result = writer.insert_many("orders", chunk)
        assert result.ok, result.errors[:3]
    return sum(map(len, chunks)) / (time.perf_counter() - began)


def spread(rates: list[float]) -> str:
    return f"{median(rates):,.0f} rows/s (range {min(rates):,.0f}-{max(rates):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    # This run's databases (tests.resources, SELFMEND_TEST_SLOT), dropped when it exits.
    app_url = resources.fresh_database("bench_writer_app", args.postgres)
    app_url = app_url.replace("postgresql://", "postgresql+psycopg://", 1)
    store = Store.from_url(
        resources.fresh_database("bench_writer_store", args.postgres), migrate=True
    )
    engine = create_engine(app_url)
    with engine.begin() as connection:
        connection.exec_driver_sql(ORDERS)
    table = Table("orders", MetaData(), autoload_with=engine)
    writer = ResilientWriter(engine, store)
    clean = batches(make_rows(args.rows), args.batch)
    healed = batches(make_rows(args.rows, healed_every=10), args.batch)
    plain_rate(engine, table, clean[:2])  # connections open, statements compiled
    resilient_rate(writer, clean[:2] + healed[:1])
    plain, resilient, ratios, with_heals, healed_ratios = [], [], [], [], []
    for _ in range(args.repeat):
        plain.append(plain_rate(engine, table, clean))
        resilient.append(resilient_rate(writer, clean))
        ratios.append(resilient[-1] / plain[-1])
        with_heals.append(resilient_rate(writer, healed))
        healed_ratios.append(with_heals[-1] / plain[-1])
    print(
        f"machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; {args.rows:,} rows of 6 columns in batches of "
        f"{args.batch:,}, {args.repeat} rounds, PostgreSQL on {args.postgres.split('@')[-1]}"
    )
    print(f"plain Core insert:               {spread(plain)}")
    print(f"resilient insert_many, no heals: {spread(resilient)}")
    print(
        f"ratio resilient / plain:         {median(ratios):.2f} "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}; target >= 0.80)"
    )
    print(f"resilient, 1 row in 10 healed:   {spread(with_heals)}")
    print(
        f"ratio healed / plain:            {median(healed_ratios):.2f} "
        f"(range {min(healed_ratios):.2f}-{max(healed_ratios):.2f})"
    )
    writer.close()
    store.close()


if __name__ == "__main__":
    main()
