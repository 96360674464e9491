"""One contract over every breaker storage: in memory, the store on SQLite and on a real
PostgreSQL, and a real Redis (database 1). The window is checked against a plain list of the
last calls over random outcomes from several processes, transitions race from many threads.
Then what a breaker on Redis sends: a healthy closed breaker's successes wait in the process
for its next trip, counted here as the commands its Redis client sends."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
import redis

from selfmend.errors import CircuitOpen
from selfmend.resilience.breaker import BreakerRegistry, MemoryStorage, State
from selfmend.resilience.breaker.circuit import process_id
from selfmend.resilience.breaker.redis_storage import RedisStorage
from selfmend.resilience.breaker.storage import BreakerStorage
from selfmend.resilience.breaker.store_storage import StoreStorage
from selfmend.store import Store
from tests.breaker_calls import Down, fail
from tests.resources import empty_redis, fresh_database, redis_url

pytestmark = pytest.mark.integration

BREAKER_REDIS = redis_url("breaker")


@pytest.fixture(scope="module")
def postgres_store():
    store = Store.from_url(fresh_database("breaker_storages"), migrate=True)
    yield store
    store.close()


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def storage(request, tmp_path) -> BreakerStorage:
    if request.param == "memory":
        return MemoryStorage()
    if request.param == "sqlite":
        return StoreStorage(Store.from_url(f"sqlite:///{tmp_path}/store.db", migrate=True).engine)
    if request.param == "postgres":
        store = request.getfixturevalue("postgres_store")
        with store.engine.begin() as connection:
            connection.exec_driver_sql("TRUNCATE breakers, breaker_calls")
        return StoreStorage(store.engine)
    return RedisStorage(redis.Redis.from_url(empty_redis("breaker")))


def expected_window(calls: list[tuple[bool, str]], size: int) -> tuple[int, int, int]:
    latest = calls[-size:]
    failing = Counter(process for failed, process in latest if failed)
    return len(latest), sum(failing.values()), len(failing)


def test_the_window_counts_exactly_the_last_calls(storage):
    """Each step sends what a process sends: its pending successes (none, one, a run, more
    than the window holds), then a failure or not."""
    rng = random.Random(7)
    calls: list[tuple[bool, str]] = []
    for step in range(400):
        size = 10 if step < 250 else 4  # the window is made smaller part way
        successes = rng.choice([0, 0, 0, 1, 1, 3, 7, 15])
        failed = rng.random() < (0.7 if 100 <= step < 150 else 0.3) or not successes
        process = rng.choice(["host:1", "host:2", "host:3"])
        calls += [(False, process)] * successes + [(True, process)] * failed
        recorded = storage.record("window", 0, process, size, successes=successes, failed=failed)
        window = recorded.window
        counted = (window.calls, window.failures, window.failing_processes)
        assert counted == expected_window(calls, size), f"step {step}"


def test_a_healthy_window_fills_to_its_size_and_stays_there(storage):
    for successes in (1, 3, 8):
        window = storage.record("healthy", 0, "host:1", 5, successes=successes).window
    assert (window.calls, window.failures, window.failing_processes) == (5, 0, 0)
    window = storage.record("healthy", 0, "host:2", 5, successes=2, failed=True).window
    assert (window.calls, window.failures, window.failing_processes) == (5, 1, 1)


def test_only_calls_admitted_under_the_current_version_count(storage):
    storage.record("epoch", 0, "host:1", 10, failed=True)
    moved = storage.move("epoch", State.CLOSED, 0, State.FORCED_CLOSED, 10.0)
    assert moved.won and moved.snapshot.version == 1 and moved.snapshot.since == 10.0
    assert storage.record("epoch", 0, "host:1", 10, successes=4, failed=True).window is None
    storage.move("epoch", State.FORCED_CLOSED, 1, State.CLOSED, 11.0)
    window = storage.record("epoch", 2, "host:1", 10, successes=1).window
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
    assert storage.record("probe", 2, "host:1", 10, successes=1).probe_successes == 1
    assert storage.record("probe", 2, "host:1", 10, failed=True).probe_successes is None
    assert storage.record("probe", 2, "host:2", 10, successes=1).probe_successes == 2
    assert half_open.state is State.HALF_OPEN and half_open.version == 2


def test_settings_are_published_and_overridden_for_all(storage):
    assert storage.settings("tuned").base is None
    storage.publish_settings("tuned", {"failure_threshold": 5})
    changed = storage.set_overrides("tuned", {"failure_threshold": 8})
    assert (changed.base, changed.overrides) == ({"failure_threshold": 5}, {"failure_threshold": 8})
    assert storage.read("tuned").settings_version == changed.version == 1


def test_redis_scripts_are_loaded_again_when_redis_does_not_know_them():
    client = redis.Redis.from_url(empty_redis("breaker"))
    storage = RedisStorage(client)
    storage.record("reload", 0, "host:1", 5, successes=1)
    storage._record.digest = "0" * 40  # what a restarted Redis answers to: an unknown script
    assert storage.record("reload", 0, "host:1", 5, successes=1).window.calls == 2


class CountingRedis(redis.Redis):
    """A Redis client that keeps the name of every command it sends: each is a round trip.
    Left out: ``SCRIPT LOAD``, sent once per script and process, before its first run."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def execute_command(self, *args, **options):
        command = str(args[0]).upper()
        if command != "SCRIPT LOAD":
            self.sent.append(command)
        return super().execute_command(*args, **options)


@pytest.fixture
def counted() -> CountingRedis:
    client = CountingRedis.from_url(empty_redis("breaker"))
    return client


def healthy_breaker(client: CountingRedis, name: str, **options):
    """A breaker on ``client`` that has made its first call (which reads the state) and has
    not sent anything since."""
    breaker = BreakerRegistry(RedisStorage(client)).get(name, min_processes=1, **options)
    breaker.call(lambda: None)
    client.sent.clear()
    return breaker


def test_healthy_calls_make_no_round_trip_and_a_failure_sends_them_first(counted):
    breaker = healthy_breaker(counted, "buffered", failure_threshold=3, sync_seconds=60)
    for _ in range(5):
        assert breaker.call(lambda: "served") == "served"
    assert counted.sent == []

    with pytest.raises(Down):
        breaker.call(fail)
    assert counted.sent == ["EVALSHA"]  # the 6 successes and the failure, in one trip
    key = "selfmend:breaker:{buffered}"
    newest_first = [entry.decode() for entry in counted.lrange(f"{key}:calls", 0, -1)]
    assert newest_first == [f"1{process_id()}", "s6"]  # the successes, then the failure
    assert counted.hmget(key, "calls", "failures") == [b"7", b"1"]


def test_a_window_worth_of_pending_successes_is_sent_at_once(counted):
    breaker = healthy_breaker(counted, "full", window_size=5, sync_seconds=60)
    for _ in range(3):
        breaker.call(lambda: None)
    assert counted.sent == []
    breaker.call(lambda: None)  # the fifth pending success
    assert counted.sent == ["EVALSHA"]
    assert counted.hget("selfmend:breaker:{full}", "calls") == b"5"


def test_pending_successes_are_sent_once_the_view_is_older_than_sync_seconds(counted):
    breaker = healthy_breaker(counted, "renewed", sync_seconds=0.2)
    for _ in range(3):
        breaker.call(lambda: None)
    time.sleep(0.3)
    counted.sent.clear()
    breaker.call(lambda: None)
    assert counted.sent == ["EVALSHA"]  # the renewal, which carried the 4 successes
    assert counted.hget("selfmend:breaker:{renewed}", "calls") == b"4"


def test_a_healthy_process_sees_another_open_the_breaker_within_sync_seconds(counted):
    breaker = healthy_breaker(counted, "cut", sync_seconds=0.2)
    other = RedisStorage(redis.Redis.from_url(BREAKER_REDIS))  # another process
    assert other.move("cut", State.CLOSED, 0, State.OPEN, time.time()).won
    time.sleep(0.3)
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: "never called")
