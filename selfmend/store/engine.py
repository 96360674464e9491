"""Engines for the store and every database selfmend reads: SQLite tuned for several writers,
PostgreSQL through psycopg 3, each with a connect and a statement timeout.

The collectors and actions talk to databases in trouble, and the store is one at times: a
connection or a statement with no bound hangs its stage until the broker hands the message to
another worker, which hangs the same way.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError

from selfmend.errors import is_interruption

if TYPE_CHECKING:
    from selfmend.config import Settings


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long connecting, and one statement, may take before they fail. The defaults are
    Settings' (``database_connect_timeout_seconds``, ``database_statement_timeout_seconds``)."""

    connect_seconds: float = 10.0
    statement_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DatabaseTimeouts:
        return cls(
            settings.database_connect_timeout_seconds, settings.database_statement_timeout_seconds
        )

    def with_statement_seconds(self, seconds: float) -> DatabaseTimeouts:
        return replace(self, statement_seconds=seconds)

    @property
    def statement_ms(self) -> int:
        return max(1, round(self.statement_seconds * 1000))

    def connect_args(self, url: str, options: str = "") -> dict[str, Any]:
        """The driver's arguments that set both bounds: on PostgreSQL ``connect_timeout`` (whole
        seconds, 2 at least) and ``statement_timeout`` through ``options``, after ``options``
        given; on SQLite the busy timeout, as a file has no connection to wait for."""
        if make_url(url).get_backend_name() == "sqlite":
            return {"timeout": self.statement_seconds}
        return {
            "connect_timeout": max(2, math.ceil(self.connect_seconds)),
            "options": f"{options} -c statement_timeout={self.statement_ms}".strip(),
        }


def normalize_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs, the driver selfmend depends on."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, timeouts: DatabaseTimeouts | None = None) -> Engine:
    """An engine whose connections and statements are bounded by ``timeouts`` (the defaults
    when not given)."""
    url = normalize_url(url)
    timeouts = timeouts or DatabaseTimeouts()
    if make_url(url).get_backend_name() != "sqlite":
        # The store's queries are short index reads; PostgreSQL's JIT would spend more time
        # compiling them (it keys on cost estimates, which per-series reads inflate) than running.
        options = timeouts.connect_args(url, "-c jit=off")
        engine = create_engine(url, pool_size=5, max_overflow=5, connect_args=options)
        _ping_when_idle(engine)
        return engine
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={**timeouts.connect_args(url), "check_same_thread": False}
    )
    event.listen(engine, "connect", functools.partial(_tune_sqlite, busy_ms=timeouts.statement_ms))
    return engine


IDLE_PING_SECONDS = 5.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle over ``IDLE_PING_SECONDS``.

    A server restarted while the pool was idle leaves every pooled connection dead, so one that
    rested is pinged and, dead, replaced before the caller sees it (SQLAlchemy's pessimistic
    disconnect handling). ``pool_pre_ping`` pings on every checkout, a round trip each: a
    remediation checks out about nine connections, 1.4 ms of its 10. A connection returned a
    moment ago is as alive as a ping would find it; one that dies in use fails that use and the
    pool is dropped, as with pre-ping.
    """

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def rested_since(_dbapi_connection: Any, record: Any) -> None:
        record.info["checked_in"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_rested(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get("checked_in", 0.0) <= IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # dead: the pool discards it and connects anew
            if is_interruption(error):
                raise
            raise DisconnectionError(str(error)) from error


def reads(engine: Engine) -> Engine:
    """``engine`` for reads of one statement, outside a transaction on PostgreSQL: psycopg
    would otherwise wrap each in BEGIN and ROLLBACK, two round trips more than the query, and at
    read committed each statement sees its own snapshot either way. SQLite has no round trips
    to save, and switching a connection's isolation level there costs more than it saves
    (134 against 91 µs for a one-row read)."""
    if engine.dialect.name == "sqlite":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _tune_sqlite(dbapi_connection: Any, _record: Any, *, busy_ms: int) -> None:
    # WAL lets the worker's threads read while one writes; busy_timeout waits out the writer,
    # as long as a statement may take.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
