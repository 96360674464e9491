"""pg_create_index against a real PostgreSQL: the advice weighs the workload over time, not one
look at the sessions; a small table's index is built unasked and a big one's waits; rollback
drops only the index the action built; and once it exists, the pattern's series recovers."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from sqlalchemy import text

from selfmend.collect.postgres import PostgresCollector
from selfmend.config import Settings
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.detect.patterns import MetricCondition
from selfmend.errors import ActionError
from selfmend.models import Risk
from selfmend.remedy.actions.postgres_databases import MonitoredDatabases
from selfmend.remedy.actions.postgres_index import PgCreateIndex
from selfmend.remedy.actions.postgres_index_advice import advise
from selfmend.remedy.actions.postgres_workload import read_workload
from selfmend.system import System
from tests.resources import database_name, database_url, fresh_database

from .conftest import wait_for

pytestmark = pytest.mark.integration

DATABASE = database_name("index")
URL = database_url("index")
SEARCH = "SELECT id, name FROM products WHERE sku = %s"
LOOKUP = "SELECT sku FROM products WHERE id = %s"


@pytest.fixture(scope="module")
def databases():
    return MonitoredDatabases([fresh_database("index")])


@pytest.fixture
def products(databases):
    """20,000 products, their statistics fresh, no index but the primary key, and one
    sequential scan already counted (by a session that is gone)."""
    with psycopg.connect(URL, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS products")
        connection.execute(
            "CREATE TABLE products (id int PRIMARY KEY, sku text, name text, category int)"
        )
        connection.execute(
            "INSERT INTO products SELECT g, 'SKU-' || g, 'product ' || g, g % 40 "
            "FROM generate_series(1, 20000) g"
        )
        connection.execute("ANALYZE products")
        connection.execute(SEARCH, ["SKU-1"])
    wait_for(lambda: seq_rows_read() >= 20_000, timeout=20, every=0.5)
    return "products"


def seq_rows_read() -> int:
    with psycopg.connect(URL) as connection:
        row = connection.execute(
            "SELECT seq_tup_read FROM pg_stat_user_tables WHERE relname = 'products'"
        ).fetchone()
    return row[0] if row else 0


def statements(installed: bool) -> bool:
    """pg_stat_statements created in the database, or dropped; whether the server loads it."""
    with psycopg.connect(URL, autocommit=True) as connection:
        verb = "CREATE EXTENSION IF NOT EXISTS" if installed else "DROP EXTENSION IF EXISTS"
        connection.execute(f"{verb} pg_stat_statements")
        loaded = connection.execute("SHOW shared_preload_libraries").fetchone()[0]
    return "pg_stat_statements" in loaded


def index_on(name: str) -> str | None:
    """The index's definition, or None if there is no index of that name."""
    with psycopg.connect(URL) as connection:
        row = connection.execute(
            "SELECT pg_get_indexdef(to_regclass(%s))", [f"public.{name}"]
        ).fetchone()
    return row[0]


def test_a_search_run_between_the_first_look_and_the_last_is_advised(databases, products):
    """The shop's sessions search now and then, and look a product up after each search, so
    one look at pg_stat_activity (at the start of the plan) sees only lookups an index serves;
    the searches run half a second in. Without pg_stat_statements, the advice samples."""
    statements(installed=False)
    sessions = [psycopg.connect(URL, autocommit=True) for _ in range(3)]
    for number, session in enumerate(sessions):
        session.execute(LOOKUP, [number + 1])

    def shop() -> None:
        time.sleep(0.5)
        for number, session in enumerate(sessions):  # bound server-side: the text holds $1
            session.execute(SEARCH, [f"SKU-{number + 7}"])
        time.sleep(0.5)
        for number, session in enumerate(sessions):
            session.execute(LOOKUP, [number + 1])

    searching = threading.Thread(target=shop)
    searching.start()
    try:
        plan = PgCreateIndex(databases).plan({})
    finally:
        searching.join()
        for session in sessions:
            session.close()

    assert plan.params["table"] == "products" and plan.params["columns"] == ["sku"]
    advice = plan.params["advice"]
    assert advice["queries"] == 1 and advice["executions"] == 3
    assert advice["source"].startswith("pg_stat_activity sampled for ")
    assert ": queries run 3 times (1 distinct; pg_stat_activity sampled for " in plan.summary


def test_pg_stat_statements_counts_every_run_when_it_is_loaded(databases, products):
    if not statements(installed=True):
        pytest.skip("the server does not load pg_stat_statements (shared_preload_libraries)")
    with psycopg.connect(URL, autocommit=True) as connection:
        connection.execute("SELECT pg_stat_statements_reset()")
        for number in range(5):
            connection.execute(SEARCH, [f"SKU-{number}"])
        for number in range(20):  # served by the primary key: no weight in the advice
            connection.execute(LOOKUP, [number + 1])

    with databases.engine(DATABASE).connect() as connection:
        started = time.monotonic()
        advice = advise(connection)
        took = time.monotonic() - started

    assert advice.columns == ["sku"] and advice.evidence["source"] == "pg_stat_statements"
    assert advice.evidence["executions"] == 5
    assert took < 1.0  # no sampling when the statements answer


def test_an_installed_pg_stat_statements_it_cannot_read_leaves_it_to_sampling(databases):
    if statements(installed=True):
        pytest.skip("the server loads pg_stat_statements, so it can be read")
    with databases.engine(DATABASE).connect() as connection:
        workload = read_workload(connection, seconds=0.2)
        assert workload.source == "pg_stat_activity"
        connection.execute(text("SELECT 1"))  # the plan's transaction is still usable


def test_the_sampling_is_bounded(databases, products):
    statements(installed=False)
    with databases.engine(DATABASE).connect() as connection:
        started = time.monotonic()
        workload = read_workload(connection, seconds=0.6, every=0.05)
        took = time.monotonic() - started
    assert took < 1.5
    assert workload.source == "pg_stat_activity" and 0 < workload.sampled_seconds <= 0.7


def test_a_small_tables_index_is_built_unasked_and_a_big_ones_waits_for_a_person(
    databases, products
):
    action = PgCreateIndex(databases)
    assert not action.risk.needs_approval

    small = action.plan({"table": products, "columns": ["sku"]})
    assert small.risk is None and 0 < small.params["heap_mb"] < 5

    big = action.plan({"table": products, "columns": ["sku"], "approve_above_mb": 0.1})
    assert big.risk is Risk.HIGH
    assert "MB, above the 0.1 MB built unasked)" in big.summary


def test_an_index_of_another_with_the_same_name_is_refused_and_never_dropped(databases, products):
    with psycopg.connect(URL, autocommit=True) as connection:
        connection.execute("CREATE INDEX selfmend_products_sku_idx ON products (name)")
    action = PgCreateIndex(databases)

    with pytest.raises(ActionError, match="an index named selfmend_products_sku_idx already"):
        action.plan({"table": products, "columns": ["sku"]})
    assert "(name)" in index_on("selfmend_products_sku_idx")


def test_an_invalid_index_left_by_a_broken_build_is_rebuilt_and_rolled_back(databases, products):
    with (
        psycopg.connect(URL, autocommit=True) as connection,
        pytest.raises(psycopg.errors.UniqueViolation),  # 40 categories: not unique
    ):
        connection.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY selfmend_products_category_idx ON products (category)"
        )
    action = PgCreateIndex(databases)

    plan = action.plan({"table": products, "columns": ["category"]})
    assert plan.undo == {"drop": True} and plan.summary.startswith("CREATE INDEX CONCURRENTLY")
    assert action.apply(plan) == {"changed": True, "index": "selfmend_products_category_idx"}
    assert "UNIQUE" not in index_on("selfmend_products_category_idx")
    assert action.rollback(plan)["changed"] is True
    assert index_on("selfmend_products_category_idx") is None


class Shop:
    """Sessions that each search by SKU and look a product up by id, again and again."""

    def __init__(self, sessions: int = 3) -> None:
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(sessions)]
        for thread in self.threads:
            thread.start()

    def _run(self) -> None:
        with psycopg.connect(URL, autocommit=True) as session:
            while not self.stop.is_set():
                session.execute(SEARCH, ["SKU-77"])
                time.sleep(0.02)
                session.execute(LOOKUP, [77])
                time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()


def test_in_auto_mode_the_loop_builds_the_index_and_verifies_the_scans_stopped(tmp_path, products):
    """The lab's fault in small: the built-in pattern's action and series, its window and learned
    limit replaced by a 2 s window and the floor, as a hard threshold."""
    (builtin,) = [p for p in BUILTIN_PATTERNS if p.name == "postgres_seq_scans_heavy"]
    (condition,) = builtin.condition.metric_conditions()
    quick = MetricCondition(
        series=condition.series, aggregate="rate", window=2.0, op=">",
        threshold=condition.learn.floor,
    )  # fmt: skip
    pattern = builtin.model_copy(update={"condition": quick})
    settings = Settings(
        home=tmp_path,
        store_url=f"sqlite:///{tmp_path}/store.db",
        mode="auto",
        monitor_postgres_urls=[URL],
        settle_seconds=1.5,
        verify_window_seconds=2.0,
        verify_min_samples=3,
        cooldown_seconds=0,
    )
    system = System.from_settings(settings, patterns=(pattern,))
    shop = Shop()
    try:
        time.sleep(1.5)  # a busy backend sends its table statistics once a second

        def opened() -> list[int]:
            system.collect()
            return system.analyzer.run().new_incidents

        (incident_id,) = wait_for(opened, timeout=15, every=0.2)
        remediation = system.executor.remediate(incident_id)
        assert remediation.applied, remediation.reason
        while time.time() < remediation.applied_at + 4:
            system.collect()
            time.sleep(0.2)
        judged = system.verifier.verify(remediation)
    finally:
        shop.close()
    assert (judged.verdict, judged.status) == ("fixed", "resolved"), judged.after
    (applied,) = [e for e in system.store.executions.history(incident_id) if e.state == "applied"]
    assert applied.risk is Risk.MEDIUM and applied.params["columns"] == ["sku"]


def test_once_the_index_exists_the_patterns_series_falls_back_under_its_floor(databases, products):
    """What verify judges: the rate of rows sequential scans read, the pattern's own condition,
    over fresh samples. It held while the searches scanned, and clears once they use the
    index."""
    (pattern,) = [p for p in BUILTIN_PATTERNS if p.name == "postgres_seq_scans_heavy"]
    (condition,) = pattern.condition.metric_conditions()
    floor = condition.learn.floor
    collector = PostgresCollector(URL)
    stop = threading.Event()

    def shop() -> None:
        with psycopg.connect(URL, autocommit=True) as session:
            while not stop.is_set():
                session.execute(SEARCH, ["SKU-77"])
                time.sleep(0.005)

    def rate_over(seconds: float) -> float:
        points = []
        for _ in range(int(seconds / 0.5) + 1):
            (sample,) = [
                s for s in collector.collect() if s.series == "postgres.seq_rows_read_total"
            ]
            points.append((sample.ts, sample.value))
            time.sleep(0.5)
        return condition.aggregate_of(points)

    searching = threading.Thread(target=shop)
    searching.start()
    action = PgCreateIndex(databases)
    plan = action.plan({"table": products, "columns": ["sku"]})
    try:
        time.sleep(1.5)  # a busy backend sends its table statistics once a second
        assert condition.holds(rate_over(3), floor)
        action.apply(plan)
        time.sleep(2.5)  # the searches' last scans, and the build's, reach the statistics
        after = rate_over(3)
    finally:
        stop.set()
        searching.join()
        action.rollback(plan)
    assert not condition.holds(after, floor)
