"""Healed rows on a real PostgreSQL: a batch goes in as one INSERT ... RETURNING, and each row
gets its own key back, whatever its table's serial sequence is called."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import create_engine, event

from selfmend.resilience.writer import ResilientWriter
from selfmend.store import Store
from tests.resources import fresh_database

pytestmark = pytest.mark.integration


@pytest.fixture
def store():
    store = Store.from_url(fresh_database("writer_keys_store"), migrate=True)
    yield store
    store.close()


@pytest.mark.parametrize(
    ("table", "create"),
    [
        ("orders", "CREATE TABLE orders (id serial PRIMARY KEY, seq int, customer_name text)"),
        (
            "Orders",  # quoted: its sequence is "Orders_id_seq"
            'CREATE TABLE "Orders" (id serial PRIMARY KEY, seq int, customer_name text)',
        ),
        (
            "orders",  # a sequence of its own, in another schema
            'CREATE SCHEMA keys; CREATE SEQUENCE keys."order-ids"; CREATE TABLE orders '
            "(id int PRIMARY KEY DEFAULT nextval('keys.\"order-ids\"'), seq int, "
            "customer_name text)",
        ),
    ],
)
def test_a_healed_batch_is_one_insert_and_each_row_gets_its_own_key(store, table, create):
    url = fresh_database("writer_keys_app")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(create)
        connection.execute(f"INSERT INTO \"{table}\" (seq, customer_name) VALUES (-1, 'first')")
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    inserts = []
    event.listen(
        engine,
        "before_cursor_execute",
        lambda _c, _cursor, statement, *_: (
            inserts.append(statement) if statement.startswith("INSERT") else None
        ),
    )
    writer = ResilientWriter(engine, store)
    rows = [{"seq": seq, "customerName": f"c{seq}"} for seq in range(40)]

    result = writer.insert_many(table, rows)

    assert result.ok and len(result.written) == 40
    assert len(inserts) == 1, inserts
    with psycopg.connect(url) as connection:
        stored = dict(connection.execute(f'SELECT id, seq FROM "{table}"').fetchall())
    assert [stored[row.key["id"]] for row in result.written] == list(range(40))
    entries = {entry.id: entry for entry in store.heals.entries(writer.database, table)}
    assert all(entries[row.entry_id].row_key == row.key for row in result.written)
    writer.close()
