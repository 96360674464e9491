"""PostgreSQL session actions against a real server: long queries cancelled, idle transactions
ended, only the sessions the plan saw, within the bound, and never twice."""

from __future__ import annotations

import time

import psycopg
import pytest

from selfmend.config import Settings
from selfmend.detect.patterns import ActionSpec, MetricCondition, Pattern
from selfmend.errors import ActionError
from selfmend.models import Severity
from selfmend.remedy.actions.postgres_analyze import PgAnalyze
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from selfmend.remedy.actions.postgres_index import PgCreateIndex
from selfmend.remedy.actions.postgres_sessions import PgCancelQueries, PgEndIdleTransactions
from selfmend.remedy.base import Plan
from selfmend.system import System
from tests.resources import database_name, database_url, fresh_database

from .client_sessions import SessionOnThread
from .conftest import wait_for

pytestmark = pytest.mark.integration

DATABASE = database_name("actions")
URL = database_url("actions")


@pytest.fixture(scope="module")
def databases():
    return MonitoredDatabases([fresh_database("actions")])


def slow_query(seconds: float = 60) -> SessionOnThread:
    """A client session running ``pg_sleep`` on a thread; ``error`` is how it ended."""
    return SessionOnThread(URL, "SELECT pg_sleep(%s)", [seconds], application_name="shop")


def active_for(pid: int, seconds: float) -> bool:
    with psycopg.connect(URL) as connection:
        row = connection.execute(
            "SELECT clock_timestamp() - query_start > make_interval(secs => %s) "
            "FROM pg_stat_activity WHERE pid = %s AND state = 'active'",
            [seconds, pid],
        ).fetchone()
    return bool(row and row[0])


def test_a_long_query_is_cancelled_once_and_a_young_one_is_left_alone(databases):
    action = PgCancelQueries(databases)
    old = slow_query()
    try:
        wait_for(lambda: active_for(old.pid, 1.5), timeout=10, every=0.1)
        young = slow_query()
        wait_for(lambda: active_for(young.pid, 0), timeout=10, every=0.1)

        plan = action.plan({"older_than_seconds": 1.5})
        assert [s["pid"] for s in plan.params["sessions"]] == [old.pid]
        assert plan.target == DATABASE
        assert action.apply(plan) == {"changed": True, "ended": [old.pid]}

        old.thread.join(10)
        assert isinstance(old.error, psycopg.errors.QueryCanceled)
        assert young.error is None and active_for(young.pid, 0)
        assert action.apply(plan) == {"changed": False, "ended": []}  # a redelivered apply
        assert action.rollback(plan) == {"changed": False, "reversible": False}
        young.close()
    finally:
        old.close()


def test_no_more_sessions_than_the_bound_are_cancelled_oldest_first(databases):
    queries = []
    try:
        for _ in range(3):
            queries.append(slow_query())
            time.sleep(0.3)
        wait_for(lambda: all(active_for(q.pid, 1.0) for q in queries), timeout=10, every=0.1)

        plan = PgCancelQueries(databases).plan({"older_than_seconds": 1.0, "max_sessions": 2})

        assert [s["pid"] for s in plan.params["sessions"]] == [q.pid for q in queries[:2]]
    finally:
        for query in queries:
            query.close()


def test_an_idle_transaction_is_ended_and_an_idle_session_kept(databases):
    in_transaction = psycopg.connect(URL)
    idle = psycopg.connect(URL, autocommit=True)
    try:
        in_transaction.execute("SELECT 1")  # opens a transaction and leaves it open
        idle.execute("SELECT 1")
        time.sleep(1.2)
        action = PgEndIdleTransactions(databases)

        plan = action.plan({"older_than_seconds": 1.0})
        assert [s["pid"] for s in plan.params["sessions"]] == [in_transaction.info.backend_pid]
        assert action.apply(plan)["ended"] == [in_transaction.info.backend_pid]

        with pytest.raises(psycopg.OperationalError):
            in_transaction.execute("SELECT 1")
        assert idle.execute("SELECT 1").fetchone() == (1,)
    finally:
        in_transaction.close()
        idle.close()


def test_a_pid_the_plan_did_not_see_start_is_never_signalled(databases):
    other = slow_query()
    try:
        wait_for(lambda: active_for(other.pid, 0.5), timeout=10, every=0.1)
        stale = Plan(
            "pg_cancel_queries",
            DATABASE,
            {"older_than_seconds": 0.5, "sessions": [{"pid": other.pid, "started": 0.0}]},
            {},
            "a plan from before the pid was reused",
        )

        assert PgCancelQueries(databases).apply(stale) == {"changed": False, "ended": []}
        assert other.error is None
    finally:
        other.close()


def test_only_a_monitored_database_may_be_named(databases):
    with pytest.raises(ActionError, match=r"params.database: 'billing' is not a monitored"):
        PgCancelQueries(databases).plan({"database": "billing", "older_than_seconds": 60})
    with pytest.raises(ActionError, match=r"params.older_than_seconds"):
        PgCancelQueries(databases).plan({"older_than_seconds": -1})


def test_the_loop_cancels_a_long_query_on_the_incidents_database_and_verifies(tmp_path):
    settings = Settings(
        home=tmp_path,
        store_url=f"sqlite:///{tmp_path}/store.db",  # not the session's shared store
        mode="auto",
        monitor_postgres_urls=[URL],
        settle_seconds=0.5,
        verify_window_seconds=1.5,
        verify_min_samples=2,
        cooldown_seconds=0,
    )
    long_query = Pattern(
        name="query_running_long",
        condition=MetricCondition(
            series="postgres.longest_query_seconds",
            aggregate="min",
            window=2.0,
            op=">",
            threshold=1.0,
        ),
        severity=Severity.MEDIUM,
        actions=(
            ActionSpec(
                name="pg_cancel_queries",
                params={"database": "{database}", "older_than_seconds": 1.0},
            ),
        ),
        why="cancel_query",
    )
    system = System.from_settings(settings, patterns=(long_query,))
    slow = slow_query()
    try:

        def collected_while_slow() -> bool:
            system.collect()
            return active_for(slow.pid, 3.0)

        wait_for(collected_while_slow, timeout=15, every=0.2)
        opened = system.analyzer.run().new_incidents
        (incident_id,) = [
            i for i in opened if system.store.incidents.get(i).pattern == "query_running_long"
        ]
        remediation = system.executor.remediate(incident_id)
        assert remediation.applied
        slow.thread.join(10)
        assert isinstance(slow.error, psycopg.errors.QueryCanceled)

        deadline = remediation.applied_at + 3
        while time.time() < deadline:
            system.collect()
            time.sleep(0.2)
        judged = system.verifier.verify(remediation)
        assert (judged.verdict, judged.status) == ("fixed", "resolved")
        (applied,) = [
            e for e in system.store.executions.history(incident_id) if e.state == "applied"
        ]
        assert applied.params["database"] == DATABASE
        assert applied.result["ended"] == [slow.pid]
    finally:
        slow.close()


@pytest.fixture
def orders(databases):
    """A table of 20,000 orders, its statistics fresh, no index but its primary key."""
    with psycopg.connect(URL, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS orders")
        connection.execute(
            "CREATE TABLE orders (id serial PRIMARY KEY, customer_id int, total numeric)"
        )
        connection.execute(
            "INSERT INTO orders (customer_id, total) "
            "SELECT g % 500, g FROM generate_series(1, 20000) g"
        )
        connection.execute("ANALYZE orders")
    return "orders"


def rows_changed_since_analyze(table: str) -> int:
    with psycopg.connect(URL) as connection:
        return connection.execute(
            "SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE relname = %s", [table]
        ).fetchone()[0]


def test_analyze_refreshes_statistics_only_when_rows_changed(databases, orders):
    action = PgAnalyze(databases)
    with psycopg.connect(URL, autocommit=True) as connection:
        connection.execute("DELETE FROM orders WHERE id <= 5000")
    wait_for(lambda: rows_changed_since_analyze(orders) >= 5000, timeout=10, every=0.2)

    plan = action.plan({"table": orders})
    assert plan.summary.startswith(f'ANALYZE "public"."orders" on {DATABASE} (')
    applied = action.apply(plan)
    assert applied["changed"] is True and applied["rows_changed"] >= 5000
    wait_for(lambda: rows_changed_since_analyze(orders) == 0, timeout=10, every=0.2)
    assert action.apply(plan)["changed"] is False


def test_an_identifier_not_in_the_schema_is_refused_naming_what_exists(databases, orders):
    with pytest.raises(ActionError, match=r"params.table: no table 'orders; DROP TABLE x'"):
        PgAnalyze(databases).plan({"table": "orders; DROP TABLE x"})
    with pytest.raises(
        ActionError, match=r"params.columns: \"public\".\"orders\" has no column 'email'"
    ):
        PgCreateIndex(databases).plan({"table": orders, "columns": ["customer_id", "email"]})


def index_valid(name: str) -> bool | None:
    with psycopg.connect(URL) as connection:
        row = connection.execute(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s",
            [name],
        ).fetchone()
    return None if row is None else row[0]


def test_an_index_is_built_concurrently_once_and_dropped_on_rollback(databases, orders):
    action = PgCreateIndex(databases)

    plan = action.plan({"table": orders, "columns": ["customer_id"]})
    index = plan.params["index"]
    assert index == "selfmend_orders_customer_id_idx"
    assert action.apply(plan) == {"changed": True, "index": index}
    assert index_valid(index) is True
    assert action.apply(plan) == {"changed": False, "index": index}  # redelivered

    covered = action.plan({"table": orders, "columns": ["customer_id"]})
    assert "already indexed" in covered.summary and covered.undo == {"drop": False}

    assert action.rollback(plan) == {"changed": True, "index": index}
    assert index_valid(index) is None
    assert action.rollback(plan)["changed"] is False


def test_a_build_that_cannot_get_its_lock_fails_clearly_and_leaves_no_index(databases, orders):
    action = PgCreateIndex(databases)
    plan = action.plan({"table": orders, "columns": ["total"]})
    blocker = psycopg.connect(URL)
    try:
        blocker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")  # held until rollback
        with pytest.raises(ActionError, match="building selfmend_orders_total_idx failed"):
            action.apply(plan)
    finally:
        blocker.rollback()
        blocker.close()
    assert index_valid(plan.params["index"]) is None


def seq_rows_read(table: str) -> int:
    with psycopg.connect(URL) as connection:
        return connection.execute(
            "SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = %s", [table]
        ).fetchone()[0]


def test_an_index_is_recommended_from_the_queries_that_scan_a_table(databases, orders):
    action = PgCreateIndex(databases)
    with pytest.raises(ActionError, match=f"no index to recommend on {DATABASE}"):
        action.plan({})
    sessions = [psycopg.connect(URL, autocommit=True) for _ in range(3)]
    try:
        for customer, session in enumerate(sessions):  # bound server-side: the text holds $1
            session.execute(
                "SELECT sum(total) FROM orders WHERE customer_id = %s AND total > %s",
                [customer, 10],
            )
        # A busy backend sends its table statistics at most once a second, an idle one 10 s on.
        wait_for(lambda: seq_rows_read(orders) >= 3 * 20_000, timeout=20, every=0.5)

        plan = action.plan({})

        assert plan.params["table"] == "orders" and plan.params["columns"] == [
            "customer_id",
            "total",
        ]
        assert plan.summary.startswith(
            'CREATE INDEX CONCURRENTLY selfmend_orders_customer_id_total_idx ON "public"."orders" '
            "(customer_id, total): queries run 3 times (1 distinct; pg_stat_activity sampled for "
        )
        assert plan.params["advice"]["seq_scans"] >= 3
        assert action.apply(plan)["changed"] is True
        explained = (
            sessions[0]
            .execute("EXPLAIN SELECT sum(total) FROM orders WHERE customer_id = 7 AND total > 10")
            .fetchall()
        )
        assert "selfmend_orders_customer_id_total_idx" in " ".join(row[0] for row in explained)
        # Built, it is advice no more: the table's index now leads with customer_id.
        with pytest.raises(ActionError, match="no index to recommend"):
            action.plan({})
    finally:
        for session in sessions:
            session.close()
    action.rollback(plan)


def test_an_index_request_gives_table_and_columns_or_neither(databases, orders):
    with pytest.raises(ActionError, match="give table and columns, or neither"):
        PgCreateIndex(databases).plan({"table": orders})
