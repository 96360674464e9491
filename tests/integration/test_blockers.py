"""Lock contention against a real server: pg_end_blockers finds the session at the head of a
lock queue (not the sessions queued behind it), terminates it when it idles in its transaction,
cancels its query when it runs one, and refuses when nothing blocks anyone that long; and when a
statement timeout ends every waiter within a second, the collector's
``postgres.oldest_blocker_seconds`` and the plan still see the same blocker, and the series goes
to 0 once it is ended."""

from __future__ import annotations

import threading

import psycopg
import pytest

from selfmend.collect.postgres import PostgresCollector
from selfmend.errors import ActionError
from selfmend.remedy.actions.postgres_blockers import PgEndBlockers
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from tests.resources import database_name, database_url, fresh_database

from .client_sessions import SessionOnThread
from .conftest import wait_for

pytestmark = pytest.mark.integration

DATABASE = database_name("blockers")
URL = database_url("blockers")
WAITING = 0.5  # seconds the tests let waiters queue before planning
HELD = 0.5  # seconds a blocker's transaction must have been open for it to be chosen


@pytest.fixture(scope="module")
def databases():
    return MonitoredDatabases([fresh_database("blockers")])


@pytest.fixture
def accounts(databases):
    with psycopg.connect(URL, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS accounts")
        connection.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)")
        connection.execute("INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g")
    return "accounts"


class Waiter:
    """A client session updating one account on a thread, queued behind whoever holds it."""

    def __init__(self, account: int) -> None:
        self.connection = psycopg.connect(URL, autocommit=True, application_name="waiter")
        self.pid = self.connection.info.backend_pid
        self.error: Exception | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(account,), daemon=True)
        self.thread.start()

    def _run(self, account: int) -> None:
        try:
            self.connection.execute("SET lock_timeout = '60s'")
            self.connection.execute(
                "UPDATE accounts SET balance = balance + 1 WHERE id = %s", [account]
            )
        except psycopg.Error as error:
            self.error = error
        finally:
            self.done.set()

    def close(self) -> None:
        self.thread.join(10)
        self.connection.close()


def locking_sleeper(account: int) -> SessionOnThread:
    """A client session that locks an account in its transaction, then runs ``pg_sleep``."""
    lock = ("SELECT * FROM accounts WHERE id = %s FOR UPDATE", [account])
    return SessionOnThread(
        URL, "SELECT pg_sleep(30)", application_name="report", autocommit=False, before=[lock]
    )


def holding(account: int, application: str = "holder") -> psycopg.Connection:
    """A session that locks an account and idles in its open transaction."""
    connection = psycopg.connect(URL, application_name=application)
    connection.execute("SELECT * FROM accounts WHERE id = %s FOR UPDATE", [account])
    return connection


def waited(pids: list[int], seconds: float) -> bool:
    """Every one of ``pids`` has waited on a lock over ``seconds``."""
    with psycopg.connect(URL) as connection:
        (count,) = connection.execute(
            "SELECT count(DISTINCT a.pid) FROM pg_stat_activity a "
            "JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted "
            "WHERE a.pid = ANY(%s) AND a.wait_event_type = 'Lock' "
            "AND clock_timestamp() - l.waitstart > make_interval(secs => %s)",
            [pids, seconds],
        ).fetchone()
    return count == len(pids)


def test_an_idle_blocker_is_named_terminated_once_and_its_waiters_proceed(databases, accounts):
    holder = holding(1)
    waiters: list[Waiter] = []
    try:
        waiters = [Waiter(1), Waiter(1)]  # the second queues behind the first, then the holder
        wait_for(lambda: waited([w.pid for w in waiters], WAITING), timeout=10, every=0.1)
        action = PgEndBlockers(databases)

        plan = action.plan({"transaction_seconds": HELD})

        assert plan.target == DATABASE
        (blocker,) = plan.params["sessions"]
        assert blocker["pid"] == holder.info.backend_pid  # the root, not a waiter
        assert (blocker["state"], blocker["blocks"]) == ("idle in transaction", 2)
        assert blocker["application"] == "holder" and "FOR UPDATE" in blocker["query"]
        assert f"pid {holder.info.backend_pid} (idle in transaction, holder" in plan.summary

        assert action.apply(plan) == {
            "changed": True,
            "ended": [holder.info.backend_pid],
            "cancelled": [],
        }
        wait_for(lambda: all(w.done.is_set() for w in waiters), timeout=10, every=0.05)
        assert [w.error for w in waiters] == [None, None]
        with pytest.raises(psycopg.OperationalError):
            holder.execute("SELECT 1")
        with psycopg.connect(URL) as connection:
            assert connection.execute("SELECT balance FROM accounts WHERE id = 1").fetchone() == (
                102,
            )
        assert action.apply(plan) == {"changed": False, "ended": [], "cancelled": []}
        assert action.rollback(plan) == {"changed": False, "reversible": False}
    finally:
        holder.close()
        for waiter in waiters:
            waiter.close()


def test_an_active_blocker_has_its_query_cancelled_and_its_session_kept(databases, accounts):
    sleeper = locking_sleeper(2)
    waiters: list[Waiter] = []
    try:
        waiters = [Waiter(2), Waiter(2)]
        wait_for(lambda: waited([w.pid for w in waiters], WAITING), timeout=10, every=0.1)
        action = PgEndBlockers(databases)

        plan = action.plan({"transaction_seconds": HELD})

        (blocker,) = plan.params["sessions"]
        assert blocker["pid"] == sleeper.pid
        assert (blocker["state"], blocker["blocks"]) == ("active", 2)
        assert "pg_sleep" in blocker["query"]

        assert action.apply(plan) == {"changed": True, "ended": [], "cancelled": [sleeper.pid]}
        sleeper.thread.join(10)
        assert isinstance(sleeper.error, psycopg.errors.QueryCanceled)
        wait_for(lambda: all(w.done.is_set() for w in waiters), timeout=10, every=0.05)
        assert [w.error for w in waiters] == [None, None]
        sleeper.connection.rollback()
        assert sleeper.connection.execute("SELECT 1").fetchone() == (1,)  # not terminated
        assert action.apply(plan) == {"changed": False, "ended": [], "cancelled": []}
    finally:
        sleeper.close()
        for waiter in waiters:
            waiter.close()


def test_the_oldest_transaction_is_ended_first_within_the_bound(databases, accounts):
    older = holding(3)
    younger = holding(4)
    waiters: list[Waiter] = []
    try:
        waiters = [Waiter(3), Waiter(4)]
        wait_for(lambda: waited([w.pid for w in waiters], WAITING), timeout=10, every=0.1)
        action = PgEndBlockers(databases)

        one = action.plan({"transaction_seconds": HELD})
        both = action.plan({"transaction_seconds": HELD, "max_sessions": 5})

        assert [s["pid"] for s in one.params["sessions"]] == [older.info.backend_pid]
        assert [s["pid"] for s in both.params["sessions"]] == [
            older.info.backend_pid,
            younger.info.backend_pid,
        ]
        assert action.apply(one)["ended"] == [older.info.backend_pid]
        assert waiters[0].done.wait(10) and waiters[0].error is None
        assert not waiters[1].done.is_set()  # past the bound: still queued behind its holder
        assert younger.execute("SELECT 1").fetchone() == (1,)
    finally:
        older.close()
        younger.close()
        for waiter in waiters:
            waiter.close()


def test_without_a_blocker_open_that_long_the_plan_refuses(databases, accounts):
    action = PgEndBlockers(databases)
    idle = holding(5)  # in a transaction, holding a lock nobody wants
    try:
        with pytest.raises(ActionError, match=f"no session of {DATABASE} in a transaction"):
            action.plan({"transaction_seconds": HELD})

        waiter = Waiter(5)
        try:
            wait_for(lambda: waited([waiter.pid], 0), timeout=10, every=0.1)
            with pytest.raises(ActionError, match="open over 60 s blocks another"):
                action.plan({"transaction_seconds": 60})  # blocking, but not open that long
        finally:
            idle.rollback()
            waiter.close()
        assert waiter.error is None
    finally:
        idle.close()


def test_only_a_monitored_database_and_a_small_bound_may_be_given(databases):
    action = PgEndBlockers(databases)
    with pytest.raises(ActionError, match=r"params.database: 'billing' is not a monitored"):
        action.plan({"database": "billing"})
    with pytest.raises(ActionError, match=r"params.max_sessions"):
        action.plan({"max_sessions": 6})
    with pytest.raises(ActionError, match=r"params.transaction_seconds"):
        action.plan({"transaction_seconds": 0})


class Orders:
    """A shop's orders on a thread: each updates one account under a statement timeout of
    ``timeout`` seconds and, ended by it, the next comes; so no waiter outlives the timeout."""

    def __init__(self, account: int, timeout: float) -> None:
        self.connection = psycopg.connect(
            URL,
            autocommit=True,
            application_name="orders",
            options=f"-c statement_timeout={int(timeout * 1000)}",
        )
        self.timed_out = 0
        self.placed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(account,), daemon=True)
        self.thread.start()

    def _run(self, account: int) -> None:
        while not self.stop.is_set():
            try:
                self.connection.execute(
                    "UPDATE accounts SET balance = balance + 1 WHERE id = %s", [account]
                )
                self.placed += 1
                self.stop.wait(0.05)
            except psycopg.errors.QueryCanceled:
                self.timed_out += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        self.connection.close()


def oldest_blocker(collector: PostgresCollector) -> float:
    [sample] = [s for s in collector.collect() if s.series == "postgres.oldest_blocker_seconds"]
    return sample.value


def test_a_blocker_whose_waiters_a_statement_timeout_ends_is_measured_found_and_ended(
    databases, accounts
):
    """Every waiter is ended after 0.3 s, yet the series ages with the blocker's transaction,
    and the plan bounded by that age (not by any waiter's) names it; once it is ended, the
    series is 0 and the orders go through."""
    collector = PostgresCollector(URL)
    holder = holding(6, application="lab-locker")
    orders = [Orders(6, timeout=0.3), Orders(6, timeout=0.3)]
    try:
        wait_for(lambda: oldest_blocker(collector) > 2.0, timeout=15, every=0.2)
        assert sum(o.timed_out for o in orders) >= 2  # each waiter died long before that
        action = PgEndBlockers(databases)

        plan = action.plan({"transaction_seconds": 2.0})

        (blocker,) = plan.params["sessions"]
        assert blocker["pid"] == holder.info.backend_pid
        assert blocker["application"] == "lab-locker" and blocker["transaction_seconds"] > 2.0
        assert action.apply(plan)["ended"] == [holder.info.backend_pid]
        wait_for(lambda: all(o.placed for o in orders), timeout=10, every=0.05)
        assert oldest_blocker(collector) == 0.0
    finally:
        for order in orders:
            order.close()
        holder.close()
        collector.engine.dispose()
