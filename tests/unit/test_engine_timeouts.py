"""The store's engine on SQLite: the statement timeout is the busy timeout, how long a statement
waits for another writer's lock before it fails; the engines' defaults are the Settings', and
the engines the client and ``selfmend db upgrade`` open use the timeouts set."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from selfmend import cli
from selfmend.client import Client
from selfmend.config import Settings
from selfmend.store import Store
from selfmend.store.engine import DatabaseTimeouts, make_engine


def test_the_default_timeouts_are_the_settings_defaults():
    assert DatabaseTimeouts() == DatabaseTimeouts.from_settings(Settings())


def test_on_sqlite_a_write_waits_for_another_writer_no_longer_than_the_statement_timeout(
    tmp_path,
):
    engine = make_engine(f"sqlite:///{tmp_path}/store.db", DatabaseTimeouts(statement_seconds=0.3))
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE marks (x INTEGER)")
    holder = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction, never ending
    try:
        began = time.monotonic()
        with (
            pytest.raises(OperationalError, match="database is locked"),
            engine.begin() as connection,
        ):
            connection.exec_driver_sql("INSERT INTO marks VALUES (1)")
        assert 0.25 <= time.monotonic() - began < 3
    finally:
        holder.close()
        engine.dispose()


def busy_ms(engine: Engine) -> int:
    """The SQLite engine's statement timeout: how long a statement waits for a lock."""
    with engine.connect() as connection:
        return connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()


def test_the_clients_store_and_writer_wait_no_longer_than_the_statement_timeout_set(tmp_path):
    settings = Settings(home=tmp_path, database_statement_timeout_seconds=0.3)
    Store.from_url(settings.resolved_store_url, migrate=True).close()  # the migrate job's
    client = Client(settings)
    writer = client.writer(f"sqlite:///{tmp_path}/shop.db")
    try:
        assert (busy_ms(client.store.engine), busy_ms(writer.engine)) == (300, 300)
    finally:
        client.close(timeout=1)
        writer.engine.dispose()


def test_db_upgrade_waits_no_longer_than_the_statement_timeout_set(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFMEND_HOME", str(tmp_path))
    monkeypatch.setenv("SELFMEND_DATABASE_STATEMENT_TIMEOUT_SECONDS", "0.3")
    upgraded = []
    monkeypatch.setenv("SELFMEND_INDEX_BUILD_TIMEOUT_SECONDS", "900")

    def upgrade(engine, statement_timeout):
        upgraded.append((busy_ms(engine), statement_timeout))

    monkeypatch.setattr(cli, "upgrade", upgrade)

    done = CliRunner().invoke(cli.app, ["db", "upgrade"])

    assert done.exit_code == 0, done.output
    # SQLite's busy wait is the statement timeout; PostgreSQL's migration gets the build's.
    assert upgraded == [(300, 900.0)]
