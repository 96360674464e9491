"""On PostgreSQL too, the migrations build exactly the tables the code declares."""

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from selfmend.store import Store
from selfmend.store.engine import DatabaseTimeouts, make_engine
from selfmend.store.migrate import MIGRATION_LOCK, current_revision, head_revision, upgrade
from selfmend.store.tables import metadata
from tests.resources import fresh_database

SELFMEND = shutil.which("selfmend", path=os.path.dirname(sys.executable))


def test_migrated_postgres_store_matches_the_declared_tables(settings):
    store = Store.from_url(settings.store_url, migrate=True)
    try:
        with store.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    finally:
        store.close()


@contextmanager
def migration_lock_held(url: str, seconds: float) -> Iterator[None]:
    """Another migrator's transaction: the migration lock held for ``seconds``, longer than the
    store's statement timeout, as a migration building indexes on a large store holds it."""
    holder = make_engine(url)
    connection = holder.connect()
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    release = threading.Timer(seconds, connection.rollback)
    release.start()
    try:
        yield
    finally:
        release.join()
        connection.close()
        holder.dispose()


def test_upgrade_runs_under_its_own_statement_timeout_not_the_stores():
    url = fresh_database("migrate_timeout")
    engine = make_engine(url, DatabaseTimeouts(statement_seconds=0.3))
    try:
        with migration_lock_held(url, 1.5):
            upgrade(engine, statement_timeout=600.0)
        with engine.connect() as connection:
            assert current_revision(connection) == head_revision(engine)
    finally:
        engine.dispose()


def test_db_upgrade_gives_the_migration_the_index_build_timeout(tmp_path):
    url = fresh_database("migrate_timeout_cli")
    env = {
        **os.environ,
        "SELFMEND_STORE_URL": url,
        "SELFMEND_HOME": str(tmp_path),
        "SELFMEND_DATABASE_STATEMENT_TIMEOUT_SECONDS": "0.3",
    }
    with migration_lock_held(url, 1.5):
        done = subprocess.run(
            [SELFMEND, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120
        )
    assert done.returncode == 0, done.stderr
