"""The series a breaker's calls produce, counted in the process and sent with the client's
next push: failures of the calls that reached the dependency, calls whose caller saw an error,
the calls' p95 and whether the breaker refuses; nothing for an interval without calls."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from selfmend.client import Client
from selfmend.config import Settings
from selfmend.errors import CircuitOpen
from selfmend.resilience.breaker import BreakerRegistry, MemoryStorage, State
from selfmend.system import System
from tests.breaker_calls import Down, call_many, fail


class Recorded:
    """``record`` as the client's: each call kept as series → (value, labels)."""

    def __init__(self) -> None:
        self.series: dict[str, tuple[float, dict[str, str]]] = {}

    def __call__(self, name: str, value: float, **labels: str) -> None:
        self.series[name] = (value, labels)

    def values(self) -> dict[str, float]:
        return {name: value for name, (value, _) in self.series.items()}


@pytest.fixture
def registry():
    return BreakerRegistry(MemoryStorage(), defaults={"sync_seconds": 0})


def test_a_failing_dependency_shows_as_failures_and_as_calls_its_callers_saw_fail(registry):
    breaker = registry.get("payments", failure_threshold=4, window_size=10)
    breaker.call(lambda: "charged")
    assert call_many(breaker, 7) == {"failed": 4, "refused": 3}
    recorded = Recorded()
    registry.report(recorded)

    values = recorded.values()
    assert values["breaker.failure_ratio"] == pytest.approx(4 / 5)  # of the 5 that reached it
    assert values["breaker.unserved_ratio"] == pytest.approx(7 / 8)  # refusals raised too
    assert values["breaker.open"] == 1.0
    assert values["breaker.call_ms"] >= 0
    assert recorded.series["breaker.open"][1] == {"breaker": "payments", "fallback": "no"}

    again = Recorded()
    registry.report(again)
    assert again.series == {}  # no calls since: nothing sent


def test_the_fallback_serves_refused_calls_and_slow_calls_fail_but_are_served(registry):
    breaker = registry.get(
        "search", failure_threshold=1, slow_call_seconds=0.01, fallback=lambda: "cached"
    )
    assert breaker.call(lambda: time.sleep(0.02) or "slow") == "slow"
    assert breaker.state is State.OPEN
    assert [breaker.call(fail) for _ in range(3)] == ["cached"] * 3
    recorded = Recorded()
    registry.report(recorded)

    values = recorded.values()
    assert values["breaker.failure_ratio"] == 1.0  # the slow call, the one that reached it
    assert values["breaker.unserved_ratio"] == 0.0  # the slow call returned; the rest fell back
    assert values["breaker.open"] == 1.0
    assert values["breaker.call_ms"] >= 20  # the p95 is the slow call's
    assert recorded.series["breaker.open"][1]["fallback"] == "yes"


def test_every_call_was_refused_so_no_failure_ratio_and_a_refused_block_is_unserved(registry):
    breaker = registry.get("held", fallback=lambda: "later")
    registry.control.hold("held", State.FORCED_OPEN, actor="ops")
    assert breaker.call(fail) == "later"
    with pytest.raises(CircuitOpen), breaker.guard():
        pytest.fail("a refused block must not run")
    recorded = Recorded()
    registry.report(recorded)

    assert "breaker.failure_ratio" not in recorded.series  # nothing reached the dependency
    assert recorded.values()["breaker.unserved_ratio"] == 0.5


def test_an_async_call_over_timeout_seconds_is_cut_and_counts_as_a_failure(registry):
    breaker = registry.get("llm", failure_threshold=5, timeout_seconds=0.05)
    assert breaker.timeout == 0.05

    async def answer() -> str:
        await asyncio.sleep(5)
        return "too late"

    with pytest.raises(TimeoutError):
        asyncio.run(breaker.call_async(answer))
    recorded = Recorded()
    registry.report(recorded)
    assert recorded.values()["breaker.failure_ratio"] == 1.0
    assert recorded.values()["breaker.call_ms"] < 1000


def test_the_client_sends_the_breaker_series_with_its_next_push(tmp_path):
    class Captured:
        def __init__(self) -> None:
            self.items: list[dict] = []

        def push(self, payload: str) -> None:
            self.items.extend(json.loads(payload))

    system = System.from_settings(Settings(home=tmp_path), patterns=())
    buffer = Captured()
    client = Client(system.settings, store=system.store, buffer=buffer)
    payments = client.breaker("payments", min_processes=1, fallback=lambda: "queued")
    for _ in range(3):
        with pytest.raises(Down):
            payments.call(fail)
    client.flush()
    client.close()

    sent = {item["series"]: item for item in buffer.items if "series" in item}
    assert sent["breaker.unserved_ratio"]["value"] == 1.0
    assert sent["breaker.failure_ratio"]["value"] == 1.0
    assert sent["breaker.open"]["value"] == 0.0
    assert sent["breaker.unserved_ratio"]["labels"] == {"breaker": "payments", "fallback": "yes"}
