"""The schema watch as a stage, on SQLite: the first run is the baseline, an unchanged schema
records nothing, a change is a new version with its changes, the live setting and the listeners
hear of it, and a critical change opens one incident that the remediate stage escalates."""

import sqlite3

import pytest

from selfmend.client import Client
from selfmend.config import Settings
from selfmend.errors import ConfigurationError
from selfmend.models import IncidentStatus, Severity
from selfmend.resilience.schema import SchemaEvents, version_control
from selfmend.resilience.schema.databases import watched_databases
from selfmend.resilience.schema.watch import SCHEMA_CRITICAL_PATTERN, SchemaWatch, incident_target
from selfmend.system import System

SHOP = """
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer VARCHAR(80) NOT NULL, total NUMERIC(10, 2));
CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(80) NOT NULL);
"""


class Database:
    """An application database on SQLite that a test alters between watches."""

    def __init__(self, path, script: str = SHOP) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.alter(script)

    def alter(self, script: str) -> None:
        with sqlite3.connect(self.path) as connection:
            connection.executescript(script)


@pytest.fixture
def shop(tmp_path):
    return Database(tmp_path / "shop.sqlite")


def watching(tmp_path, *urls: str) -> System:
    settings = Settings(home=tmp_path / "selfmend", mode="auto", schema_watch_urls=list(urls))
    return System.from_settings(settings, patterns=())


@pytest.fixture
def system(tmp_path, shop):
    return watching(tmp_path, shop.url)


@pytest.fixture
def heard(system):
    """The events this system's watch fires."""
    events = SchemaEvents()
    system.schema_watch.events = events
    received = []
    events.connect(received.append)
    return received


def test_the_first_watch_records_the_baseline_and_publishes_it(system, heard):
    report = system.watch_schemas()
    shop = report["databases"]["shop"]

    assert (shop["number"], shop["recorded"], shop["changes"]) == (1, True, [])
    assert system.store.controls.get(version_control("shop")) == shop["version_id"]
    assert [(e.database, e.number, e.previous_id, e.changes) for e in heard] == [
        ("shop", 1, None, ())
    ]
    assert report["errors"] == {} and report["new_incidents"] == []


def test_an_unchanged_schema_records_no_version_and_fires_nothing(system, heard):
    first = system.watch_schemas()["databases"]["shop"]
    second = system.watch_schemas()["databases"]["shop"]

    assert second["recorded"] is False
    assert second["version_id"] == first["version_id"]
    assert len(system.store.schema_versions.versions("shop")) == 1
    assert len(heard) == 1


def test_a_change_is_a_new_version_with_its_changes_stored_and_announced(system, shop, heard):
    baseline = system.watch_schemas()["databases"]["shop"]
    shop.alter("ALTER TABLE orders ADD COLUMN note TEXT;")

    report = system.watch_schemas()["databases"]["shop"]

    assert (report["number"], report["severity"]) == (2, "low")
    assert system.store.schema_versions.changes(report["version_id"]) == [
        {
            "kind": "column_added",
            "severity": "low",
            "table": "orders",
            "column": "note",
            "before": None,
            "after": {"name": "note", "type": "TEXT", "nullable": True, "default": None},
        }
    ]
    assert system.store.controls.get(version_control("shop")) == report["version_id"]
    event = heard[-1]
    assert (event.previous_id, event.version_id) == (baseline["version_id"], report["version_id"])
    assert [change.kind for change in event.changes] == ["column_added"]
    assert system.store.incidents.list() == []


def test_the_application_reads_the_new_version_through_its_live_settings(system, shop):
    client = Client(system.settings, store=system.store, control_ttl=0)
    try:
        system.watch_schemas()
        first = client.control(version_control("shop"))
        shop.alter("ALTER TABLE orders DROP COLUMN total;")
        system.watch_schemas()

        assert client.control(version_control("shop")) != first
        assert (
            client.control(version_control("shop"))
            == system.store.schema_versions.latest("shop").id
        )
    finally:
        client.close()


def test_a_critical_change_opens_one_incident_that_is_escalated_to_a_person(system, shop):
    system.watch_schemas()
    shop.alter("ALTER TABLE orders RENAME COLUMN total TO amount;")

    report = system.watch_schemas()
    (incident_id,) = report["new_incidents"]
    incident = system.store.incidents.get(incident_id)

    assert report["databases"]["shop"]["incident"] == incident_id
    assert (incident.pattern, incident.severity) == (SCHEMA_CRITICAL_PATTERN, Severity.CRITICAL)
    assert incident.target == incident_target("shop", 2)
    assert "orders.amount renamed from total" in incident.root_cause
    assert incident.evidence["changes"][0]["kind"] == "column_renamed"

    remediation = system.executor.remediate(incident_id)

    assert remediation.decision == "escalated"
    assert system.store.incidents.get(incident_id).status is IncidentStatus.ESCALATED
    assert [n.kind for n in system.store.notifications.for_incident(incident_id)] == ["escalated"]
    again = system.watch_schemas()
    assert again["new_incidents"] == [] and again["databases"]["shop"]["recorded"] is False
    assert len(system.store.incidents.list()) == 1


def test_an_analyze_pass_leaves_the_incident_for_the_person(system, shop):
    system.watch_schemas()
    shop.alter("DROP TABLE customers;")
    (incident_id,) = system.watch_schemas()["new_incidents"]
    system.executor.remediate(incident_id)

    system.analyze()

    assert system.store.incidents.get(incident_id).status is IncidentStatus.ESCALATED


def test_each_critical_version_has_its_own_incident(system, shop):
    system.watch_schemas()
    shop.alter("DROP TABLE customers;")
    first = system.watch_schemas()["new_incidents"]
    shop.alter("ALTER TABLE orders DROP COLUMN customer;")
    second = system.watch_schemas()["new_incidents"]

    assert len(first) == len(second) == 1 and first != second


def test_an_unreachable_database_is_named_and_the_others_are_still_watched(tmp_path, shop):
    missing = tmp_path / "gone" / "billing.sqlite"
    down = "postgresql://postgres:secret@127.0.0.1:1/ledger"
    system = watching(tmp_path, str(f"sqlite:///{missing}"), down, shop.url)

    report = system.watch_schemas()

    assert set(report["errors"]) == {"billing", "ledger"}
    assert "database 'billing'" in report["errors"]["billing"]
    assert str(missing) in report["errors"]["billing"]
    assert "database 'ledger'" in report["errors"]["ledger"]
    assert "secret" not in report["errors"]["ledger"]
    assert report["errors"]["ledger"].startswith("DatabaseUnreachable")
    assert report["databases"]["shop"]["recorded"] is True
    assert not missing.parent.exists()  # the watch never creates a database


def test_a_listener_that_fails_keeps_neither_the_others_nor_the_watch_from_running(system, heard):
    def broken(event):
        raise RuntimeError("listener bug")

    events = system.schema_watch.events
    events.disconnect(heard.append)
    events.connect(broken)
    events.connect(heard.append)

    report = system.watch_schemas()

    assert len(heard) == 1
    assert report["errors"] == {}
    assert system.store.controls.get(version_control("shop")) == heard[0].version_id


def test_a_live_setting_that_lags_behind_the_latest_version_is_published_again(system):
    version_id = system.watch_schemas()["databases"]["shop"]["version_id"]
    system.store.controls.delete(version_control("shop"), actor="test")

    system.watch_schemas()

    assert system.store.controls.get(version_control("shop")) == version_id


def test_a_version_number_is_recorded_once_when_two_watchers_race(system):
    values = {"database": "shop", "number": 1, "digest": "d", "fingerprint": {}, "changes": []}

    assert system.store.schema_versions.record(**values) is not None
    assert system.store.schema_versions.record(**values) is None


class ReadBeforeTheRival:
    """The store's versions, but the first ``latest`` is the one this watcher read before a
    rival recorded the change."""

    def __init__(self, versions, stale) -> None:
        self.versions, self.stale = versions, stale

    def latest(self, database):
        stale, self.stale = self.stale, None
        return stale or self.versions.latest(database)

    def __getattr__(self, name):
        return getattr(self.versions, name)


def test_a_watch_that_lost_the_race_reports_the_rivals_version_and_fires_nothing(
    system, shop, heard
):
    system.watch_schemas()
    baseline = system.store.schema_versions.latest("shop")
    shop.alter("ALTER TABLE orders DROP COLUMN customer;")
    rival = SchemaWatch(system.store, watched_databases([shop.url]), SchemaEvents()).run()
    system.store.schema_versions = ReadBeforeTheRival(system.store.schema_versions, baseline)

    report = system.watch_schemas()

    assert report["databases"]["shop"]["recorded"] is False
    assert report["databases"]["shop"]["version_id"] == rival.databases["shop"]["version_id"]
    assert len(heard) == 1  # only the baseline
    assert len(system.store.incidents.list()) == 1  # the rival's, not a second one


def test_two_databases_with_one_name_are_refused_naming_both(tmp_path):
    with pytest.raises(ConfigurationError, match="both named 'shop'") as raised:
        watched_databases(["postgresql://a/shop", "postgresql://b/shop"])

    assert "postgresql://a/shop" in str(raised.value) and "postgresql://b/shop" in str(raised.value)


def test_without_its_own_list_the_watch_reads_the_monitored_postgres_databases():
    settings = Settings(monitor_postgres_urls="postgresql://db/shop")

    assert settings.resolved_schema_watch_urls == ["postgresql://db/shop"]
    assert Settings(
        monitor_postgres_urls="postgresql://db/shop", schema_watch_urls="sqlite:///app.db"
    ).resolved_schema_watch_urls == ["sqlite:///app.db"]
