"""The resilient writer on SQLite: each healing step, coercion, batches that keep their good
rows, refused heals, the transaction log, rollback and the promotion of model heals."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import create_engine, text

from selfmend.errors import InvalidInput, WriteRejected
from selfmend.learn.heal_rules import promote_model_heals
from selfmend.resilience.writer import ResilientWriter
from selfmend.resilience.writer.model import ModelUnavailable
from selfmend.store import Store

ORDERS = """
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer_name VARCHAR(40) NOT NULL,
    customer_email VARCHAR(100),
    quantity INTEGER NOT NULL DEFAULT 1,
    amount NUMERIC(10, 2),
    weight FLOAT,
    paid BOOLEAN,
    created_at DATETIME,
    details JSON,
    code VARCHAR(10) UNIQUE
)
"""


class ScriptedModel:
    """Stands in for the model's HTTP endpoint (tested for real in the integration tests)."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def column_for(self, table: str, key: str, columns: list[str]) -> str:
        self.asked.append(key)
        if key not in self.answers:
            raise ModelUnavailable("no answer scripted")
        return self.answers[key]

    def close(self) -> None:
        pass


@pytest.fixture
def store(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path}/store.db", migrate=True)
    yield store
    store.close()


@pytest.fixture
def app_engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/shop.db")
    with engine.begin() as connection:
        connection.exec_driver_sql(ORDERS)
    yield engine
    engine.dispose()


@pytest.fixture
def writer(app_engine, store):
    return ResilientWriter(app_engine, store, watch_interval=3600)


def rows_of(engine, columns: str = "customer_name, quantity") -> list[tuple]:
    with engine.connect() as connection:
        return connection.execute(text(f"SELECT {columns} FROM orders ORDER BY id")).all()


def test_exact_keys_are_written_without_a_log_entry(writer, app_engine, store):
    written = writer.insert("orders", {"customer_name": "Ada", "quantity": 2})
    assert written.heals == () and written.entry_id is None
    assert rows_of(app_engine) == [("Ada", 2)]
    assert store.heals.entries("shop", "orders") == []


@pytest.mark.parametrize(
    ("key", "column", "rule"),
    [
        ("customerName", "customer_name", "normalised"),
        ("Customer-Name", "customer_name", "normalised"),
        ("CUSTOMER_NAME", "customer_name", "normalised"),
        ("client_name", "customer_name", "synonym"),
        ("custName", "customer_name", "synonym"),
    ],
)
def test_a_mismatched_key_is_healed_and_logged(writer, app_engine, store, key, column, rule):
    written = writer.insert("orders", {key: "Ada", "qty": "3"})
    assert {(heal.key, heal.column, heal.rule) for heal in written.heals} == {
        (key, column, rule),
        ("qty", "quantity", "synonym"),
    }
    assert rows_of(app_engine) == [("Ada", 3)]
    [entry] = store.heals.entries("shop", "orders")
    assert entry.id == written.entry_id
    assert entry.sent == {key: "Ada", "qty": "3"}
    assert entry.written == {column: "Ada", "quantity": 3}
    assert entry.heals[key] == {"column": column, "rule": rule}
    assert entry.row_key == written.key == {"id": 1}


def test_a_learned_rule_heals_what_nothing_else_would(writer, app_engine):
    with pytest.raises(WriteRejected) as refused:
        writer.insert("orders", {"buyer": "Ada"})
    assert refused.value.kind == "unknown_column" and refused.value.field == "buyer"

    writer.learn_rule("orders", "buyer", "customer_name")
    written = writer.insert("orders", {"buyer": "Ada"})
    assert [(heal.column, heal.rule) for heal in written.heals] == [("customer_name", "learned")]
    assert rows_of(app_engine) == [("Ada", 1)]


def test_the_caller_can_extend_the_synonyms(app_engine, store):
    writer = ResilientWriter(app_engine, store, synonyms=[("customer", "purchaser")])
    written = writer.insert("orders", {"purchaser_name": "Ada"})
    assert [(heal.column, heal.rule) for heal in written.heals] == [("customer_name", "synonym")]


def test_values_are_coerced_to_the_column_types(writer, app_engine):
    writer.insert(
        "orders",
        {
            "customer_name": "Ada",
            "quantity": "4",
            "amount": "12.50",
            "weight": "0.5",
            "paid": "yes",
            "created_at": "2026-01-02T03:04:05",
            "details": '{"gift": true}',
        },
    )
    columns = "quantity, amount, weight, paid, created_at, details"
    [row] = rows_of(app_engine, columns)
    assert row[0] == 4 and Decimal(str(row[1])) == Decimal("12.50") and row[2] == 0.5
    assert row[3] == 1  # SQLite's boolean
    assert row[4].startswith(str(datetime(2026, 1, 2, 3, 4, 5)))
    assert row[5] == '{"gift": true}'


@pytest.mark.parametrize(
    ("values", "field", "says"),
    [
        ({"quantity": "two"}, "quantity", "is not an integer"),
        ({"quantity": 2.5}, "quantity", "is not an integer"),
        ({"quantity": True}, "quantity", "is not an integer"),
        ({"paid": "maybe"}, "paid", "true or false"),
        ({"created_at": "yesterday"}, "created_at", "ISO 8601"),
        ({"amount": "12,50"}, "amount", "decimal"),
        ({"details": "{broken"}, "details", "does not parse"),
        ({"customer_name": "x" * 41}, "customer_name", "longer than the column's 40"),
        ({"customer_name": None}, "customer_name", "NOT NULL"),
    ],
)
def test_a_value_that_cannot_be_coerced_names_its_column(writer, values, field, says):
    with pytest.raises(WriteRejected) as refused:
        writer.insert("orders", {"customer_name": "Ada", **values})
    assert refused.value.kind == "coercion"
    assert refused.value.field == field
    assert says in str(refused.value)


def test_a_required_column_left_out_is_refused(writer):
    with pytest.raises(WriteRejected) as refused:
        writer.insert("orders", {"quantity": 1})
    assert refused.value.kind == "missing_column" and refused.value.field == "customer_name"


def test_a_batch_keeps_its_good_rows_and_says_what_is_wrong_with_the_others(writer, app_engine):
    result = writer.insert_many(
        "orders",
        [
            {"customer_name": "Ada", "quantity": 1},
            {"customer_name": "Bob", "quantity": "many"},
            {"customerName": "Cy", "quantity": 3},
            {"customer_name": "Di", "colour": "red"},
            "not a row",
            {"customer_name": "Ed"},
        ],
    )
    assert [row.index for row in result.written] == [0, 2, 5]
    assert [(error.index, error.field, error.kind) for error in result.errors] == [
        (1, "quantity", "coercion"),
        (3, "colour", "unknown_column"),
        (4, None, "invalid"),
    ]
    assert str(result.errors[1]) == "row 3 'colour': matches no column of 'orders'"
    assert rows_of(app_engine) == [("Ada", 1), ("Cy", 3), ("Ed", 1)]


def test_a_batch_the_database_refuses_is_written_row_by_row(writer, app_engine, store):
    writer.insert("orders", {"customer_name": "Ada", "code": "A1"})
    result = writer.insert_many(
        "orders",
        [
            {"customer_name": "Bob", "code": "B1"},
            {"customer_name": "Cy", "code": "A1"},  # breaks the unique constraint
            {"customerName": "Di", "code": "D1"},
        ],
    )
    assert [row.index for row in result.written] == [0, 2]
    [error] = result.errors
    assert (error.index, error.kind) == (1, "database") and "UNIQUE" in error.reason
    assert rows_of(app_engine, "customer_name") == [("Ada",), ("Bob",), ("Di",)]
    [entry] = store.heals.entries("shop", "orders")
    assert entry.written["customer_name"] == "Di" and entry.row_key == result.written[1].key


def test_two_keys_onto_one_column_are_refused(writer, app_engine):
    with pytest.raises(WriteRejected) as refused:
        writer.insert("orders", {"customer_name": "Ada", "customerName": "Bob"})
    assert refused.value.kind == "ambiguous_heal" and refused.value.field == "customer_name"
    assert "'customer_name', 'customerName'" in str(refused.value)
    assert rows_of(app_engine) == []


def test_a_key_that_fits_two_columns_is_refused(app_engine, store):
    with app_engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, user_id INT, userId INT)"
        )
    writer = ResilientWriter(app_engine, store)
    with pytest.raises(WriteRejected) as refused:
        writer.insert("people", {"UserID": 1})
    assert refused.value.kind == "ambiguous_heal" and refused.value.field == "UserID"


def test_a_rejected_heal_is_never_used_again(writer, app_engine, store):
    written = writer.insert("orders", {"customerName": "Ada"})
    [heal] = writer.reject_heal(written.entry_id, actor="ops", reason="wrong column")
    assert (heal.key, heal.column) == ("customerName", "customer_name")

    for anyone in (writer, ResilientWriter(app_engine, store)):  # this process, and another
        with pytest.raises(WriteRejected) as refused:
            anyone.insert("orders", {"customerName": "Bob"})
        assert refused.value.kind == "unknown_column"
    assert rows_of(app_engine, "customer_name") == [("Ada",)]


def test_a_rejected_model_answer_is_not_taken_again(app_engine, store):
    model = ScriptedModel({"purchaser": "customer_name"})
    writer = ResilientWriter(app_engine, store, model=model)
    written = writer.insert("orders", {"purchaser": "Ada"})
    writer.reject_heal(written.entry_id, key="purchaser")
    with pytest.raises(WriteRejected):
        writer.insert("orders", {"purchaser": "Bob"})
    assert model.asked == ["purchaser", "purchaser"]  # asked again, its answer refused


def test_a_healed_insert_rolls_back_once(writer, app_engine, store):
    writer.insert("orders", {"customer_name": "Ada"})
    written = writer.insert("orders", {"customerName": "Bob"})
    writer.rollback(written.entry_id, actor="ops")
    assert rows_of(app_engine, "customer_name") == [("Ada",)]
    entry = store.heals.entry(written.entry_id)
    assert (entry.state, entry.rolled_back_by) == ("rolled_back", "ops")
    with pytest.raises(InvalidInput, match="rolled_back"):
        writer.rollback(written.entry_id)


def test_a_healed_update_logs_the_old_values_and_rolls_back_to_them(writer, app_engine):
    first = writer.insert("orders", {"customer_name": "Ada", "quantity": 1})
    assert first.key is None  # clean rows are written without RETURNING
    updated = writer.update("orders", {"id": "1"}, {"qty": "5", "customerName": "Ada L."})
    assert rows_of(app_engine) == [("Ada L.", 5)]
    writer.rollback(updated.entry_id)
    assert rows_of(app_engine) == [("Ada", 1)]


def test_an_update_of_a_missing_row_says_so(writer):
    with pytest.raises(WriteRejected) as refused:
        writer.update("orders", {"id": 99}, {"quantity": 2})
    assert refused.value.kind == "not_found"
    with pytest.raises(WriteRejected) as refused:
        writer.update("orders", {"customer_name": "Ada"}, {"quantity": 2})
    assert refused.value.kind == "invalid" and "primary key" in str(refused.value)


def test_only_a_real_column_from_the_model_is_accepted(app_engine, store):
    model = ScriptedModel({"purchaser": "customer_name", "colour": "colour_code"})
    writer = ResilientWriter(app_engine, store, model=model)
    written = writer.insert("orders", {"purchaser": "Ada"})
    assert [(heal.column, heal.rule) for heal in written.heals] == [("customer_name", "model")]
    with pytest.raises(WriteRejected) as refused:
        writer.insert("orders", {"customer_name": "Bob", "colour": "red"})
    assert refused.value.kind == "unknown_column" and refused.value.field == "colour"


def test_an_unavailable_model_refuses_the_row_and_is_asked_again_next_time(app_engine, store):
    model = ScriptedModel({})
    writer = ResilientWriter(app_engine, store, model=model)
    for _ in range(2):
        with pytest.raises(WriteRejected) as refused:
            writer.insert("orders", {"purchaser": "Ada"})
        assert refused.value.kind == "model"
    assert model.asked == ["purchaser", "purchaser"]


def test_repeated_model_heals_become_learned_rules(app_engine, store):
    model = ScriptedModel({"purchaser": "customer_name", "colour": "customer_email"})
    writer = ResilientWriter(app_engine, store, model=model)
    for _ in range(3):
        writer.insert_many("orders", [{"purchaser": "Ada"}, {"purchaser": "Bob"}])
        writer.invalidate()  # a new schema version: the model is asked again
    writer.insert("orders", {"customer_name": "Cy", "colour": "x@y"})
    written = writer.insert("orders", {"customer_name": "Di", "colour": "x@z"})
    writer.reject_heal(written.entry_id)

    assert promote_model_heals(store, min_seen=4) == []
    [rule] = promote_model_heals(store, min_seen=3)
    assert (rule.source_key, rule.column_name, rule.model_seen) == ("purchaser", "customer_name", 3)
    assert promote_model_heals(store, min_seen=3) == []  # already learned

    other = ResilientWriter(app_engine, store, model=ScriptedModel({}))
    healed = other.insert("orders", {"purchaser": "Ed"})
    assert [(heal.column, heal.rule) for heal in healed.heals] == [("customer_name", "learned")]


def test_a_new_schema_version_reloads_the_table(app_engine, store):
    writer = ResilientWriter(app_engine, store, watch_interval=0)
    writer.insert("orders", {"customer_name": "Ada"})
    with app_engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE orders ADD COLUMN note TEXT")
    store.controls.set("schema.version.shop", 2, actor="selfmend.schema")
    writer.insert("orders", {"customer_name": "Bob", "note": "gift"})
    assert rows_of(app_engine, "note") == [(None,), ("gift",)]


def test_a_rename_that_raced_the_cache_is_healed_after_one_reinspection(writer, app_engine):
    writer.insert("orders", {"customer_name": "Ada"})
    with app_engine.begin() as connection:
        connection.exec_driver_sql(
            'ALTER TABLE orders RENAME COLUMN customer_name TO "customerName"'
        )
    written = writer.insert("orders", {"customer_name": "Bob"})
    assert [(heal.column, heal.rule) for heal in written.heals] == [("customerName", "normalised")]
    assert rows_of(app_engine, '"customerName"') == [("Ada",), ("Bob",)]


def test_heals_are_counted_by_table_and_rule(writer):
    def heals(rule: str) -> float:
        labels = {"table": "orders", "rule": rule}
        return REGISTRY.get_sample_value("selfmend_writer_heals_total", labels) or 0.0

    before = heals("normalised"), heals("synonym")
    writer.insert_many("orders", [{"customerName": "Ada", "qty": 1}, {"customerName": "Bob"}])
    assert heals("normalised") - before[0] == 2 and heals("synonym") - before[1] == 1
