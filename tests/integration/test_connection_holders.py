"""Connection saturation against a real server: pg_connection_holders reads who holds the
connections, ends the sessions idle in a transaction when they are the cause, and otherwise
refuses with the breakdown, so the pool resize candidate (or a person) gets the incident."""

from __future__ import annotations

import contextlib
import threading

import psycopg
import pytest

from selfmend.config import Settings
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.errors import ActionError
from selfmend.models import ExecutionState, Severity
from selfmend.remedy.actions.postgres_connection_holders import PgConnectionHolders
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from selfmend.system import System
from tests.app_reads import app_reads
from tests.resources import database_name, database_url, fresh_database

from .conftest import wait_for

pytestmark = pytest.mark.integration

DATABASE = database_name("holders")
URL = database_url("holders")


@pytest.fixture(scope="module")
def databases():
    return MonitoredDatabases([fresh_database("holders")])


def idle_in_transaction_for(pids: list[int], seconds: float) -> bool:
    with psycopg.connect(URL) as connection:
        (count,) = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s) "
            "AND state = 'idle in transaction' "
            "AND clock_timestamp() - state_change > make_interval(secs => %s)",
            [pids, seconds],
        ).fetchone()
    return count == len(pids)


def active(pid: int) -> bool:
    with psycopg.connect(URL) as connection:
        row = connection.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'", [pid]
        ).fetchone()
    return row is not None


def sleep_until_cancelled(connection: psycopg.Connection) -> None:
    with contextlib.suppress(psycopg.errors.QueryCanceled):
        connection.execute("SELECT pg_sleep(60)")


def test_sessions_idle_in_a_transaction_are_named_with_the_holders_and_ended(databases):
    leaks = [psycopg.connect(URL, application_name="leaky") for _ in range(3)]
    healthy = psycopg.connect(URL, autocommit=True, application_name="shop")
    try:
        for leak in leaks:
            leak.execute("SELECT 1")  # opens a transaction and leaves it open
        healthy.execute("SELECT 1")
        pids = [leak.info.backend_pid for leak in leaks]
        wait_for(lambda: idle_in_transaction_for(pids, 1.0), timeout=10, every=0.1)
        action = PgConnectionHolders(databases)

        plan = action.plan({"idle_in_transaction_seconds": 1.0, "max_sessions": 2})

        assert plan.target == DATABASE
        assert [s["pid"] for s in plan.params["sessions"]] == pids[:2]  # oldest first, bounded
        (leaky,) = [
            h
            for h in plan.params["holders"]
            if h["application"] == "leaky" and h["database"] == DATABASE
        ]
        assert (leaky["state"], leaky["sessions"]) == ("idle in transaction", 3)
        assert leaky["oldest_seconds"] > 1.0
        assert "3 idle in transaction of leaky" in plan.summary

        assert action.apply(plan) == {"changed": True, "ended": pids[:2]}
        for leak in leaks[:2]:
            with pytest.raises(psycopg.OperationalError):
                leak.execute("SELECT 1")
        assert leaks[2].execute("SELECT 1").fetchone() == (1,)  # past the bound: kept
        assert healthy.execute("SELECT 1").fetchone() == (1,)
        assert action.apply(plan) == {"changed": False, "ended": []}  # a redelivered apply
        assert action.rollback(plan) == {"changed": False, "reversible": False}
    finally:
        for connection in [*leaks, healthy]:
            connection.close()


def test_with_only_active_and_idle_sessions_the_plan_refuses_with_the_breakdown(databases):
    idle = [psycopg.connect(URL, autocommit=True, application_name="shop") for _ in range(2)]
    busy = psycopg.connect(URL, autocommit=True, application_name="report")
    young = psycopg.connect(URL, application_name="young")
    running = threading.Thread(target=sleep_until_cancelled, args=(busy,), daemon=True)
    try:
        for connection in idle:
            connection.execute("SELECT 1")
        running.start()
        young.execute("SELECT 1")  # in a transaction, but not for long
        wait_for(lambda: active(busy.info.backend_pid), timeout=10, every=0.1)

        with pytest.raises(ActionError) as refused:
            PgConnectionHolders(databases).plan({"idle_in_transaction_seconds": 60})

        message = str(refused.value)
        assert f"no session of {DATABASE} has idled in a transaction over 60 s" in message
        assert "2 idle of shop from" in message and f"on {DATABASE}" in message
        assert "1 active of report from" in message
        assert "1 idle in transaction of young" in message
        assert young.execute("SELECT 1").fetchone() == (1,)  # nothing was ended
    finally:
        busy.cancel()
        running.join(10)
        for connection in [*idle, busy, young]:
            connection.close()


def test_refused_it_gives_way_to_the_pool_resize_the_application_reads(tmp_path):
    settings = Settings(
        home=tmp_path,
        store_url=f"sqlite:///{tmp_path}/store.db",  # not the session's shared store
        mode="auto",
        monitor_postgres_urls=[URL],
        cooldown_seconds=0,
    )
    saturated = Pattern(
        name="db_connections_high",
        condition=MetricCondition(
            series="postgres.connections", aggregate="min", window=30, op=">", threshold=40
        ),
        severity=Severity.HIGH,
        actions=(
            ActionSpec(name="pg_connection_holders", params={"database": "{database}"}),
            ActionSpec(
                name="set_control", params={"key": "db.pool_size", "delta": -20, "minimum": 5}
            ),
        ),
        why="holders first, else shrink the pool",
    )
    system = System.from_settings(settings, patterns=(saturated,))
    app_reads(settings, system.store, "db.pool_size", default=50)
    target = f'postgres.connections{{database="{DATABASE}"}}'
    incident, _ = system.store.incidents.open(
        pattern="db_connections_high",
        target=target,
        severity=Severity.HIGH,
        series_key=target,
        root_cause="test",
        evidence={},
    )

    remediation = system.executor.remediate(incident.id)

    assert remediation.action == "set_control"
    assert system.store.controls.get("db.pool_size") == 30
    history = system.store.executions.history(incident.id)
    (refused,) = [e for e in history if e.state is ExecutionState.FAILED]
    assert refused.action == "pg_connection_holders"
    assert "they are held by:" in refused.reason
    system.store.close()
