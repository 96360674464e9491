"""The circuit breaker's behaviour in each state, on in-memory storage (one process)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from prometheus_client import REGISTRY

from selfmend.errors import CircuitOpen, ConfigurationError, IllegalTransition
from selfmend.resilience.breaker import BreakerRegistry, MemoryStorage, State
from selfmend.resilience.breaker.circuit import TRANSITIONS, check_transition
from selfmend.resilience.breaker.redis_storage import RedisStorage
from selfmend.resilience.breaker.registry import breaker_redis


class Down(Exception):
    """The service behind the breaker failing."""


class NotFound(Exception):
    """The caller's own mistake: the service answered."""


def fail() -> None:
    raise Down("service down")


def fail_times(breaker, count: int) -> None:
    for _ in range(count):
        with pytest.raises(Down):
            breaker.call(fail)


@pytest.fixture
def events():
    return []


@pytest.fixture
def registry(events):
    return BreakerRegistry(MemoryStorage(), listeners=[events.append], defaults={"sync_seconds": 0})


def moves(events) -> list[tuple[str, str]]:
    return [(str(event.from_state), str(event.to_state)) for event in events]


def test_closed_passes_calls_and_opens_on_the_threshold_count(registry, events):
    breaker = registry.get("payments", failure_threshold=3, window_size=10)
    assert breaker.call(lambda x: x * 2, 21) == 42
    fail_times(breaker, 2)
    assert breaker.state is State.CLOSED
    fail_times(breaker, 1)

    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpen) as refused:
        breaker.call(lambda: "never called")
    assert refused.value.code == "circuit_open" and refused.value.retry_after > 0
    assert moves(events) == [("closed", "open")]
    assert events[0].evidence["failures"] == 3 and events[0].evidence["calls"] == 4


def test_old_failures_leave_the_sliding_window(registry):
    breaker = registry.get("search", failure_threshold=2, window_size=3)
    fail_times(breaker, 1)
    breaker.call(lambda: None)
    breaker.call(lambda: None)
    breaker.call(lambda: None)  # the failure is now four calls back, outside the window
    fail_times(breaker, 1)
    assert breaker.state is State.CLOSED


def test_an_open_breaker_uses_the_fallback_with_the_call_arguments(registry):
    breaker = registry.get(
        "prices", failure_threshold=1, window_size=1, fallback=lambda sku: f"cached {sku}"
    )
    fail_times(breaker, 1)
    assert breaker.call(lambda sku: f"live {sku}", "A1") == "cached A1"


def test_rate_threshold_waits_for_minimum_calls_then_opens_on_the_rate(registry):
    breaker = registry.get("rates", failure_rate=0.5, minimum_calls=4, window_size=10)
    fail_times(breaker, 3)  # 100 % failed, but only 3 calls: not judged yet
    assert breaker.state is State.CLOSED
    breaker.call(lambda: None)  # 4 calls, 75 % failed
    # The success waits in the process; reading the state renews the view (sync_seconds is 0
    # here), which sends it and judges the window.
    assert breaker.state is State.OPEN


def test_rate_below_the_threshold_keeps_it_closed(registry):
    breaker = registry.get("rates", failure_rate=0.5, minimum_calls=4, window_size=10)
    for _ in range(3):
        breaker.call(lambda: None)
    fail_times(breaker, 2)  # 2 of 5: 40 %
    assert breaker.state is State.CLOSED


def test_ignored_exceptions_pass_through_and_count_as_successes(registry):
    breaker = registry.get("users", failure_threshold=1, window_size=5, ignore=(NotFound,))

    def missing() -> None:
        raise NotFound("no such user")

    for _ in range(5):
        with pytest.raises(NotFound):
            breaker.call(missing)
    assert breaker.state is State.CLOSED


def test_slow_calls_count_as_failures(registry):
    breaker = registry.get("reports", failure_threshold=2, window_size=5, slow_call_seconds=0.02)
    breaker.call(time.sleep, 0.03)
    assert breaker.state is State.CLOSED
    assert breaker.call(lambda: "quick") == "quick"
    breaker.call(time.sleep, 0.03)
    assert breaker.state is State.OPEN


def test_after_the_reset_timeout_a_probe_that_succeeds_closes_it(registry, events):
    breaker = registry.get("mail", failure_threshold=1, window_size=1, reset_timeout=0.05)
    fail_times(breaker, 1)
    time.sleep(0.06)
    assert breaker.call(lambda: "sent") == "sent"
    assert breaker.state is State.CLOSED
    assert moves(events) == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_failed_probe_opens_it_again(registry, events):
    breaker = registry.get("mail", failure_threshold=1, window_size=1, reset_timeout=0.05)
    fail_times(breaker, 1)
    time.sleep(0.06)
    fail_times(breaker, 1)
    assert breaker.state is State.OPEN
    assert moves(events)[-1] == ("half_open", "open")


def test_half_open_lets_only_the_bounded_number_of_probes_through(registry):
    breaker = registry.get(
        "ml", failure_threshold=1, window_size=1, reset_timeout=0.05, half_open_probes=2
    )
    fail_times(breaker, 1)
    time.sleep(0.06)
    inside, release = threading.Barrier(3), threading.Event()
    results: list[str] = []

    def probe() -> None:
        def held() -> str:
            inside.wait(5)
            release.wait(5)
            return "ok"

        results.append(breaker.call(held))

    probes = [threading.Thread(target=probe) for _ in range(2)]
    for thread in probes:
        thread.start()
    inside.wait(5)  # both probes are running
    assert breaker.state is State.HALF_OPEN
    with pytest.raises(CircuitOpen, match="half_open"):
        breaker.call(lambda: "a third probe")
    release.set()
    for thread in probes:
        thread.join(5)
    assert results == ["ok", "ok"]
    assert breaker.state is State.CLOSED


def test_no_lock_is_held_while_the_protected_call_runs(registry):
    breaker = registry.get("slow")
    both_inside = threading.Barrier(2, timeout=5)
    threads = [threading.Thread(target=breaker.call, args=(both_inside.wait,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert not both_inside.broken  # each call waited for the other to be inside at once


def test_as_a_decorator_and_a_context_manager(registry):
    breaker = registry.get("db", failure_threshold=2, window_size=2)

    @breaker
    def double(x: int) -> int:
        return 2 * x

    assert double(4) == 8 and double.__name__ == "double"
    for _ in range(2):
        with pytest.raises(Down), breaker.guard():
            fail()
    with pytest.raises(CircuitOpen), breaker.guard():
        pytest.fail("the block must not run")


def test_on_async_functions(registry, events):
    breaker = registry.get("llm", failure_threshold=2, window_size=2, fallback=lambda q: "later")

    @breaker
    async def ask(question: str) -> str:
        await asyncio.sleep(0)
        if question == "bad":
            raise Down(question)
        return f"answer to {question}"

    async def scenario() -> list[str]:
        answers = [await ask("life")]
        for _ in range(2):
            with pytest.raises(Down):
                await ask("bad")
        answers.append(await ask("life"))
        with pytest.raises(CircuitOpen):
            async with breaker.guard():
                pytest.fail("the block must not run")
        return answers

    assert asyncio.run(scenario()) == ["answer to life", "later"]
    assert moves(events) == [("closed", "open")]


def test_the_transition_table_refuses_any_other_move():
    check_transition(State.HALF_OPEN, State.CLOSED)
    with pytest.raises(IllegalTransition, match="cannot go from open to closed"):
        check_transition(State.OPEN, State.CLOSED)
    with pytest.raises(IllegalTransition):
        check_transition(State.CLOSED, State.HALF_OPEN)
    assert set(TRANSITIONS) == set(State)
    assert all(state not in TRANSITIONS[state] for state in State)


def test_every_transition_is_counted_in_prometheus(registry):
    labels = {"breaker": "counted", "from_state": "closed", "to_state": "open"}
    before = REGISTRY.get_sample_value("selfmend_breaker_transitions_total", labels) or 0.0
    fail_times(registry.get("counted", failure_threshold=1, window_size=1), 1)
    assert REGISTRY.get_sample_value("selfmend_breaker_transitions_total", labels) == before + 1


def test_a_listener_that_raises_never_breaks_the_call(events):
    def broken(_transition) -> None:
        raise RuntimeError("listener bug")

    registry = BreakerRegistry(MemoryStorage(), listeners=[broken, events.append])
    fail_times(registry.get("x", failure_threshold=1, window_size=1), 1)
    assert moves(events) == [("closed", "open")]


def test_held_open_refuses_until_released_and_held_closed_never_trips(registry, events):
    breaker = registry.get("partner", failure_threshold=1, window_size=1)
    registry.control.hold("partner", State.FORCED_OPEN, actor="ops", reason="bad answers")
    with pytest.raises(CircuitOpen, match="forced_open: calls are refused until released"):
        breaker.call(lambda: None)

    registry.control.hold("partner", State.FORCED_CLOSED, actor="ops")
    fail_times(breaker, 3)
    assert breaker.state is State.FORCED_CLOSED

    registry.control.release("partner", actor="ops")
    assert breaker.state is State.CLOSED
    assert moves(events) == [
        ("closed", "forced_open"),
        ("forced_open", "forced_closed"),
        ("forced_closed", "closed"),
    ]
    assert events[0].reason == "held forced_open by ops: bad answers"


def test_overrides_change_the_threshold_every_breaker_uses(registry):
    breaker = registry.get("tuned", failure_threshold=5, window_size=10)
    registry.control.set_overrides("tuned", {"failure_threshold": 2})
    fail_times(breaker, 2)
    assert breaker.state is State.OPEN
    assert breaker.settings.failure_threshold == 2 and breaker.declared.failure_threshold == 5


def test_overrides_that_break_the_declared_settings_are_refused(registry):
    registry.get("tuned", failure_threshold=5, window_size=10)
    with pytest.raises(ConfigurationError, match=r"breaker 'tuned'.*window_size"):
        registry.control.set_overrides("tuned", {"failure_threshold": 11})


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"reset_timeout": -1}, "reset_timeout"),
        ({"half_open_probes": 0}, "half_open_probes"),
        ({"windowsize": 10}, "windowsize"),
        ({"failure_threshold": 3, "failure_rate": 0.5}, "not both"),
        ({"failure_threshold": 30, "window_size": 20}, "cannot exceed window_size"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(registry, options, field):
    with pytest.raises(ConfigurationError, match=rf"breaker 'bad'.*{field}"):
        registry.get("bad", **options)


def test_per_service_settings_and_one_breaker_per_name():
    registry = BreakerRegistry(MemoryStorage(), services={"payments": {"failure_threshold": 2}})
    payments = registry.get("payments")
    assert payments.settings.failure_threshold == 2
    assert registry.get("payments") is payments
    with pytest.raises(ConfigurationError, match="already declared with other settings"):
        registry.get("payments", failure_threshold=9)
    with pytest.raises(ConfigurationError, match="breaker 'search': reset_timeout"):
        BreakerRegistry(MemoryStorage(), services={"search": {"reset_timeout": 0}})


def test_a_storage_that_cannot_be_reached_never_stops_the_call():
    unreachable = RedisStorage(breaker_redis("redis://127.0.0.1:1/0"))  # nothing listens
    breaker = BreakerRegistry(unreachable).get("offline", fallback=lambda: "shed")
    assert breaker.call(lambda: "served") == "served"
    with pytest.raises(Down):  # the call's own error still reaches the caller
        breaker.call(fail)


# A closed breaker counts its successes in the process and sends them with its next trip (a
# failure, the renewal of a view older than sync_seconds, a window's worth): these tests give
# sync_seconds of their own, so that the fixture's 0 (renew before every call) does not send
# the successes before the step the test is about.


class RecordingStorage(MemoryStorage):
    """Memory storage that keeps what each record step was sent: (successes, failed)."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[tuple[int, bool]] = []

    def record(self, name, version, process, window_size, *, successes=0, failed=False):
        self.steps.append((successes, failed))
        return super().record(
            name, version, process, window_size, successes=successes, failed=failed
        )


def test_a_failure_sends_the_buffered_successes_with_it(registry):
    """11 successes and 10 failures are 21 calls, 48 % failed. Were the successes not sent
    with the failures, the window would be the 10 failures alone, and the breaker would open."""
    breaker = registry.get(
        "sent", failure_rate=0.5, minimum_calls=10, window_size=30, sync_seconds=60
    )
    for _ in range(11):
        breaker.call(lambda: None)
    fail_times(breaker, 10)
    assert breaker.state is State.CLOSED


def test_buffered_successes_join_the_window_before_the_failure_that_sends_them(registry):
    """Were the 9 successes dropped, or sent after the failure, the window the failure is
    judged on would be 10 calls with 6 failures, and the breaker would open."""
    breaker = registry.get(
        "ranked", failure_rate=0.5, minimum_calls=10, window_size=20, sync_seconds=60
    )
    for _ in range(4):
        breaker.call(lambda: None)
    fail_times(breaker, 5)  # 9 calls: not judged yet
    for _ in range(9):
        breaker.call(lambda: None)
    fail_times(breaker, 1)  # 19 calls, 6 failed: 32 %
    assert breaker.state is State.CLOSED


def test_successes_sent_on_renewal_are_judged(registry):
    """In rate mode successes can bring the window to minimum_calls: 6 failures and 4
    successes are 10 calls, 60 % failed, judged when the renewal sends the successes."""
    breaker = registry.get(
        "renewed", failure_rate=0.5, minimum_calls=10, window_size=20, sync_seconds=0.05
    )
    fail_times(breaker, 6)
    for _ in range(4):
        breaker.call(lambda: None)
    time.sleep(0.1)  # the view is now older than sync_seconds
    assert breaker.state is State.OPEN


def test_successes_from_many_threads_are_each_sent_once():
    storage = RecordingStorage()
    breaker = BreakerRegistry(storage).get("busy", window_size=50, sync_seconds=60)
    start = threading.Barrier(8, timeout=5)

    def succeed() -> None:
        start.wait()
        for _ in range(250):
            breaker.call(lambda: None)

    threads = [threading.Thread(target=succeed) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    fail_times(breaker, 1)  # sends what is left
    assert sum(successes for successes, _ in storage.steps) == 8 * 250
    assert storage.steps[-1][1] is True
    assert all(successes <= 50 + 8 for successes, failed in storage.steps if not failed)
