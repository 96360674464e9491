"""Schema fingerprints and diffs on real SQLite databases: each kind of change with its
severity, renames told from a drop plus an add, and a fingerprint that is the same every run."""

import sqlite3
from itertools import count

import pytest

from selfmend.models import Severity
from selfmend.resilience.schema import ChangeKind, Fingerprint, diff, fingerprint
from selfmend.resilience.schema.databases import WatchedDatabase

ORDERS = """
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer VARCHAR(80) NOT NULL,
    total NUMERIC(10, 2) NOT NULL,
    status VARCHAR(20) DEFAULT 'new',
    note TEXT
);
CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(80) NOT NULL);
"""
_databases = count()


def shape(tmp_path, script: str) -> Fingerprint:
    """The fingerprint of a new SQLite database made by ``script``."""
    path = tmp_path / f"db{next(_databases)}.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript(script)
    with WatchedDatabase("shop", f"sqlite:///{path}").connect() as connection:
        return fingerprint(connection)


def changes(tmp_path, alter: str, before: str = ORDERS):
    return diff(shape(tmp_path, before), shape(tmp_path, before + alter))


def kinds(found) -> list[tuple[ChangeKind, str, str | None]]:
    return [(change.kind, change.table, change.column) for change in found]


def rebuilt_orders(columns: str) -> str:
    """SQLite changes a column's type, nullability or default only by rebuilding the table."""
    return f"DROP TABLE orders; CREATE TABLE orders ({columns});"


def test_the_fingerprint_holds_tables_columns_and_keys_in_the_databases_order(tmp_path):
    orders = shape(tmp_path, ORDERS).tables["orders"]

    assert [column.name for column in orders.columns] == [
        "id",
        "customer",
        "total",
        "status",
        "note",
    ]
    assert orders.column("total").type == "NUMERIC(10, 2)"
    assert orders.column("customer").nullable is False
    assert orders.column("status").default == "'new'"
    assert orders.primary_key == ("id",)


def test_the_same_schema_gives_the_same_digest_in_another_database_and_read_back(tmp_path):
    first, second = shape(tmp_path, ORDERS), shape(tmp_path, ORDERS)

    assert first.canonical_json() == second.canonical_json()
    assert first.digest == second.digest
    assert Fingerprint.from_canonical(first.canonical()).digest == first.digest
    assert shape(tmp_path, ORDERS + "CREATE TABLE refunds (id INTEGER);").digest != first.digest


def test_no_change_gives_no_changes(tmp_path):
    assert changes(tmp_path, "") == []


@pytest.mark.parametrize(
    ("alter", "expected", "severity"),
    [
        (
            "CREATE TABLE refunds (id INTEGER PRIMARY KEY);",
            [(ChangeKind.TABLE_ADDED, "refunds", None)],
            Severity.LOW,
        ),
        (
            "ALTER TABLE orders ADD COLUMN paid_at TIMESTAMP;",
            [(ChangeKind.COLUMN_ADDED, "orders", "paid_at")],
            Severity.LOW,
        ),
        (
            rebuilt_orders(
                "id INTEGER PRIMARY KEY, customer VARCHAR(80), total NUMERIC(10, 2) NOT NULL, "
                "status VARCHAR(20) DEFAULT 'new', note TEXT"
            ),
            [(ChangeKind.NULLABLE_CHANGED, "orders", "customer")],
            Severity.MEDIUM,
        ),
        (
            rebuilt_orders(
                "id INTEGER PRIMARY KEY, customer VARCHAR(80) NOT NULL, "
                "total NUMERIC(10, 2) NOT NULL, status VARCHAR(20) DEFAULT 'open', note TEXT"
            ),
            [(ChangeKind.DEFAULT_CHANGED, "orders", "status")],
            Severity.MEDIUM,
        ),
        (
            rebuilt_orders(
                "id INTEGER PRIMARY KEY, total NUMERIC(10, 2) NOT NULL, "
                "customer VARCHAR(80) NOT NULL, status VARCHAR(20) DEFAULT 'new', note TEXT"
            ),
            [(ChangeKind.COLUMNS_REORDERED, "orders", None)],
            Severity.MEDIUM,
        ),
        (
            rebuilt_orders(
                "id INTEGER PRIMARY KEY, customer VARCHAR(80) NOT NULL, total TEXT NOT NULL, "
                "status VARCHAR(20) DEFAULT 'new', note TEXT"
            ),
            [(ChangeKind.TYPE_CHANGED, "orders", "total")],
            Severity.HIGH,
        ),
        (
            rebuilt_orders(
                "id INTEGER, customer VARCHAR(80) NOT NULL, total NUMERIC(10, 2) NOT NULL, "
                "status VARCHAR(20) DEFAULT 'new', note TEXT, PRIMARY KEY (id, customer)"
            ),
            [(ChangeKind.PRIMARY_KEY_CHANGED, "orders", None)],
            Severity.HIGH,
        ),
        (
            "DROP TABLE customers;",
            [(ChangeKind.TABLE_DROPPED, "customers", None)],
            Severity.CRITICAL,
        ),
        (
            "ALTER TABLE customers RENAME TO clients;",
            [(ChangeKind.TABLE_RENAMED, "clients", None)],
            Severity.CRITICAL,
        ),
        (
            "ALTER TABLE orders DROP COLUMN note;",
            [(ChangeKind.COLUMN_DROPPED, "orders", "note")],
            Severity.CRITICAL,
        ),
        (
            "ALTER TABLE orders RENAME COLUMN total TO amount;",
            [(ChangeKind.COLUMN_RENAMED, "orders", "amount")],
            Severity.CRITICAL,
        ),
    ],
)
def test_each_change_is_found_with_its_severity(tmp_path, alter, expected, severity):
    found = changes(tmp_path, alter)

    assert kinds(found) == expected
    assert [change.severity for change in found] == [severity]


def test_a_type_change_names_both_types(tmp_path):
    columns = (
        "id INTEGER PRIMARY KEY, customer VARCHAR(80) NOT NULL, total TEXT NOT NULL, "
        "status VARCHAR(20) DEFAULT 'new', note TEXT"
    )
    (change,) = changes(tmp_path, rebuilt_orders(columns))

    assert (change.before, change.after) == ("NUMERIC(10, 2)", "TEXT")
    assert change.describe() == "orders.total type: NUMERIC(10, 2) -> TEXT"


def test_a_renamed_column_keeps_its_old_name_and_a_renamed_key_is_no_key_change(tmp_path):
    found = changes(tmp_path, "ALTER TABLE customers RENAME COLUMN id TO customer_id;")

    assert kinds(found) == [(ChangeKind.COLUMN_RENAMED, "customers", "customer_id")]
    assert (found[0].before, found[0].after) == ("id", "customer_id")
    assert found[0].describe() == "customers.customer_id renamed from id"


def test_a_rename_beside_a_dropped_column_is_still_a_rename(tmp_path):
    found = changes(
        tmp_path,
        "ALTER TABLE orders DROP COLUMN customer; "
        "ALTER TABLE orders RENAME COLUMN total TO amount;",
    )

    assert kinds(found) == [
        (ChangeKind.COLUMN_RENAMED, "orders", "amount"),
        (ChangeKind.COLUMN_DROPPED, "orders", "customer"),
    ]


def test_a_dropped_column_and_an_added_one_of_another_type_are_no_rename(tmp_path):
    found = changes(
        tmp_path, "ALTER TABLE orders DROP COLUMN note; ALTER TABLE orders ADD COLUMN paid BOOLEAN;"
    )

    assert kinds(found) == [
        (ChangeKind.COLUMN_DROPPED, "orders", "note"),
        (ChangeKind.COLUMN_ADDED, "orders", "paid"),
    ]


def test_two_drops_and_two_adds_of_one_type_stay_drops_and_adds(tmp_path):
    before = "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c INTEGER);"
    found = changes(
        tmp_path,
        "ALTER TABLE t DROP COLUMN a; ALTER TABLE t DROP COLUMN b; "
        "ALTER TABLE t ADD COLUMN x TEXT; ALTER TABLE t ADD COLUMN y TEXT;",
        before=before,
    )

    assert sorted(kinds(found)) == [
        (ChangeKind.COLUMN_ADDED, "t", "x"),
        (ChangeKind.COLUMN_ADDED, "t", "y"),
        (ChangeKind.COLUMN_DROPPED, "t", "a"),
        (ChangeKind.COLUMN_DROPPED, "t", "b"),
    ]


def test_two_tables_of_one_shape_dropped_and_one_added_is_no_table_rename(tmp_path):
    before = "CREATE TABLE a (id INTEGER); CREATE TABLE b (id INTEGER);"
    found = changes(tmp_path, "DROP TABLE a; DROP TABLE b; CREATE TABLE c (id INTEGER);", before)

    assert kinds(found) == [
        (ChangeKind.TABLE_DROPPED, "a", None),
        (ChangeKind.TABLE_DROPPED, "b", None),
        (ChangeKind.TABLE_ADDED, "c", None),
    ]


def test_two_columns_of_one_type_renamed_in_place_are_two_renames(tmp_path):
    before = "CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c INTEGER);"
    found = changes(
        tmp_path,
        "ALTER TABLE t RENAME COLUMN a TO x; ALTER TABLE t RENAME COLUMN b TO y;",
        before=before,
    )

    assert [(c.kind, c.before, c.after) for c in found] == [
        (ChangeKind.COLUMN_RENAMED, "a", "x"),
        (ChangeKind.COLUMN_RENAMED, "b", "y"),
    ]


def test_a_renamed_column_moved_elsewhere_is_matched_as_the_only_one_of_its_type(tmp_path):
    columns = (
        "id INTEGER PRIMARY KEY, customer VARCHAR(80) NOT NULL, status VARCHAR(20) DEFAULT 'new', "
        "note TEXT, amount NUMERIC(10, 2) NOT NULL"
    )
    renamed, reordered = changes(tmp_path, rebuilt_orders(columns))

    assert (renamed.kind, renamed.before, renamed.after) == (
        ChangeKind.COLUMN_RENAMED,
        "total",
        "amount",
    )
    assert reordered.kind is ChangeKind.COLUMNS_REORDERED
    assert reordered.after == ["id", "customer", "status", "note", "amount"]
