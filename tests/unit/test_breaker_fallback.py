"""A shared breaker whose Redis (or store, without Redis) cannot be reached keeps protecting: it
counts in a window of the process's own, says so once, and rejoins the shared state when Redis
answers again. A wrong statement is not taken for a store that is away."""

from __future__ import annotations

import threading
import time

import pytest
import redis
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from selfmend.config import Settings
from selfmend.errors import CircuitOpen
from selfmend.resilience.breaker import (
    BreakerRegistry,
    MemoryStorage,
    State,
    fallback_storage,
    redis_storage,
    store_storage,
)
from selfmend.resilience.breaker.fallback_storage import FallbackStorage
from selfmend.resilience.breaker.registry import shared_storage
from selfmend.store import Store
from tests.breaker_calls import call_many

UNREACHABLE = "redis://127.0.0.1:1/0"  # nothing listens on port 1
UNREACHABLE_STORE = "postgresql://selfmend@127.0.0.1:1/selfmend"


def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


class FlakyShared(MemoryStorage):
    """Shared storage that can be taken away and given back, as Redis going down and up;
    counts the steps tried while it was away."""

    shared = True

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.tried_while_down = 0

    def _reach(self) -> None:
        if self.down:
            self.tried_while_down += 1
            raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379.")

    def read(self, *args, **kwargs):
        self._reach()
        return super().read(*args, **kwargs)

    def record(self, *args, **kwargs):
        self._reach()
        return super().record(*args, **kwargs)

    def move(self, *args, **kwargs):
        self._reach()
        return super().move(*args, **kwargs)

    def claim_probe(self, *args, **kwargs):
        self._reach()
        return super().claim_probe(*args, **kwargs)

    def publish_settings(self, *args, **kwargs):
        self._reach()
        return super().publish_settings(*args, **kwargs)

    def settings(self, *args, **kwargs):
        self._reach()
        return super().settings(*args, **kwargs)


def falling_back(shared: FlakyShared, retry_seconds: float = 5.0) -> FallbackStorage:
    return FallbackStorage(shared, redis_storage.unreachable, retry_seconds=retry_seconds)


def unreachable_redis() -> FallbackStorage:
    return shared_storage(Settings(redis_url=UNREACHABLE), store=None)


def unreachable_store() -> FallbackStorage:
    """The storage of breakers shared through the store (no SELFMEND_REDIS_URL), on a
    PostgreSQL store nothing answers for: the store connects on first use."""
    return shared_storage(Settings(redis_url=None), Store.from_url(UNREACHABLE_STORE))


@pytest.mark.parametrize("unreachable_storage", [unreachable_redis, unreachable_store])
def test_fifty_failures_with_the_shared_storage_unreachable_open_the_breaker_and_say_so_once(
    unreachable_storage,
):
    storage = unreachable_storage()
    with structlog.testing.capture_logs() as logged:
        breaker = BreakerRegistry(storage).get("payments", failure_threshold=5, window_size=10)
        outcomes = call_many(breaker, 50)

    assert outcomes == {"failed": 5, "refused": 45}
    assert breaker.state is State.OPEN
    warnings = [entry for entry in logged if entry["log_level"] in ("warning", "error")]
    assert [entry["event"] for entry in warnings] == ["breaker.storage_unreachable"]
    assert not any("exc_info" in entry for entry in logged)  # no traceback, not one


@pytest.mark.parametrize(
    ("url", "statement", "unreachable"),
    [
        (UNREACHABLE_STORE, "SELECT 1", True),  # connection refused
        ("sqlite:///{folder}", "SELECT 1", True),  # a folder: unable to open database file
        ("sqlite:///{folder}/store.db", "SELECT * FROM breakers", False),  # no such table
        ("sqlite:///{folder}/store.db", "SELEC 1", False),  # a syntax error
    ],
)
def test_a_store_is_unreachable_when_it_cannot_be_reached_not_when_a_statement_is_wrong(
    tmp_path, url, statement, unreachable
):
    engine = Store.from_url(url.format(folder=tmp_path)).engine
    with pytest.raises(DBAPIError) as raised, engine.connect() as connection:
        connection.execute(text(statement))
    assert store_storage.unreachable(raised.value) is unreachable
    engine.dispose()


def test_the_fallback_window_opens_on_this_process_alone_whatever_min_processes_says():
    """Only this process's calls are in its own window, so waiting for two processes' failures
    would leave it closed for good."""
    storage = shared_storage(Settings(redis_url=UNREACHABLE), store=None)
    breaker = BreakerRegistry(storage).get("search", failure_threshold=3, min_processes=2)
    assert call_many(breaker, 10) == {"failed": 3, "refused": 7}


def test_while_redis_is_away_it_is_tried_again_every_few_seconds_not_on_every_call():
    shared = FlakyShared()
    storage = falling_back(shared, retry_seconds=0.3)
    breaker = BreakerRegistry(storage).get("payments", failure_threshold=5, sync_seconds=0)
    shared.down = True
    with structlog.testing.capture_logs() as logged:
        began = time.monotonic()
        while time.monotonic() - began < 0.5:
            breaker.call(lambda: "served")
    assert 1 <= shared.tried_while_down <= 3  # one try, and one more per 0.3 s
    assert [entry["event"] for entry in logged] == ["breaker.storage_unreachable"]


def test_when_redis_returns_the_process_sees_the_shared_state_again():
    shared = FlakyShared()
    storage = falling_back(shared, retry_seconds=0.1)
    registry = BreakerRegistry(storage)
    breaker = registry.get("payments", failure_threshold=5, sync_seconds=0, reset_timeout=60)
    shared.down = True
    assert call_many(breaker, 10) == {"failed": 5, "refused": 5}  # opened in the process

    shared.down = False  # back, and closed there: the others never saw these failures
    with structlog.testing.capture_logs() as logged:
        wait_for(lambda: breaker.state is State.CLOSED)
    assert breaker.call(lambda: "served") == "served"
    assert [entry["event"] for entry in logged] == ["breaker.storage_rejoined"]

    # and what the others do to the shared state, this process follows again
    registry.control.hold("payments", State.FORCED_OPEN, actor="ops")
    wait_for(lambda: breaker.state is State.FORCED_OPEN)
    with pytest.raises(CircuitOpen):
        breaker.call(lambda: "never called")


def test_operators_act_on_the_shared_state_and_are_told_when_it_cannot_be_reached():
    """A hold placed in one process's fallback would be a hold nobody else follows."""
    shared = FlakyShared()
    registry = BreakerRegistry(falling_back(shared))
    registry.get("payments")
    shared.down = True
    with pytest.raises(redis.ConnectionError):
        registry.control.hold("payments", State.FORCED_OPEN, actor="ops")


def test_a_log_shipper_behind_a_breaker_hears_the_storage_went_away_without_a_deadlock(
    monkeypatch,
):
    """A log handler that ships lines through a breaker calls it on the thread that logs: the
    warning that the storage went away must be said with no lock of the storage held."""
    shared = FlakyShared()
    breakers, shipped = [], []

    class ShipsThroughTheBreaker:
        """The module's logger as a handler that ships lines through a breaker sees it."""

        def warning(self, event, **_fields):
            if not shipped:
                shipped.append(event)
                breakers[0].call(lambda: None)  # the shipper's own call, on this thread

        info = warning

    def log_through_a_breaker() -> None:
        breakers.append(BreakerRegistry(falling_back(shared)).get("logs", failure_threshold=5))
        shared.down = True  # the storage goes away under a breaker in use
        call_many(breakers[0], 3)
        finished.set()

    monkeypatch.setattr(fallback_storage, "log", ShipsThroughTheBreaker())
    finished = threading.Event()
    threading.Thread(target=log_through_a_breaker, daemon=True).start()
    assert finished.wait(10), "the thread that logged is stuck on the storage's lock"
    assert shipped == ["breaker.storage_unreachable"]
