"""On PostgreSQL too, the migrations build exactly the tables the code declares."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from selfmend.store import Store
from selfmend.store.tables import metadata


def test_migrated_postgres_store_matches_the_declared_tables(settings):
    store = Store.from_url(settings.store_url, migrate=True)
    try:
        with store.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    finally:
        store.close()
