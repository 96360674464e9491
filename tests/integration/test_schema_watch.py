"""The schema watch on real PostgreSQL through the real ``selfmend.schema.watch`` task on the
session worker (Redis broker, PostgreSQL store): a column renamed, one dropped and a type changed
with ALTER TABLE between two watches become one version with those changes, the live setting
moves to it, and the critical changes' incident is escalated by the real remediate task."""

from __future__ import annotations

import psycopg
import pytest

from selfmend.models import IncidentStatus
from selfmend.resilience.schema import version_control
from tests.resources import database_name, database_url, fresh_database

from .conftest import wait_for

pytestmark = pytest.mark.integration

DATABASE = database_name("schema_shop")
MISSING = database_name("schema_missing")  # never made
SHOP = """
CREATE TABLE customers (id serial PRIMARY KEY, name varchar(80) NOT NULL);
CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES customers (id),
    total numeric(10, 2) NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'new',
    note text
);
CREATE INDEX ix_orders_customer_id ON orders (customer_id);
"""


@pytest.fixture
def shop():
    """The application's database, made anew; an autocommit connection to alter it."""
    with psycopg.connect(fresh_database("schema_shop"), autocommit=True) as connection:
        connection.execute(SHOP)
        yield connection


@pytest.fixture
def system(install, shop):
    urls = [database_url("schema_missing"), database_url("schema_shop")]
    built = install(schema_watch_urls=urls)
    with built.store.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM schema_changes")
        connection.exec_driver_sql("DELETE FROM schema_versions")
    return built


def watched(celery_app) -> dict:
    return celery_app.send_task("selfmend.schema.watch").get(timeout=60)


def test_alter_table_between_two_watches_is_one_version_and_an_escalated_incident(
    celery_app, system, shop
):
    baseline = watched(celery_app)["databases"][DATABASE]
    shop.execute("ALTER TABLE orders RENAME COLUMN total TO amount")
    shop.execute("ALTER TABLE orders DROP COLUMN note")
    shop.execute("ALTER TABLE customers ALTER COLUMN name TYPE text")

    report = watched(celery_app)
    version = report["databases"][DATABASE]

    assert version["number"] == baseline["number"] + 1 == 2
    found = {(c["kind"], c["table"], c["column"]): c for c in version["changes"]}
    assert set(found) == {
        ("column_renamed", "orders", "amount"),
        ("column_dropped", "orders", "note"),
        ("type_changed", "customers", "name"),
    }
    assert found["column_renamed", "orders", "amount"]["before"] == "total"
    type_change = found["type_changed", "customers", "name"]
    assert (type_change["before"], type_change["after"], type_change["severity"]) == (
        "VARCHAR(80)",
        "TEXT",
        "high",
    )
    assert system.store.controls.get(version_control(DATABASE)) == version["version_id"]

    (incident_id,) = report["new_incidents"]
    assert incident_id in {int(key) for key in report["chains"]}
    wait_for(
        lambda: system.store.incidents.get(incident_id).status is IncidentStatus.ESCALATED,
        timeout=30,
    )
    assert [n.kind for n in system.store.notifications.for_incident(incident_id)] == ["escalated"]

    again = watched(celery_app)
    assert again["new_incidents"] == []
    assert again["databases"][DATABASE]["recorded"] is False
    assert len(system.store.incidents.list()) == 1


def test_a_database_that_does_not_exist_is_named_and_the_other_is_still_watched(celery_app, system):
    report = watched(celery_app)

    assert set(report["errors"]) == {MISSING}
    assert f"database {MISSING!r}" in report["errors"][MISSING]
    assert f'database "{MISSING}" does not exist' in report["errors"][MISSING]
    assert report["databases"][DATABASE]["recorded"] is True
