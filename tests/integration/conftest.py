"""Integration fixtures: real Redis (broker, results, push buffer), real PostgreSQL (store) and
a real Celery worker running in this process on threads.

Settings come from the environment, set here before ``workers`` is first imported.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.resources import (
    POSTGRES,
    REDIS,
    database_url,
    empty_redis,
    fresh_database,
    redis_url,
    temp_folder,
)

__all__ = ["POSTGRES", "REDIS"]  # the servers, for tests that make databases of their own

os.environ.update(
    {
        "SELFMEND_HOME": str(temp_folder("home")),
        "SELFMEND_BROKER_URL": redis_url("broker"),
        "SELFMEND_RESULT_BACKEND": redis_url("results"),
        "SELFMEND_REDIS_URL": redis_url("state"),
        "SELFMEND_STORE_URL": database_url("store"),
        "SELFMEND_MODE": "auto",
        "SELFMEND_SETTLE_SECONDS": "0.5",
        "SELFMEND_VERIFY_WINDOW_SECONDS": "1.5",
        "SELFMEND_VERIFY_MIN_SAMPLES": "3",
        "SELFMEND_COOLDOWN_SECONDS": "0",
    }
)

from selfmend.config import Settings
from selfmend.demo.timeline import compressed
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.detect.patterns import Pattern
from selfmend.store import Store
from selfmend.store.tables import metadata
from selfmend.system import System

pytestmark = pytest.mark.integration

# Windows ten times shorter than the built-ins, so a test sees a fault in seconds.
FAST_PATTERNS = compressed(BUILTIN_PATTERNS, 10.0)


@pytest.fixture(scope="session")
def celery_app():
    # The compose `migrate` job's part: workers wait for the schema, never make it.
    Store.from_url(fresh_database("store"), migrate=True).close()
    from workers import app

    return app


@pytest.fixture(scope="session")
def worker(celery_app):
    """A real worker consuming every stage queue from the Redis broker."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(
        celery_app,
        pool="threads",
        concurrency=4,
        perform_ping_check=False,
        loglevel="WARNING",
        shutdown_timeout=30,
    ) as running:
        yield running


@pytest.fixture
def settings(celery_app) -> Settings:
    return celery_app.selfmend_settings


@pytest.fixture
def install(celery_app, worker) -> Iterator[Callable[..., System]]:
    """Build the System the worker uses for this test (fresh store tables, flushed Redis)."""
    from workers import runtime

    for role in ("broker", "results", "state"):
        empty_redis(role)
    built: list[System] = []

    def build(patterns: tuple[Pattern, ...] = FAST_PATTERNS, **overrides) -> System:
        settings = celery_app.selfmend_settings.model_copy(update=overrides)
        system = runtime.build(celery_app, settings, patterns=patterns)
        _truncate(system.store)
        runtime.install(system)
        built.append(system)
        return system

    yield build
    runtime.reset()
    for system in built:
        system.store.close()


def _truncate(store: Store) -> None:
    """Every table of the store, so a test starts from nothing whatever the last one left."""
    names = ", ".join(table.name for table in metadata.sorted_tables)
    with store.engine.begin() as connection:
        connection.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


def wait_for(condition: Callable[[], object], timeout: float = 30.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


@contextmanager
def collecting(
    celery_app, also: Callable[[], object] = lambda: None, every: float = 0.3
) -> Iterator[None]:
    """Run selfmend.collect on a tick, as beat would, and ``also`` first on each tick (a
    client's flush, the application's own work)."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every):
            also()
            celery_app.send_task("selfmend.collect").get(timeout=10)

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


class FakeShopCache:
    """The application side of a test: pushes its cache hit ratio every 0.1 s, healthy only
    once ``cache.warm`` is on (or never, when ``heals`` is False). It starts with a healthy
    stretch in the past, as long as the cache pattern's warm-up, for that pattern judges the
    series against its own learned band and stays quiet on a series it has not learned."""

    def __init__(self, client, *, heals: bool = True) -> None:
        self.client = client
        self.heals = heals
        self.broken = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        [pattern] = [p for p in FAST_PATTERNS if p.name == "cache_hit_ratio_low"]
        [condition] = pattern.reads()
        stretch = 1.2 * (condition.learn.warm_up + condition.window)
        now = time.time()
        for step in range(int(stretch * 10), 0, -1):
            self.client.record("cache.hit_ratio", 0.95, ts=now - step / 10, service="shop")
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            warm = self.client.control("cache.warm", False)
            bad = self.broken and not (self.heals and warm)
            self.client.record("cache.hit_ratio", 0.5 if bad else 0.95, service="shop")


@pytest.fixture
def private_postgres():
    """A PostgreSQL server of the test's own, to stop and start: never the machine's."""
    from .private_postgres import PrivatePostgres  # it waits with this module's wait_for

    server = PrivatePostgres()
    yield server
    server.remove()


@pytest.fixture
def private_redis(tmp_path):
    """A Redis server of the test's own, to stop and start: never the machine's."""
    from .private_redis import PrivateRedis  # it waits with this module's wait_for

    server = PrivateRedis(tmp_path)
    yield server
    server.stop()


def migrated(url: str) -> str:
    """``url``'s store brought to the schema, as ``selfmend db upgrade`` does before workers."""
    Store.from_url(url, migrate=True).close()
    return url
