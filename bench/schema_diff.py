"""The schema watch over a 200-table PostgreSQL database.

    python -m bench.schema_diff [--postgres URL] [--tables 200] [--repeat 10]

Builds a database (``--tables`` tables of 10 columns, a primary key and two indexes each, half
with a foreign key) and a store in another, both this run's (``tests.resources``), records
the baseline, then times one watch run of that database (fingerprint, read the previous version,
diff, store, publish, open the incident) ``--repeat`` times each:

- **no change**: the fingerprint matches the stored digest;
- **a few changes**: a column renamed, one dropped, one type changed, one made NOT NULL and a
  table added, applied before each run and reverted before the next (so every run is a version,
  with a critical change and its incident).

And, apart: the fingerprint alone, the diff alone, and table-by-table reflection
(``Inspector.get_columns`` and ``get_pk_constraint`` per table) for comparison.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time
from collections.abc import Callable

import psycopg
import structlog
from sqlalchemy import inspect

from selfmend.config import Settings
from selfmend.resilience.schema import SchemaEvents, SchemaWatch, diff, fingerprint
from selfmend.resilience.schema.databases import WatchedDatabase
from selfmend.store import Store
from tests import resources

COLUMNS = """
    id serial PRIMARY KEY,
    account_id integer NOT NULL,
    code varchar(40) NOT NULL,
    title varchar(200),
    body text,
    amount numeric(12, 2) NOT NULL DEFAULT 0,
    active boolean NOT NULL DEFAULT true,
    payload jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    due date
"""
FORWARD = """
ALTER TABLE t007 RENAME COLUMN title TO headline;
ALTER TABLE t042 DROP COLUMN body;
ALTER TABLE t099 ALTER COLUMN amount TYPE numeric(14, 2);
ALTER TABLE t150 ALTER COLUMN title SET NOT NULL;
CREATE TABLE t_added (id serial PRIMARY KEY, note text);
"""
BACKWARD = """
ALTER TABLE t007 RENAME COLUMN headline TO title;
ALTER TABLE t042 ADD COLUMN body text;
ALTER TABLE t099 ALTER COLUMN amount TYPE numeric(12, 2);
ALTER TABLE t150 ALTER COLUMN title DROP NOT NULL;
DROP TABLE t_added;
"""


def build(url: str, tables: int) -> None:
    statements = []
    for number in range(tables):
        name = f"t{number:03d}"
        statements.append(f"CREATE TABLE {name} ({COLUMNS})")
        statements.append(f"CREATE INDEX ix_{name}_account ON {name} (account_id)")
        statements.append(f"CREATE UNIQUE INDEX ix_{name}_code ON {name} (code)")
        if number % 2:
            parent = f"t{number - 1:03d}"
            statements.append(
                f"ALTER TABLE {name} ADD FOREIGN KEY (account_id) REFERENCES {parent} (id)"
            )
    with psycopg.connect(url, autocommit=True) as connection, connection.transaction():
        for statement in statements:
            connection.execute(statement)


def timed(run: Callable[[], object], repeat: int, before: Callable[[int], None]) -> list[float]:
    seconds = []
    for number in range(repeat):
        before(number)
        began = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - began)
    return seconds


def no_setup(_: int) -> None:
    """Nothing to prepare before a run."""


def spread(seconds: list[float]) -> str:
    return (
        f"median {statistics.median(seconds) * 1000:.0f} ms "
        f"(range {min(seconds) * 1000:.0f}-{max(seconds) * 1000:.0f} ms, {len(seconds)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", default=resources.POSTGRES)
    parser.add_argument("--tables", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    print(
        f"machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; {args.tables} tables x 10 columns on PostgreSQL"
    )
    # This run's databases and folder (tests.resources, SELFMEND_TEST_SLOT), gone when it exits.
    url = resources.fresh_database("bench_schema", args.postgres)
    watched = resources.database_name("bench_schema", args.postgres)
    build(url, args.tables)
    home = resources.temp_folder("bench-schema")
    store_url = resources.fresh_database("bench_schema_store", args.postgres)
    settings = Settings(home=home, store_url=store_url)
    store = Store.from_url(settings.resolved_store_url, migrate=True)
    database = WatchedDatabase(watched, url)
    watch = SchemaWatch(store, [database], SchemaEvents())
    watch.run()  # the baseline, and the connection pool warmed

    def change(number: int) -> None:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(FORWARD if number % 2 == 0 else BACKWARD)

    def unchanged() -> None:
        report = watch.run()
        assert not report.databases[watched]["recorded"], report

    def changed() -> None:
        report = watch.run()
        assert len(report.databases[watched]["changes"]) == 5, report

    def fingerprinted():
        with database.connect() as connection:
            return fingerprint(connection)

    def per_table() -> None:
        with database.connect() as connection:
            inspector = inspect(connection)
            for name in inspector.get_table_names():
                inspector.get_columns(name)
                inspector.get_pk_constraint(name)

    print(f"watch run, no change: {spread(timed(unchanged, args.repeat, no_setup))}")
    print(f"watch run, 5 changes: {spread(timed(changed, args.repeat, change))}")
    print(f"fingerprint alone: {spread(timed(fingerprinted, args.repeat, no_setup))}")
    before = fingerprinted()
    change(0)
    after = fingerprinted()
    change(1)
    diffed = timed(lambda: diff(before, after), args.repeat, no_setup)
    print(f"diff alone (5 changes): {spread(diffed)}")
    print(f"table-by-table reflection: {spread(timed(per_table, 3, no_setup))}")
    store.close()


if __name__ == "__main__":
    main()
