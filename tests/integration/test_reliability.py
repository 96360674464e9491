"""Nothing lost, nothing doubled, under the failures production has: 50 client threads pushing
at once, Redis restarted under a running worker, PostgreSQL restarted during batch writes.

Real servers only. Redis is a private ``redis-server`` (with an append-only file, as a
production push buffer should have) so restarting it disturbs no other test; so is the
PostgreSQL the restart tests restart (initdb into a temp folder), never the machine's cluster.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from selfmend.client import Client
from selfmend.config import Settings
from selfmend.store import Store
from selfmend.store import engine as store_engine
from selfmend.store.tables import samples, series
from selfmend.system import System
from tests.resources import empty_redis, fresh_database

from .conftest import migrated, wait_for

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PUSHED = "shop.order_total"


@pytest.fixture
def store_url():
    return migrated(fresh_database("reliability"))


def stored(system: System) -> tuple[int, int]:
    """How many pushed samples the store holds, and how many distinct (series, ts, value);
    the worker's own Celery samples are not counted."""
    pushed = (
        select(samples.c.series_id, samples.c.ts, samples.c.value)
        .join(series, series.c.id == samples.c.series_id)
        .where(series.c.name == PUSHED)
    )
    with system.store.engine.connect() as connection:
        total = connection.execute(select(func.count()).select_from(pushed.subquery()))
        distinct = connection.execute(
            select(func.count()).select_from(pushed.distinct().subquery())
        )
        return total.scalar_one(), distinct.scalar_one()


def push_from_threads(client: Client, threads: int, each: int, every: float = 0.002) -> None:
    start = threading.Barrier(threads)

    def push(thread: int) -> None:
        start.wait()
        for index in range(each):
            client.record(PUSHED, float(thread * 1000 + index), thread=str(thread))
            time.sleep(every)

    workers = [threading.Thread(target=push, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def drain_until(
    system: System, expected: int, timeout: float = 60, every: float = 0.3
) -> list[str]:
    """Collect as beat would, until ``expected`` samples are stored; the collects that failed."""
    failures: list[str] = []

    def all_stored() -> bool:
        try:
            system.collect()
            return stored(system)[0] >= expected
        except Exception as error:  # a server coming back: the next beat tick tries again
            failures.append(type(error).__name__)
            return False

    wait_for(all_stored, timeout=timeout, every=every)
    return failures


def test_a_thousand_concurrent_pushes_from_fifty_threads_are_each_stored_once(tmp_path, store_url):
    settings = Settings(
        home=tmp_path, store_url=store_url, redis_url=empty_redis("side_state"), push_batch_size=7
    )
    system = System.from_settings(settings, patterns=())
    client = Client(settings, store=system.store)
    drains = [threading.Thread(target=drain_until, args=(system, 1000)) for _ in range(2)]
    for drain in drains:  # two drains racing the pushes and each other
        drain.start()

    push_from_threads(client, threads=50, each=20)
    client.close()
    for drain in drains:
        drain.join()

    assert stored(system) == (1000, 1000)
    assert client.dropped == 0


def test_redis_restarted_under_a_worker_loses_no_pushed_sample(
    tmp_path, store_url, private_redis, caplog
):
    settings = Settings(
        home=tmp_path,
        store_url=store_url,
        redis_url=f"{private_redis.url}/2",
        broker_url=f"{private_redis.url}/0",
        result_backend=f"{private_redis.url}/1",
    )
    system = System.from_settings(settings, patterns=())
    worker = start_worker(tmp_path, settings)
    try:
        from workers.app import create_app

        app = create_app(settings)
        assert app.send_task("selfmend.collect").get(timeout=30)["push"] == {
            "samples": 0,
            "logs": 0,
            "rejected": [],
        }
        client = Client(settings, store=system.store)
        pushing = threading.Thread(target=push_from_threads, args=(client, 10, 150, 0.02))
        with caplog.at_level(logging.WARNING, logger="selfmend.client"):
            pushing.start()  # for three seconds
            time.sleep(1.0)
            private_redis.restart(down_for=1.0)
            pushing.join()
            client.close()  # what failed to send while Redis was down is sent now
        assert any("a push failed" in record.getMessage() for record in caplog.records)

        def collected_everything() -> bool:
            app.send_task("selfmend.collect").get(timeout=30)
            return stored(system)[0] >= 1500

        assert wait_for(collected_everything, timeout=60, every=0.5)  # the worker reconnected
        assert stored(system) == (1500, 1500)
        assert client.dropped == 0
    finally:
        worker.terminate()
        worker.wait(30)


def test_postgresql_restarted_during_batch_writes_loses_and_doubles_nothing(
    tmp_path, private_postgres
):
    settings = Settings(
        home=tmp_path,
        store_url=migrated(private_postgres.create_database("reliability")),
        redis_url=empty_redis("side_state"),
        push_batch_size=20,
    )
    system = System.from_settings(settings, patterns=())
    client = Client(settings, store=system.store)
    failures: list[str] = []
    draining = threading.Thread(
        target=lambda: failures.extend(drain_until(system, 2000, timeout=120, every=0.05))
    )
    draining.start()

    pushing = threading.Thread(target=push_from_threads, args=(client, 10, 200, 0.015))
    pushing.start()  # for three seconds
    time.sleep(1.0)
    private_postgres.restart()
    pushing.join()
    client.close()
    draining.join()

    assert failures, "the restart happened while no batch was being written"
    assert stored(system) == (2000, 2000)


def start_worker(folder: Path, settings: Settings) -> subprocess.Popen:
    """``celery -A workers worker`` on the given settings, in a process of its own."""
    env = {
        **os.environ,
        "SELFMEND_HOME": str(folder / "worker"),
        "SELFMEND_STORE_URL": settings.store_url or "",
        "SELFMEND_BROKER_URL": settings.broker_url or "",
        "SELFMEND_RESULT_BACKEND": settings.result_backend or "",
        "SELFMEND_REDIS_URL": settings.redis_url or "",
        "PYTHONPATH": str(REPO),
    }
    log = (folder / "worker.log").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "workers", "worker", "--pool=threads",
         "--concurrency=2", f"--hostname=reliability-{os.getpid()}@localhost",
         "--without-mingle", "--without-gossip", "--loglevel=WARNING"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def test_a_postgresql_restart_while_the_pool_is_idle_reaches_no_caller(
    private_postgres, monkeypatch
):
    """A pooled connection that rested is pinged before use and replaced if the restart killed
    it; one just used is not pinged (so this test first shows that a dead one would fail)."""
    store = Store.from_url(private_postgres.create_database("pool"), migrate=True)
    try:
        monkeypatch.setattr(store_engine, "IDLE_PING_SECONDS", 3600.0)
        store.incidents.count_by_status()  # the pool now holds a connection
        private_postgres.restart()
        with pytest.raises(OperationalError):
            store.incidents.count_by_status()  # not pinged: the dead connection is used

        monkeypatch.setattr(store_engine, "IDLE_PING_SECONDS", 0.0)
        store.incidents.count_by_status()
        private_postgres.restart()
        assert store.incidents.count_by_status() == {}  # pinged, found dead, replaced
    finally:
        store.close()
