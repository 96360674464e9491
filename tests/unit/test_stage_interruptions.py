"""A stage's soft time limit ends the stage: the loops that keep one target's failure from the
others (collectors, watched databases, an action's apply) let it through instead of logging it
as that target failing and going on to the next one until the hard limit kills the process."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
import structlog
from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy.exc import OperationalError

from selfmend.config import Settings
from selfmend.detect.pattern_file import parse_patterns
from selfmend.errors import is_interruption
from selfmend.models import ExecutionState, IncidentStatus, Sample
from selfmend.resilience.breaker import BreakerRegistry, MemoryStorage, State, store_storage
from selfmend.resilience.breaker.fallback_storage import FallbackStorage
from selfmend.resilience.schema.watch import SchemaWatch
from selfmend.store import Store
from selfmend.system import System
from tests.app_reads import app_reads_what_its_fixes_change
from workers.app import create_app
from workers.limits import StageTask

STALLED = parse_patterns(
    {
        "patterns": [
            {
                "name": "orders_stalled",
                "severity": "high",
                "condition": {
                    "series": "shop.orders_pending",
                    "aggregate": "min",
                    "window": 20,
                    "op": ">",
                    "threshold": 10,
                },
                "action": {"name": "set_control", "params": {"key": "shop.drain", "value": True}},
                "why": "drain: orders wait.",
            }
        ]
    },
    "test patterns",
)


class BusyConnection(Exception):
    """What psycopg raises when a connection interrupted in a statement is used again: the
    rollback on the way out of the ``with`` block fails in place of the soft limit."""


class Collector:
    def __init__(self, name: str, *, interrupted: bool = False, masked: bool = False) -> None:
        self.name = name
        self.interrupted = interrupted
        self.masked = masked
        self.collected = 0

    def collect(self) -> list[Sample]:
        self.collected += 1
        if not self.interrupted:
            return [Sample(series=f"{self.name}.up", ts=time.time(), value=1.0)]
        try:
            raise SoftTimeLimitExceeded()  # as the pool raises it at the soft limit
        finally:
            if self.masked:
                raise BusyConnection("another command is already in progress")


class WatchedDatabase:
    def __init__(self, name: str, *, interrupted: bool = False) -> None:
        self.name = name
        self.interrupted = interrupted
        self.connected = 0

    @contextmanager
    def connect(self):
        self.connected += 1
        if self.interrupted:
            raise SoftTimeLimitExceeded()
        raise AssertionError(f"{self.name} was watched after the stage's soft limit")
        yield


def test_the_worker_registers_its_soft_limit_as_an_interruption(tmp_path):
    create_app(Settings(home=tmp_path))
    assert is_interruption(SoftTimeLimitExceeded())
    assert not is_interruption(RuntimeError("one target failing"))


@pytest.mark.parametrize("masked", [False, True], ids=["raised", "cleanup_failed_meanwhile"])
def test_a_collector_at_the_soft_limit_ends_the_collect_pass(tmp_path, masked):
    system = System.from_settings(Settings(home=tmp_path / "home"), patterns=())
    first, second = Collector("redis", interrupted=True, masked=masked), Collector("postgres")
    system.pull_collectors = [first, second]

    with structlog.testing.capture_logs() as logged, pytest.raises(Exception) as raised:
        system.collect()

    assert is_interruption(raised.value)

    assert second.collected == 0
    assert "collector.failed" not in [entry["event"] for entry in logged]


def test_a_schema_watch_at_the_soft_limit_watches_no_further_database(tmp_path):
    store = Store.from_url(f"sqlite:///{tmp_path}/store.db", migrate=True)
    first, second = WatchedDatabase("shop", interrupted=True), WatchedDatabase("billing")

    with pytest.raises(SoftTimeLimitExceeded):
        SchemaWatch(store, [first, second]).run()

    assert (first.connected, second.connected) == (1, 0)
    store.close()


def test_an_apply_at_the_soft_limit_is_neither_failed_nor_escalated(tmp_path, monkeypatch):
    settings = Settings(home=tmp_path / "home", mode="auto", settle_seconds=1, cooldown_seconds=0)
    system = System.from_settings(settings, patterns=STALLED)
    app_reads_what_its_fixes_change(system)
    now = time.time()
    system.store.samples.insert(
        [Sample(series="shop.orders_pending", ts=now - 19 + i, value=30.0) for i in range(20)]
    )
    [incident_id] = system.analyzer.run(now).new_incidents

    def interrupted(plan):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(system.catalogue.get("set_control"), "apply", interrupted)
    with pytest.raises(SoftTimeLimitExceeded):
        system.executor.remediate(incident_id)

    # the claim stays for the backlog to send again; nothing says the fix failed
    assert system.store.incidents.get(incident_id).status is IncidentStatus.REMEDIATING
    states = [execution.state for execution in system.store.executions.history(incident_id)]
    assert ExecutionState.FAILED not in states


def test_a_call_cut_short_by_the_soft_limit_is_not_counted_against_the_service():
    breaker = BreakerRegistry(MemoryStorage()).get("payments", failure_threshold=1)

    def slow_call() -> None:
        raise SoftTimeLimitExceeded()

    with pytest.raises(SoftTimeLimitExceeded):
        breaker.call(slow_call)
    assert breaker.state is State.CLOSED


def test_a_stage_whose_cleanup_failed_as_the_soft_limit_passed_still_ends_at_its_soft_limit():
    app = Celery("interruptions-test", task_cls=StageTask, set_as_current=False)
    app.conf.task_always_eager = True
    interrupted = Collector("postgres", interrupted=True, masked=True)

    @app.task(name="selfmend.slow_stage", soft_time_limit=1)
    def slow_stage() -> None:
        interrupted.collect()

    with structlog.testing.capture_logs() as logged:
        result = slow_stage.apply()

    assert result.state == "IGNORED"
    assert [entry["event"] for entry in logged] == ["stage.soft_time_limit"]


class StoreInterruptedInAStatement(MemoryStorage):
    """A breaker storage in the store whose read the soft limit interrupted mid-statement."""

    shared = True

    def read(self, name):
        try:
            raise SoftTimeLimitExceeded()
        finally:
            busy = BusyConnection("another command is already in progress")
            raise OperationalError("ROLLBACK", {}, busy)


def test_a_breaker_step_at_the_soft_limit_is_not_taken_for_an_unreachable_store():
    storage = FallbackStorage(StoreInterruptedInAStatement(), store_storage.unreachable)
    breaker = BreakerRegistry(storage).get("payments", sync_seconds=0)

    with pytest.raises(OperationalError) as raised:
        breaker.call(lambda: "served")

    assert is_interruption(raised.value)
    assert not storage.away
