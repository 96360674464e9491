"""Engines for the store: SQLite tuned for several writers, PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs, the driver selfmend depends on."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if make_url(url).get_backend_name() != "sqlite":
        # The store's queries are short index reads; PostgreSQL's JIT would spend more time
        # compiling them (it keys on cost estimates, which per-series reads inflate) than running.
        options = {"options": "-c jit=off"}
        return create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args=options
        )
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
    event.listen(engine, "connect", _tune_sqlite)
    return engine


def reads(engine: Engine) -> Engine:
    """``engine`` for reads of one statement, outside a transaction on PostgreSQL: psycopg
    would otherwise wrap each in BEGIN and ROLLBACK, two round trips more than the query, and at
    read committed each statement sees its own snapshot either way. SQLite has no round trips
    to save, and switching a connection's isolation level there costs more than it saves
    (134 against 91 µs for a one-row read)."""
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _tune_sqlite(dbapi_connection, _record) -> None:
    # WAL lets the worker's threads read while one writes; busy_timeout waits out the writer.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
