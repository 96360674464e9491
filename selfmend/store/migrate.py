"""Schema migrations through Alembic, configured in code so no alembic.ini is needed.

One process migrates at a time: ``upgrade`` holds a PostgreSQL advisory lock (or, on SQLite, a
lock on a file beside the database) while it reads the version and applies what is missing, so
processes that start together on a new database do not each create the tables. A process that
does not migrate waits for the schema with ``wait_for_schema``.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from selfmend.errors import ConfigurationError
from selfmend.store.missing import missing_database

log = structlog.get_logger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock's key: any constant no other tool on the database uses ("selfmend").
MIGRATION_LOCK = 0x73656C666D656E64


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(
    engine: Engine, revision: str = "head", *, statement_timeout: float | None = None
) -> None:
    """Bring the store's schema to ``revision``; safe to run on every start, and from several
    processes at once. On PostgreSQL, ``statement_timeout`` (seconds) replaces the engine's for
    the migration's transaction: a migration builds indexes on tables that may be large, and a
    second migrator waits on the lock for the first, both longer than the store's reads."""
    config = alembic_config(engine)
    with _one_migrator(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            if statement_timeout is not None:
                # SET takes no bind parameters; set_config(..., true) is SET LOCAL.
                connection.execute(
                    text("SELECT set_config('statement_timeout', :ms, true)"),
                    {"ms": str(max(1, round(statement_timeout * 1000)))},
                )
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@contextmanager
def _one_migrator(engine: Engine) -> Iterator[None]:
    """On SQLite, an exclusive lock on ``<database>.migrate-lock`` for the migration; SQLite's
    own locks come too late (the version is read before the first write). PostgreSQL's lock is
    taken in the migration's transaction instead."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def wait_for_schema(engine: Engine, wait: float, every: float = 1.0) -> None:
    """Return once the store's schema is this selfmend's head, waiting ``wait`` seconds at most
    for ``selfmend db upgrade`` (the compose ``migrate`` job) to bring it there; raise
    ``ConfigurationError`` saying what to run when it does not. A store already past our head
    is refused at once: this selfmend is older than the schema."""
    script = ScriptDirectory.from_config(alembic_config(engine))
    head = script.get_current_head()
    where = engine.url.render_as_string(hide_password=True)
    deadline = time.monotonic() + wait
    said_at = -10.0
    while True:
        try:
            with engine.connect() as connection:
                current = current_revision(connection)
        except OperationalError as error:
            missing = missing_database(engine, error)
            if missing is not None:  # waiting will not make it; a person must
                raise ConfigurationError(missing) from None
            current, problem = None, f"cannot connect ({error.orig or error})".splitlines()[0]
        else:
            problem = f"schema at {current or 'nothing'}, this selfmend needs {head}"
        if current == head:
            return
        if current is not None and not _known(script, current):
            raise ConfigurationError(
                f"the store at {where} has schema {current}, newer than this selfmend knows "
                f"({head}): upgrade selfmend"
            )
        if time.monotonic() >= deadline:
            raise ConfigurationError(
                f"the store at {where} is not ready: {problem}; run `selfmend db upgrade`"
            )
        if time.monotonic() - said_at >= 10.0:
            log.warning("store.waiting_for_schema", store=where, problem=problem)
            said_at = time.monotonic()
        time.sleep(every)


def _known(script: ScriptDirectory, revision: str) -> bool:
    try:
        return script.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for a revision it does not have
        return False


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a migration from the difference between the tables and the database."""
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)
