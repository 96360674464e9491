"""A dependency failing behind a breaker that stays closed (issue 14), on a real Redis: the
client's series show it, the catalogue's patterns fire on the breaker named in the series' labels,
and their fixes (trip the breaker to its fallback, tighten its thresholds or its timeout) take
the errors off the application's callers, judged on the series the callers' calls produce."""

from __future__ import annotations

import asyncio
import json
import operator
import time

import pytest

from selfmend.client import Client
from selfmend.config import Settings
from selfmend.detect.catalogue import BUILTIN_PATTERNS
from selfmend.errors import ActionError
from selfmend.models import series_key
from selfmend.remedy.base import with_labels
from selfmend.resilience.breaker import State
from selfmend.system import System
from tests.breaker_calls import Down
from tests.resources import empty_redis

pytestmark = pytest.mark.integration

PATTERNS = {pattern.name: pattern for pattern in BUILTIN_PATTERNS}
FAILING = PATTERNS["breaker_dependency_failing"]
UNSERVED = FAILING.condition.of[0]  # its other condition: the breaker still admits calls
SLOW = PATTERNS["breaker_dependency_slow"]


class Dependency:
    """The outside service: fails (after a pause) until it is mended."""

    def __init__(self, pause: float = 0.0) -> None:
        self.pause = pause
        self.failing = True
        self.reached = 0

    def charge(self) -> str:
        self.reached += 1
        time.sleep(self.pause)
        if self.failing:
            raise Down("502 from the provider")
        return "charged"


class Captured:
    """The client's push buffer: what it sent, in order."""

    def __init__(self) -> None:
        self.items: list[dict] = []

    def push(self, payload: str) -> None:
        self.items.extend(json.loads(payload))

    def take(self) -> dict[str, float]:
        """The latest value of each breaker series sent since the last take, by series key."""
        latest = {
            series_key(item["series"], item["labels"]): item["value"]
            for item in self.items
            if item.get("series", "").startswith("breaker.")
        }
        self.items.clear()
        return latest


@pytest.fixture
def shop(tmp_path):
    """The application's client (pushes captured) sharing breakers through Redis with
    selfmend's system, whose actions act on them."""
    settings = Settings(
        home=tmp_path, store_url=f"sqlite:///{tmp_path}/store.db", redis_url=empty_redis("breaker")
    )
    system = System.from_settings(settings, patterns=())
    buffer = Captured()
    client = Client(settings, store=system.store, buffer=buffer)
    yield client, system, buffer
    client.close()


def calls(breaker, dependency, count: int) -> list[str]:
    """``count`` calls as the application makes them: an answer, or the error it saw."""
    outcomes = []
    for _ in range(count):
        try:
            outcomes.append(breaker.call(dependency))
        except Down:
            outcomes.append("error")
    return outcomes


def fires(condition, value: float) -> bool:
    """Whether the condition holds on one interval's value (the verify stage's judgement,
    here on the latest value alone)."""
    compare = {">": operator.gt, "<": operator.lt}[condition.op]
    return compare(value, condition.threshold)


def plan_for(system, pattern, target: str, candidate: int = 0):
    """What remediation would plan for an incident on ``target``: the candidate's action with
    its "{label}" parameters taken from the target's labels."""
    spec = pattern.actions[candidate]
    action = system.catalogue.get(spec.name)
    return action, action.plan(with_labels(spec.name, spec.params, target))


def test_a_trip_sends_calls_to_the_fallback_until_the_probes_find_the_dependency_back(shop):
    client, system, buffer = shop
    dependency = Dependency(pause=0.01)
    # Shared through Redis, one process calling: min_processes (2) is never met, so the
    # breaker stays closed however the dependency fails: the 100% errors.
    payments = client.breaker(
        "payments", reset_timeout=0.3, sync_seconds=0, fallback=lambda: "queued"
    )
    assert calls(payments, dependency.charge, 10) == ["error"] * 10
    client.flush()
    before = buffer.take()
    target = series_key("breaker.unserved_ratio", {"breaker": "payments", "fallback": "yes"})
    assert before[target] == 1.0
    assert before[target.replace("unserved", "failure")] == 1.0
    assert before[target.replace("unserved_ratio", "open")] == 0.0
    assert UNSERVED.selects(target) and fires(UNSERVED, before[target])

    action, plan = plan_for(system, FAILING, target)
    assert plan.params == {"breaker": "payments", "hold": "tripped"}
    assert plan.summary == "trip breaker payments open (it is closed)"
    assert action.apply(plan) == {"changed": True, "breaker": "payments", "state": "open"}
    reached = dependency.reached
    assert calls(payments, dependency.charge, 10) == ["queued"] * 10
    assert dependency.reached == reached  # nothing waited on the failing dependency
    client.flush()
    after = buffer.take()
    assert after[target] == 0.0 and not fires(UNSERVED, after[target])
    assert after[target.replace("unserved_ratio", "open")] == 1.0

    time.sleep(0.35)  # reset_timeout: a probe goes through, fails, and the breaker reopens
    assert calls(payments, dependency.charge, 3) == ["error", "queued", "queued"]
    assert payments.state is State.OPEN

    dependency.failing = False  # the fault ends: the next probe closes it by itself
    time.sleep(0.35)
    assert calls(payments, dependency.charge, 3) == ["charged"] * 3
    assert payments.state is State.CLOSED
    rows = system.store.breaker_events.recent("payments")
    assert rows[0]["reason"] == "tripped by selfmend: breaker_force apply"


def test_rolling_back_a_trip_closes_the_breaker_and_a_held_one_is_not_tripped(shop):
    client, system, _ = shop
    dependency = Dependency()
    payments = client.breaker("payments", sync_seconds=0, fallback=lambda: "queued")
    target = series_key("breaker.unserved_ratio", {"breaker": "payments", "fallback": "yes"})
    action, plan = plan_for(system, FAILING, target)
    action.apply(plan)
    assert calls(payments, dependency.charge, 1) == ["queued"]

    assert action.rollback(plan)["state"] == "closed"
    assert calls(payments, dependency.charge, 1) == ["error"]  # back to the dependency
    assert payments.state is State.CLOSED

    system.breakers.hold("payments", State.FORCED_CLOSED, actor="ops")
    with pytest.raises(ActionError, match="held by an operator"):
        plan_for(system, FAILING, target)


def test_the_second_candidate_tightens_the_rate_so_the_breaker_opens_by_itself(shop):
    client, system, buffer = shop
    flaky = iter([True, True, False] * 100)  # two calls in three fail: under a 0.8 rate

    def charge() -> str:
        if next(flaky):
            raise Down("502")
        return "charged"

    payments = client.breaker(
        "payments",
        failure_rate=0.8,
        window_size=10,
        minimum_calls=6,
        min_processes=1,
        reset_timeout=30,
        sync_seconds=0,
        fallback=lambda: "queued",
    )
    calls(payments, charge, 12)
    client.flush()
    target = series_key("breaker.unserved_ratio", {"breaker": "payments", "fallback": "yes"})
    assert fires(UNSERVED, buffer.take()[target])  # 8 of 12

    action, plan = plan_for(system, FAILING, target, candidate=1)
    assert plan.summary == "breaker payments: failure_rate 0.8 → 0.4"
    action.apply(plan)
    calls(payments, charge, 6)
    assert payments.state is State.OPEN  # its own breach, so it will probe by itself
    assert [payments.call(charge) for _ in range(10)] == ["queued"] * 10
    client.flush()
    assert not fires(UNSERVED, buffer.take()[target])

    action.rollback(plan)
    assert system.breakers.in_force("payments").failure_rate == 0.8


def test_a_slow_dependency_gets_a_shorter_timeout_only_where_the_application_reads_one(shop):
    client, system, buffer = shop
    llm = client.breaker("llm", timeout_seconds=0.4, sync_seconds=0, fallback=lambda: "later")

    async def ask() -> str:
        await asyncio.sleep(0.3)
        return "answer"

    assert asyncio.run(llm.call_async(ask)) == "answer"
    client.flush()
    target = series_key("breaker.call_ms", {"breaker": "llm", "fallback": "yes"})
    assert buffer.take()[target] >= 300

    action, plan = plan_for(system, SLOW, target)
    assert plan.summary == "breaker llm: timeout_seconds 0.4 → 0.2"
    action.apply(plan)
    began = time.perf_counter()
    with pytest.raises(TimeoutError):
        asyncio.run(llm.call_async(ask))
    assert time.perf_counter() - began < 0.3
    assert llm.timeout == 0.2  # what sync code passes to its own client

    action.rollback(plan)
    assert asyncio.run(llm.call_async(ask)) == "answer"

    client.breaker("payments", sync_seconds=0)  # declares no timeout: nothing reads one
    payments_target = series_key("breaker.call_ms", {"breaker": "payments", "fallback": "no"})
    with pytest.raises(ActionError, match="none of timeout_seconds, slow_call_seconds"):
        plan_for(system, SLOW, payments_target)
