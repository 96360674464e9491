"""Each collector against the real server it measures: Redis (a private redis-server, so no
other client's lookups move its hit ratio), PostgreSQL, a Prometheus endpoint, the Celery
broker and workers, and the push path through a Redis list."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import redis
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from selfmend.collect.celery_queues import CeleryCollector
from selfmend.collect.postgres import SERIES as POSTGRES_SERIES
from selfmend.collect.postgres import PostgresCollector
from selfmend.collect.prometheus import PrometheusCollector
from selfmend.collect.push import PushCollector, RedisPushBuffer
from selfmend.collect.redis import SERIES as REDIS_SERIES
from selfmend.collect.redis import RedisCollector
from selfmend.models import Sample, series_key
from tests.integration.conftest import wait_for
from tests.integration.private_redis import PrivateRedis
from tests.resources import database_name, fresh_database, redis_url

pytestmark = pytest.mark.integration

MONITORED_DB = database_name("monitored")


def by_series(samples: list[Sample]) -> dict[str, Sample]:
    return {series_key(s.series, s.labels): s for s in samples}


@pytest.fixture
def monitored_redis(tmp_path) -> Iterator[str]:
    server = PrivateRedis(tmp_path)
    yield server.url
    server.stop()


def test_redis_collector_measures_hit_ratio_memory_and_clients(monitored_redis):
    collector = RedisCollector(monitored_redis)
    app = redis.Redis.from_url(monitored_redis)
    app.set("present", 1)
    collector.collect()  # the first pass sets the baseline of the hit counters
    extra = [redis.Redis.from_url(monitored_redis) for _ in range(5)]
    for client in extra:
        client.ping()
    for _ in range(300):
        app.get("present")
    for _ in range(100):
        app.get("absent")

    samples = {s.series: s for s in collector.collect()}

    assert samples["redis.hit_ratio"].value == pytest.approx(0.75, abs=0.05)
    assert samples["redis.used_memory_bytes"].value > 100_000
    assert samples["redis.connected_clients"].value >= 7
    assert samples["redis.ops_per_sec"].value >= 0
    instance = monitored_redis.removeprefix("redis://")
    assert samples["redis.hit_ratio"].labels == {"instance": instance}
    assert samples["redis.rdb_last_bgsave_ok"].value in (0.0, 1.0)
    assert samples["redis.mem_fragmentation_ratio"].value > 0
    assert set(samples) <= set(REDIS_SERIES)
    for client in [app, *extra]:
        client.close()


@pytest.fixture
def monitored_database() -> str:
    return fresh_database("monitored")


def monitored_value(samples: dict[str, Sample], name: str, **labels: str) -> float:
    return samples[series_key(name, {"database": MONITORED_DB, **labels})].value


def sleep_until_cancelled(connection: psycopg.Connection) -> None:
    with contextlib.suppress(psycopg.errors.QueryCanceled):
        connection.execute("SELECT pg_sleep(60)")


def test_postgres_collector_counts_connections_by_state_and_the_longest_query(
    monitored_database,
):
    collector = PostgresCollector(monitored_database)
    opened = time.monotonic()
    idle_in_transaction = psycopg.connect(monitored_database)
    idle_in_transaction.execute("SELECT 1")  # opens a transaction and leaves it open
    idle = [psycopg.connect(monitored_database, autocommit=True) for _ in range(2)]
    slow = psycopg.connect(monitored_database, autocommit=True)
    sleeper = threading.Thread(target=sleep_until_cancelled, args=(slow,))
    sleeper.start()

    def held_a_second() -> dict[str, Sample] | None:
        samples = by_series(collector.collect())
        longest = monitored_value(samples, "postgres.longest_query_seconds")
        idle_for = monitored_value(samples, "postgres.longest_idle_in_transaction_seconds")
        return samples if min(longest, idle_for) >= 1.0 else None

    try:
        samples = wait_for(held_a_second, timeout=30, every=0.2)
        elapsed = time.monotonic() - opened
    finally:
        slow.cancel_safe()
        sleeper.join()
        for connection in [idle_in_transaction, *idle, slow]:
            connection.close()
        collector.engine.dispose()

    def value(name: str, **labels: str) -> float:
        return monitored_value(samples, name, **labels)

    assert value("postgres.connections_by_state", state="active") == 1
    assert value("postgres.connections_by_state", state="idle in transaction") == 1
    assert value("postgres.connections_by_state", state="idle") >= 2
    assert value("postgres.connections") >= 4
    assert 1.0 <= value("postgres.longest_query_seconds") <= elapsed + 0.5
    assert 0.0 <= value("postgres.cache_hit_ratio") <= 1.0
    assert 1.0 <= value("postgres.longest_idle_in_transaction_seconds") <= elapsed + 0.5
    assert value("postgres.longest_transaction_seconds") >= 1.0
    assert value("postgres.lock_waits") == 0
    assert value("postgres.oldest_blocker_seconds") == 0  # nobody waits on a lock
    assert value("postgres.deadlocks_total") == 0
    assert 0.0 < value("postgres.connection_utilization") <= 1.0
    assert value("postgres.xid_age") > 0
    assert {sample.series for sample in samples.values()} <= set(POSTGRES_SERIES)


def test_postgres_collector_counts_a_state_no_session_is_in_as_zero(monitored_database):
    """Once the session idle in transaction ends, its state's series goes to 0 rather than
    stopping: a pattern's window then sees the recovery."""
    collector = PostgresCollector(monitored_database)
    idle_in_transaction = psycopg.connect(monitored_database)
    idle_in_transaction.execute("SELECT 1")
    pid = idle_in_transaction.info.backend_pid
    try:
        before = by_series(collector.collect())
        idle_in_transaction.close()
        with psycopg.connect(monitored_database, autocommit=True) as watcher:
            gone = "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = %s)"
            wait_for(lambda: watcher.execute(gone, (pid,)).fetchone()[0], timeout=10)
        after = by_series(collector.collect())
    finally:
        idle_in_transaction.close()
        collector.engine.dispose()

    assert (
        monitored_value(before, "postgres.connections_by_state", state="idle in transaction") == 1
    )
    for state in (
        "idle in transaction",
        "idle in transaction (aborted)",
        "fastpath function call",
        "disabled",
    ):
        assert monitored_value(after, "postgres.connections_by_state", state=state) == 0


@pytest.fixture
def exporter():
    """A real Prometheus text endpoint on loopback, from prometheus_client's own server."""
    registry = CollectorRegistry()
    requests = Counter("shop_requests", "Requests served", ["route"], registry=registry)
    queue = Gauge("shop_queue_length", "Jobs waiting", registry=registry)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    yield f"http://127.0.0.1:{server.server_port}/metrics", requests, queue
    server.shutdown()
    thread.join(5)


def test_prometheus_collector_reads_every_labelled_sample(exporter):
    url, requests, queue = exporter
    requests.labels(route="/cart").inc(7)
    requests.labels(route="/pay").inc(2)
    queue.set(12.5)
    instance = url.split("/")[2]

    samples = by_series(PrometheusCollector(url).collect())

    def value(name: str, **labels: str) -> float:
        return samples[series_key(name, {"instance": instance, **labels})].value

    assert value("shop_requests_total", route="/cart") == 7
    assert value("shop_requests_total", route="/pay") == 2
    assert value("shop_queue_length") == 12.5


def test_collect_stage_keeps_going_when_one_target_is_down(celery_app, install, exporter):
    url, _, queue = exporter
    queue.set(3)
    system = install(prometheus_targets=[url, "http://127.0.0.1:9/metrics"])

    report = celery_app.send_task("selfmend.collect").get(timeout=20)

    assert report["pulled"]["prometheus"] > 0
    assert "URLError" in report["errors"]["prometheus"]
    instance = url.split("/")[2]
    stored = system.store.samples.window(
        series_key("shop_queue_length", {"instance": instance}), since=0
    )
    assert [value for _, value in stored] == [3.0]


def test_celery_collector_counts_waiting_messages_and_active_tasks(celery_app, worker):
    from workers.control import CeleryQueueProbe

    idle = "selfmend.test.idle"  # no worker consumes it, so what is sent there stays
    broker = redis.Redis.from_url(celery_app.conf.broker_url)
    broker.delete(idle)
    for _ in range(4):
        celery_app.send_task("selfmend.collect", queue=idle)
    stages = [queue.name for queue in celery_app.conf.task_queues]
    collector = CeleryCollector(CeleryQueueProbe(celery_app, queues=[idle, *stages]))
    try:
        samples = by_series(collector.collect())
    finally:
        broker.delete(idle)

    assert samples[series_key("celery.queue_depth", {"queue": idle})].value == 4
    for stage in stages:
        assert samples[series_key("celery.queue_depth", {"queue": stage})].value >= 0
    # The test worker answered (an unanswered inspect gives no sample at all).
    assert samples["celery.active_tasks"].value >= 0


def test_pushed_batch_through_redis_keeps_good_items_and_names_bad_fields(install):
    system = install()
    buffer = RedisPushBuffer(redis.Redis.from_url(redis_url("state")))
    now = time.time()
    buffer.push(
        json.dumps(
            [
                {"series": "shop.latency_ms", "ts": now, "value": 12.0},
                {"series": "shop.latency_ms", "ts": now + 1, "value": "fast"},
                {"series": "shop.latency_ms", "ts": now + 2, "value": "NaN"},
                {"ts": now + 3, "value": 1.0},
                {"series": "shop.latency_ms", "ts": now + 86_400, "value": 1.0},
                {"series": "shop.latency_ms", "ts": now + 4, "value": 14.0},
            ]
        )
    )
    buffer.push("not json at all")

    report = PushCollector(buffer, system.store, max_skew=300).drain()

    assert report.samples == 2
    rejected = "\n".join(report.rejected)
    for field in ("item 1: value", "item 2: value", "item 3: series", "item 4: ts", "payload"):
        assert field in rejected
    stored = system.store.samples.window("shop.latency_ms", since=0)
    assert [value for _, value in stored] == [12.0, 14.0]
    assert buffer.client.llen(buffer.key) == 0


def test_redis_push_buffer_keeps_batches_when_storing_fails(install):
    install()
    buffer = RedisPushBuffer(redis.Redis.from_url(redis_url("state")))
    batches = [json.dumps([{"series": "a", "ts": time.time(), "value": n}]) for n in range(3)]
    for batch in batches:
        buffer.push(batch)

    def broken_store(payloads, connection):
        raise ConnectionError("store is down")

    with pytest.raises(ConnectionError):
        buffer.drain(10, broken_store)

    kept = [p.decode() for p in buffer.client.lrange(buffer.key, 0, -1)]
    assert kept == batches


def test_redis_collector_reconnects_after_its_connection_is_killed(monitored_redis):
    collector = RedisCollector(monitored_redis)
    own_id = collector.client.client_id()
    admin = redis.Redis.from_url(monitored_redis)
    assert admin.client_kill_filter(_id=own_id) == 1

    samples = wait_for(lambda: collector.collect(), timeout=5)

    assert {s.series for s in samples} >= {"redis.used_memory_bytes", "redis.connected_clients"}
