"""The fault lab's injectors against the real servers (bench/lab/faults): each breaks what it
says, and its undo puts everything back."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest
import redis

from bench.lab import shop_db
from bench.lab.dependency import Dependency
from bench.lab.env import LabEnv, free_port
from bench.lab.faults import FaultContext
from bench.lab.faults.cache_flush import CacheFlush
from bench.lab.faults.dependency import SlowDependency
from bench.lab.faults.idle_transactions import COUNT, IdleTransactions
from bench.lab.faults.index import DroppedIndex
from bench.lab.faults.locks import LockContention
from tests.resources import empty_redis, fresh_database, temp_folder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def context():
    shop = fresh_database("lab_faults")
    shop_db.seed(shop)
    env = LabEnv(
        folder=temp_folder("lab"),
        store_url="",
        shop_db_url=shop,
        cache_url=empty_redis("app"),
        shop_broker_url=empty_redis("side_broker"),
        broker_url="",
        results_url="",
        state_url="",
        service_port=free_port(),
        dependency_port=free_port(),
    )
    dependency = Dependency(env.dependency_port)
    dependency.start()
    yield FaultContext(env, dependency, shop_worker=None)
    dependency.stop()


def sessions_of(url: str, name: str, state: str) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(
            # This database's sessions only: a lab run on another slot holds sessions of the
            # same application name on the same server.
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = %s AND state = %s",
            (name, state),
        ).fetchone()[0]


def test_idle_transactions_appear_and_are_gone_after_the_undo(context):
    fault = IdleTransactions(context)
    fault.inject()
    try:
        assert sessions_of(context.env.shop_db_url, "lab-idle", "idle in transaction") == COUNT
    finally:
        fault.undo()
    deadline = time.monotonic() + 10
    while sessions_of(context.env.shop_db_url, "lab-idle", "idle in transaction"):
        assert time.monotonic() < deadline
        time.sleep(0.2)


def has_sku_index(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as connection:
        found = connection.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s",
                                   (shop_db.SKU_INDEX,)).fetchone()  # fmt: skip
    return found is not None


def test_the_sku_index_is_dropped_and_restored(context):
    fault = DroppedIndex(context)
    fault.inject()
    try:
        assert not has_sku_index(context.env.shop_db_url)
    finally:
        fault.undo()
    assert has_sku_index(context.env.shop_db_url)


def order_once(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("SET lock_timeout = '500ms'")
        connection.execute("UPDATE stock SET quantity = quantity - 1 WHERE product_id = 1")


def test_locked_stock_rows_block_orders_until_the_undo(context):
    fault = LockContention(context)
    fault.inject()
    try:
        with pytest.raises(psycopg.errors.LockNotAvailable):
            order_once(context.env.shop_db_url)
    finally:
        fault.undo()
    order_once(context.env.shop_db_url)


def test_the_cache_is_flushed(context):
    with redis.Redis.from_url(context.env.cache_url) as cache:
        cache.set("product:1", "{}")
        fault = CacheFlush(context)
        assert fault.inject() == {"keys_flushed": 1}
        fault.undo()
        assert cache.dbsize() == 0


def test_the_dependency_fails_slowly_until_the_undo(context):
    url = f"{context.env.dependency_url}/recommend/1"
    fault = SlowDependency(context)
    fault.inject()
    try:
        started = time.monotonic()
        assert httpx.get(url, timeout=5).status_code == 503
        assert time.monotonic() - started >= 1.0
    finally:
        fault.undo()
    assert httpx.get(url, timeout=5).status_code == 200
