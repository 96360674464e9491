"""Reading the columns a query filters a table on, from its text alone (sqlglot, never run)."""

import pytest
import sqlglot

from selfmend.remedy.actions.postgres_index_advice import (
    _index_columns,
    filtered_columns,
    index_columns,
)

ORDERS = {"id", "customer_id", "status", "created_at", "total"}


def found(sql: str, table: str = "orders") -> dict[str, str]:
    return filtered_columns(sqlglot.parse_one(sql, read="postgres"), table, ORDERS)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM orders WHERE customer_id = $1", {"customer_id": "equality"}),
        ("SELECT * FROM orders WHERE $1 = customer_id", {"customer_id": "equality"}),
        ("SELECT * FROM orders WHERE status IN ('new', 'paid')", {"status": "equality"}),
        ("SELECT * FROM orders WHERE created_at > now() - interval '1 day'",
         {"created_at": "range"}),
        ("SELECT * FROM orders WHERE total BETWEEN 1 AND 9", {"total": "range"}),
        ("SELECT * FROM orders o WHERE o.customer_id = 4 AND o.total > 5",
         {"customer_id": "equality", "total": "range"}),
        # Equality wins over a range on the same column.
        ("SELECT * FROM orders WHERE total > 1 AND total = 3", {"total": "equality"}),
    ],
)  # fmt: skip
def test_a_column_compared_with_a_value_is_found(sql, expected):
    assert found(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM orders WHERE id = customer_id",  # a column against a column
        "SELECT * FROM customers WHERE customer_id = 1",  # another table
        "SELECT * FROM orders",  # no WHERE
        "SELECT * FROM orders WHERE email = 'x'",  # not a column of the table
        # Unqualified, with two tables, the column's table cannot be told.
        "SELECT * FROM orders JOIN customers USING (id) WHERE status = 'new'",
    ],
)
def test_no_column_is_claimed_without_evidence(sql):
    assert found(sql) == {}


def test_a_join_attributes_each_qualified_column_to_its_table():
    sql = (
        "SELECT o.id FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE o.status = $1 AND c.region = $2"
    )
    assert found(sql) == {"status": "equality"}


def test_equality_columns_lead_by_use_then_one_range_column():
    filtered = [
        ({"status": "equality", "created_at": "range"}, 1),
        ({"customer_id": "equality", "status": "equality"}, 1),
        ({"status": "equality", "total": "range"}, 1),
        ({"created_at": "range"}, 1),
    ]
    assert _index_columns(filtered) == ["status", "customer_id", "created_at"]


def test_a_column_weighs_as_often_as_the_queries_filtering_on_it_ran():
    """Two distinct queries on status, run once each, weigh less than one on customer_id run
    five times: the index leads with what the workload filters on most."""
    filtered = [
        ({"status": "equality"}, 1),
        ({"status": "equality", "total": "range"}, 1),
        ({"customer_id": "equality"}, 5),
        ({"created_at": "range"}, 3),
    ]
    assert _index_columns(filtered) == ["customer_id", "status", "created_at"]


def test_queries_an_index_already_serves_do_not_shape_the_advice():
    """A lookup by primary key beside a search on an unindexed column: the advice is the
    search's column alone, not (id, sku), which the search could not use."""
    by_id = ({"id": "equality"}, 30)
    by_sku = ({"sku": "equality"}, 2)

    chosen = index_columns([by_id, by_sku], leading={"id"})

    assert chosen.columns == ["sku"] and chosen.queries == [by_sku]
    assert index_columns([by_id], leading={"id"}) is None  # every query is served
