"""Breakers on the store's storage (SQLite, the embedded default): shared between processes,
opened only on evidence from more than one, each transition made once and stored as a row."""

from __future__ import annotations

import contextlib
import multiprocessing
import threading

import pytest

from selfmend.config import Settings
from selfmend.errors import CircuitOpen
from selfmend.resilience.breaker import BreakerRegistry, State, registry_for
from selfmend.resilience.breaker.circuit import Circuit
from selfmend.resilience.breaker.store_storage import StoreStorage
from selfmend.store import Store


class Down(Exception):
    pass


def fail() -> None:
    raise Down("service down")


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path}/store.db")


@pytest.fixture
def store(settings):
    store = Store.from_url(settings.resolved_store_url, migrate=True)
    yield store
    store.close()


def _fail_in_a_process(store_url: str, name: str, times: int) -> None:
    """A worker process of its own, with its own engine, failing ``times`` calls."""
    store = Store.from_url(store_url, migrate=True)
    breaker = BreakerRegistry(StoreStorage(store.engine)).get(
        name, failure_threshold=3, window_size=10
    )
    for _ in range(times):
        with contextlib.suppress(Down, CircuitOpen):
            breaker.call(fail)
    store.close()


def _in_processes(url: str, name: str, failures: list[int]) -> None:
    context = multiprocessing.get_context("spawn")
    for times in failures:  # one after another: each is a different process id
        child = context.Process(target=_fail_in_a_process, args=(url, name, times))
        child.start()
        child.join(60)
        assert child.exitcode == 0


def test_failures_from_one_process_do_not_open_a_shared_breaker(settings, store):
    _in_processes(settings.resolved_store_url, "payments", [6])
    assert StoreStorage(store.engine).read("payments").state is State.CLOSED


def test_failures_from_two_processes_open_it_for_every_process(settings, store):
    registry = registry_for(settings, store)
    breaker = registry.get("payments", failure_threshold=3, window_size=10)
    _in_processes(settings.resolved_store_url, "payments", [2, 1])

    with pytest.raises(CircuitOpen):  # this process failed nothing, and sees it open
        breaker.call(lambda: "charged")


def test_one_process_opens_it_when_told_one_is_enough(store):
    breaker = BreakerRegistry(StoreStorage(store.engine)).get(
        "solo", failure_threshold=2, window_size=5, min_processes=1
    )
    for _ in range(2):
        with pytest.raises(Down):
            breaker.call(fail)
    assert breaker.state is State.OPEN


def test_racing_processes_make_a_transition_once_and_it_is_stored(settings, store):
    registries = [registry_for(settings, store) for _ in range(8)]  # eight "processes"
    snapshot = registries[0].control.state("shared")
    circuits = [Circuit("shared", r.storage, r.announcer) for r in registries]
    start = threading.Barrier(len(circuits))

    def race(circuit) -> None:
        start.wait(5)
        circuit.move(State.CLOSED, snapshot.version, State.OPEN, "race")

    threads = [threading.Thread(target=race, args=(circuit,)) for circuit in circuits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    rows = store.breaker_events.recent("shared")
    assert [(row["from_state"], row["to_state"]) for row in rows] == [("closed", "open")]
    assert registries[0].control.state("shared").version == snapshot.version + 1


def test_transitions_are_rows_with_their_evidence(settings, store):
    breaker = registry_for(settings, store).get(
        "rows", failure_threshold=2, window_size=4, min_processes=1, reset_timeout=0.01
    )
    for _ in range(2):
        with pytest.raises(Down):
            breaker.call(fail)
    rows = store.breaker_events.recent("rows")
    assert len(rows) == 1
    assert rows[0]["reason"] == "2 failures in the last 2 calls from 1 process"
    assert rows[0]["evidence"]["settings"]["failure_threshold"] == 2
    assert rows[0]["process"].endswith(f":{multiprocessing.current_process().pid}")


def test_a_half_open_probe_slot_is_given_once(store):
    storage = StoreStorage(store.engine)
    opened = storage.move("probe", State.CLOSED, 0, State.OPEN, 1.0).snapshot
    half_open = storage.move("probe", State.OPEN, opened.version, State.HALF_OPEN, 2.0).snapshot
    claims = [storage.claim_probe("probe", half_open.version, 2).granted for _ in range(3)]
    assert claims == [True, True, False]
    assert storage.claim_probe("probe", half_open.version - 1, 5).granted is False


def test_a_call_admitted_before_a_transition_is_not_counted_after_it(store):
    storage = StoreStorage(store.engine)
    storage.record("late", 0, "host:1", 10, failed=True)
    storage.move("late", State.CLOSED, 0, State.FORCED_CLOSED, 1.0)
    storage.move("late", State.FORCED_CLOSED, 1, State.CLOSED, 2.0)
    late = storage.record("late", 0, "host:2", 10, successes=3, failed=True)  # admitted at v0
    assert late.window is None
    counted = storage.record("late", 2, "host:2", 10, successes=1).window
    assert (counted.calls, counted.failures) == (1, 0)  # the window started empty at v2


def test_the_window_keeps_only_the_latest_calls(store):
    storage = StoreStorage(store.engine)
    for failed in (True, True, False, False, False):
        window = storage.record(
            "window", 0, "host:1", 3, successes=int(not failed), failed=failed
        ).window
    assert (window.calls, window.failures, window.failing_processes) == (3, 0, 0)
    window = storage.record("window", 0, "host:1", 3, successes=1, failed=True).window
    assert (window.calls, window.failures) == (3, 1)  # the success first, then the failure
    window = storage.record("window", 0, "host:1", 3, successes=2).window
    assert (window.calls, window.failures) == (3, 1)  # the failure is still among the last 3
    window = storage.record("window", 0, "host:1", 3, successes=1).window
    assert (window.calls, window.failures) == (3, 0)
