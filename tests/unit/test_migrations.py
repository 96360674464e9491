"""The migrations build exactly the tables the code declares, and the reads every claim makes
find an index rather than scan the log."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from selfmend.store import Store
from selfmend.store.claims import HOUR
from selfmend.store.tables import metadata


def test_migrated_sqlite_store_matches_the_declared_tables(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path}/store.db", migrate=True)
    with store.engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []


def test_cap_and_cooldown_reads_use_an_index(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path}/store.db", migrate=True)
    reads = {
        "per-hour cap": "SELECT count(*) FROM executions "
        f"WHERE state = 'applying' AND created_at > {HOUR}",
        "cooldown": "SELECT created_at FROM executions WHERE action = 'a' AND target = 't' "
        "AND state = 'applied' ORDER BY created_at DESC LIMIT 1",
    }
    with store.engine.connect() as connection:
        for name, sql in reads.items():
            plan = " ".join(
                row[-1] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            )
            assert "USING COVERING INDEX" in plan, (name, plan)
            assert "TEMP B-TREE" not in plan, (name, plan)
