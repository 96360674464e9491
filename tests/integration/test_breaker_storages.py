"""One contract over every breaker storage: in memory, the store on SQLite and on a real
PostgreSQL, and a real Redis (database 1). The window is checked against a plain list of the
last calls over random outcomes from several processes, transitions race from many threads."""

from __future__ import annotations

import random
import threading
from collections import Counter

import psycopg
import pytest
import redis

from selfmend.resilience.breaker import MemoryStorage, State
from selfmend.resilience.breaker.redis_storage import RedisStorage
from selfmend.resilience.breaker.storage import BreakerStorage
from selfmend.resilience.breaker.store_storage import StoreStorage
from selfmend.store import Store

from .conftest import POSTGRES, REDIS

pytestmark = pytest.mark.integration

DATABASE = "selfmend_breaker_storages"
REDIS_DB = 1


@pytest.fixture(scope="module")
def postgres_store():
    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DATABASE}")
    store = Store.from_url(f"{POSTGRES}/{DATABASE}")
    yield store
    store.close()


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def storage(request, tmp_path) -> BreakerStorage:
    if request.param == "memory":
        return MemoryStorage()
    if request.param == "sqlite":
        return StoreStorage(Store.from_url(f"sqlite:///{tmp_path}/store.db").engine)
    if request.param == "postgres":
        store = request.getfixturevalue("postgres_store")
        with store.engine.begin() as connection:
            connection.exec_driver_sql("TRUNCATE breakers, breaker_calls")
        return StoreStorage(store.engine)
    client = redis.Redis.from_url(f"{REDIS}/{REDIS_DB}")
    client.flushdb()
    return RedisStorage(client)


def expected_window(calls: list[tuple[bool, str]], size: int) -> tuple[int, int, int]:
    latest = calls[-size:]
    failing = Counter(process for failed, process in latest if failed)
    return len(latest), sum(failing.values()), len(failing)


def test_the_window_counts_exactly_the_last_calls(storage):
    rng = random.Random(7)
    calls: list[tuple[bool, str]] = []
    for step in range(400):
        size = 10 if step < 250 else 4  # the window is made smaller part way
        failed = rng.random() < (0.7 if 100 <= step < 150 else 0.2)
        process = rng.choice(["host:1", "host:2", "host:3"])
        calls.append((failed, process))
        window = storage.record("window", 0, failed, process, size).window
        counted = (window.calls, window.failures, window.failing_processes)
        assert counted == expected_window(calls, size), f"step {step}"


def test_a_healthy_window_fills_to_its_size_and_stays_there(storage):
    for _ in range(12):
        window = storage.record("healthy", 0, False, "host:1", 5).window
    assert (window.calls, window.failures, window.failing_processes) == (5, 0, 0)
    window = storage.record("healthy", 0, True, "host:2", 5).window
    assert (window.calls, window.failures, window.failing_processes) == (5, 1, 1)


def test_only_calls_admitted_under_the_current_version_count(storage):
    storage.record("epoch", 0, True, "host:1", 10)
    moved = storage.move("epoch", State.CLOSED, 0, State.FORCED_CLOSED, 10.0)
    assert moved.won and moved.snapshot.version == 1 and moved.snapshot.since == 10.0
    assert storage.record("epoch", 0, True, "host:1", 10).window is None
    storage.move("epoch", State.FORCED_CLOSED, 1, State.CLOSED, 11.0)
    window = storage.record("epoch", 2, False, "host:1", 10).window
    assert (window.calls, window.failures) == (1, 0)  # entering a state empties the window


def test_of_racing_movers_exactly_one_wins(storage):
    start = threading.Barrier(8)
    wins: list[bool] = []

    def race() -> None:
        start.wait(5)
        wins.append(storage.move("race", State.CLOSED, 0, State.OPEN, 5.0).won)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert sorted(wins) == [False] * 7 + [True]
    assert storage.read("race").state is State.OPEN


def test_half_open_probe_slots_and_successes(storage):
    storage.move("probe", State.CLOSED, 0, State.OPEN, 1.0)
    half_open = storage.move("probe", State.OPEN, 1, State.HALF_OPEN, 2.0).snapshot
    assert [storage.claim_probe("probe", 2, 2).granted for _ in range(3)] == [True, True, False]
    assert storage.record("probe", 2, False, "host:1", 10).probe_successes == 1
    assert storage.record("probe", 2, True, "host:1", 10).probe_successes is None
    assert storage.record("probe", 2, False, "host:2", 10).probe_successes == 2
    assert half_open.state is State.HALF_OPEN and half_open.version == 2


def test_settings_are_published_and_overridden_for_all(storage):
    assert storage.settings("tuned").base is None
    storage.publish_settings("tuned", {"failure_threshold": 5})
    changed = storage.set_overrides("tuned", {"failure_threshold": 8})
    assert (changed.base, changed.overrides) == ({"failure_threshold": 5}, {"failure_threshold": 8})
    assert storage.read("tuned").settings_version == changed.version == 1


def test_redis_scripts_are_loaded_again_when_redis_does_not_know_them():
    client = redis.Redis.from_url(f"{REDIS}/{REDIS_DB}")
    client.flushdb()
    storage = RedisStorage(client)
    storage.record("reload", 0, False, "host:1", 5)
    storage._record.digest = "0" * 40  # what a restarted Redis answers to: an unknown script
    assert storage.record("reload", 0, False, "host:1", 5).window.calls == 2
