"""The store's engine on SQLite: the statement timeout is the busy timeout, how long a statement
waits for another writer's lock before it fails; and the engines' defaults are the Settings'."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy.exc import OperationalError

from selfmend.config import Settings
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
